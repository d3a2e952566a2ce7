// Drives rollouts over time in the process that owns state, on the loop
// a release uses too (run-loop.ts): one timer per running rollout wakes it
// for the next analysis check, the next ask of a confirm-promotion hook or
// the end of the current step's pause. Every change is a command to state/
// (which persists it, publishes the weights and writes the history line);
// the engine keeps only the consecutive check counts in memory. On restart
// it picks every running rollout up again at its stored step.
//
//   tick ──> check due? ── rollout hooks, then window + metric queries ── fail x failureLimit ──> abort
//       │                                                               └── inconclusive x limit ──> pause (analysis)
//       └──> waiting for confirm-promotion and its time to ask? ── all 2xx ──> promote
//       └──> step's pause over and last check passed? ──> next step / promote (or wait for confirm-promotion)
//       └──> schedule the next wake: min(next check, next ask, end of pause)
//
// A check is assembled by check.ts; hooks (rollout-hooks.ts) come from the
// running config at each call. Event and post-rollout hooks are queued off
// every transition the leader sees and never awaited; each call they make
// is a history line (rollout.hook).

import { VeerError } from '../errors.ts';
import type { Logger } from '../log/index.ts';
import { isReleaseActive, isRolloutActive, type AnalysisResult, type AnalysisSpec, type HookCall, type RolloutPhase, type RolloutRecord, type RuntimeState, type ServiceChange, type ServiceRecord } from '../state/index.ts';
import type { CompiledService } from '../table/index.ts';
import type { AnalysisSource } from './analysis-source.ts';
import { runCheck, type CheckSources } from './check.ts';
import { autoPromote, autoPromotes, isBlueGreen, rollBack, rollbackUntil, startBlueGreen } from './blue-green.ts';
import { describeCall, type RetryPolicy } from './hooks.ts';
import { currentSpec, hooksOf, resolvePlan, timedPauseMs, type RolloutBodyT } from './plan.ts';
import { PrometheusClient } from './prometheus.ts';
import { RolloutHooks } from './rollout-hooks.ts';
import { ShiftDriver, type ShiftBodyT } from './shift.ts';
import { RunLoop, StaleTick, type Verdict } from './run-loop.ts';
import { isSameRun, iso } from './run.ts';
import { describeRollout, type LiveRollout, type RolloutStatus } from './status.ts';
import { abort, advance, enterStep, newRollout, pause, promote, requireRollout, resume } from './transitions.ts';

/** Where rollout phases are reported (veer_rollout_info). */
export interface RolloutPhaseSink {
  setRolloutPhase(service: string, phase: RolloutPhase, canary: string): void;
  clearRollout(service: string): void;
}

/** How to build a RolloutEngine. */
export interface RolloutEngineOptions {
  readonly runtime: RuntimeState;
  /** Where checks read the canary's and stable's numbers; without one, every check is inconclusive. */
  readonly analysis: AnalysisSource | null;
  readonly log: Logger;
  readonly phases?: RolloutPhaseSink;
  readonly now?: () => number;
  /** Inconclusive checks in a row (too little canary traffic) before a progressing rollout pauses for a person (default 10). */
  readonly inconclusiveLimit?: number;
  /** The config file's directory: `analysis.prometheus.ca` is read from it (default: the working directory). */
  readonly configDir?: string;
  /** How event and post-rollout hook calls retry (default 5 calls, 1 s doubling). */
  readonly hookRetry?: Partial<RetryPolicy>;
}

/** The verbs of a running rollout. */
export type RolloutVerb = 'pause' | 'resume' | 'promote' | 'abort';

/** How long a due step waits, per try, for every live replica to apply the current one. */
const APPLIED_WAIT_MS = 1000;

/** How often a confirm-promotion hook is asked when the rollout has no analysis interval to follow. */
const GATE_INTERVAL_MS = 10_000;

/** The change with the hook calls that led to it in its history line. */
function withHooks(change: ServiceChange, calls: readonly HookCall[]): ServiceChange {
  return calls.length === 0 ? change : { ...change, details: { ...(change.details as object | undefined), hooks: [...calls] } };
}

/** What a start refuses before anything else (also before the pre-rollout hooks are called). */
function refuseStart(service: string, record: ServiceRecord): void {
  if (isReleaseActive(record.release)) throw new VeerError('release_holds_service', `release ${record.release!.name} holds ${service} (${record.release!.phase}); a member moves with its release`);
  if (isRolloutActive(record.rollout)) throw new VeerError('rollout_conflict', `a rollout of ${service} is already ${record.rollout!.phase}; abort or promote it first`);
  if (record.shift !== undefined) throw new VeerError('conflict', `a shift of ${service} toward ${record.shift.to} is running; stop it first (DELETE /api/v1/services/${service}/shift)`);
}

/** Runs rollouts (and shifts) with timers; the rollout room's public object. */
export class RolloutEngine extends RunLoop<RolloutRecord, AnalysisResult, LiveRollout> {
  protected readonly noun = { run: 'rollout', key: 'service' };
  readonly #analysis: AnalysisSource | null;
  readonly #phases: RolloutPhaseSink | undefined;
  readonly #prometheus: PrometheusClient;
  readonly #hooks: RolloutHooks;
  readonly #sources: CheckSources;
  readonly shifts: ShiftDriver;

  constructor(options: RolloutEngineOptions) {
    super({ runtime: options.runtime, log: options.log, now: options.now ?? Date.now, inconclusiveLimit: options.inconclusiveLimit ?? 10 });
    this.#analysis = options.analysis;
    this.#phases = options.phases;
    this.#prometheus = new PrometheusClient(options.configDir ?? process.cwd());
    this.#hooks = new RolloutHooks(this.runtime, this.log, this.now, options.hookRetry);
    this.#sources = { windows: this.#analysis, prometheus: this.#prometheus, hooks: this.#hooks };
    this.shifts = new ShiftDriver({ runtime: this.runtime, log: this.log, now: this.now });
    // Any change to a service's rollout (API verb, tick, restart) re-plans its timer; a transition goes to the event hooks.
    this.runtime.onChange((service, record, entry) => {
      if (record.rollout !== undefined) this.#phases?.setRolloutPhase(service, record.rollout.phase, record.rollout.canary);
      this.schedule(service);
      if (!this.stopped) this.#hooks.announce(service, record, entry);
    });
    // A reload that brings back a service whose rollout was suspended (see drivable) picks it up again.
    this.runtime.routes.onPublish((table, change) => {
      // Only a new config can bring back a service whose rollout waits for it; a weight change never does.
      if (this.stopped || change.kind === 'weights') return;
      for (const [service, record] of Object.entries(this.runtime.records())) {
        if (record.rollout !== undefined && isRolloutActive(record.rollout) && this.liveAny(service) === undefined && table.servicesByName.has(service)) this.schedule(service);
      }
    });
    // Only the leader runs the timers (with the file store, always this replica); a new leader continues every running rollout from its stored step.
    this.runtime.leadership.onLeadership((leader) => this.#onLeadership(leader));
  }

  /** Picks up every running rollout and shift from the store. */
  start(): void {
    this.resume();
    for (const [service, record] of Object.entries(this.runtime.records())) {
      if (record.rollout === undefined) continue;
      this.#phases?.setRolloutPhase(service, record.rollout.phase, record.rollout.canary);
      if (isRolloutActive(record.rollout) && this.runtime.leadership.isLeader()) {
        this.log.info({ service, rollout: record.rollout.id, phase: record.rollout.phase, step: record.rollout.step }, 'rollout resumed after restart');
        this.schedule(service);
      }
    }
    this.shifts.start();
  }

  /** Stops every timer (the stored rollouts stay as they are) and waits for a command in flight. */
  async stop(): Promise<void> {
    this.shifts.stop();
    this.#hooks.stop();
    await this.halt();
    await this.#prometheus.close();
  }

  /** The service's latest rollout with the live analysis, or null when it never had one. */
  status(service: string): RolloutStatus | null {
    const record = this.runtime.record(service).rollout;
    if (record === undefined) return null;
    const compiled = this.runtime.table.servicesByName.get(service);
    return { ...describeRollout(service, record, this.liveAny(service), compiled?.split.weights), rollbackUntil: rollbackUntil(compiled, record) };
  }

  /**
   * Starts the configured plan (with `body`'s overrides) at its first step.
   * Every pre-rollout hook must answer 2xx first; one that does not refuses
   * the start (hook_failed) and nothing changes.
   */
  async startRollout(service: string, body: RolloutBodyT | undefined, actor: string): Promise<RolloutStatus> {
    const calls = await this.#preRollout(service, body);
    await this.#command(service, actor, ({ service: compiled, record, now }) => {
      refuseStart(service, record);
      const plan = resolvePlan(compiled, body);
      const rollout = newRollout(compiled, plan, now);
      this.resetLive(service, rollout);
      const why = `rollout of ${plan.canary} started by ${actor}`;
      return withHooks(isBlueGreen(rollout) ? startBlueGreen(compiled, rollout, now, why) : enterStep(compiled, rollout, 0, now, 'rollout.start', why, null), calls);
    });
    return this.status(service)!;
  }

  /** Calls the pre-rollout hooks once the start itself would be accepted (so a refused start calls nobody). */
  async #preRollout(service: string, body: RolloutBodyT | undefined): Promise<HookCall[]> {
    const compiled = this.runtime.table.servicesByName.get(service);
    if (compiled === undefined || hooksOf(compiled.rollout, 'pre-rollout').length === 0) return [];
    refuseStart(service, this.runtime.record(service));
    return this.#hooks.preRollout(service, compiled, newRollout(compiled, resolvePlan(compiled, body), this.now()));
  }

  /** Applies a verb to the service's running rollout. */
  async act(service: string, verb: RolloutVerb, actor: string, note?: string): Promise<RolloutStatus> {
    const why = `${verb} by ${actor}${note ? ` (${note})` : ''}`;
    await this.#command(service, actor, ({ service: compiled, record, now }) => {
      const analysis = this.liveOf(service, record.rollout)?.lastAnalysis ?? null;
      switch (verb) {
        case 'pause':
          return pause(requireRollout(service, record.rollout, verb, ['progressing']), now, 'operator', why, analysis);
        case 'resume': {
          const rollout = requireRollout(service, record.rollout, verb, ['paused']);
          // Refused (waiting for confirm-promotion) before the live counts start over.
          const change = resume(compiled, rollout, now, why, analysis);
          this.resetLive(service, rollout);
          return change;
        }
        case 'promote':
          return promote(compiled, requireRollout(service, record.rollout, verb, ['progressing', 'paused']), now, why, analysis);
        case 'abort': {
          // A promoted rollout is rolled back within its rollbackWindow (blue-green.ts).
          const rollout = requireRollout(service, record.rollout, verb, ['progressing', 'paused', 'promoted']);
          return rollout.phase === 'promoted' ? rollBack(compiled, rollout, now, why) : abort(compiled, rollout, now, why, analysis);
        }
      }
    });
    return this.status(service)!;
  }

  /** Starts a gradual weight move (see ShiftDriver). */
  startShift(service: string, body: ShiftBodyT, actor: string) {
    return this.shifts.startShift(service, body, actor);
  }

  /** Stops a running shift where it is. */
  stopShift(service: string, actor: string) {
    return this.shifts.stopShift(service, actor);
  }

  #command(service: string, actor: string, decide: Parameters<RuntimeState['command']>[2]): Promise<void> {
    return this.commandThenSchedule(service, () => this.runtime.command(service, actor, decide));
  }

  protected current(service: string): RolloutRecord | undefined {
    return this.runtime.record(service).rollout;
  }

  protected newLive(runId: string): LiveRollout {
    return { runId, failures: 0, inconclusive: 0, lastAnalysis: null, nextCheckAt: null, intervalMs: null, nextGateAt: null, gate: null, timer: null };
  }

  /** A reload removed the service: nothing to drive. The record stays; restoring the service and resuming (or restarting veer) picks the rollout up at its step. */
  protected override drivable(service: string, rollout: RolloutRecord): boolean {
    if (this.runtime.table.servicesByName.has(service)) return true;
    this.log.warn({ service, rollout: rollout.id, step: rollout.step }, 'rollout suspended: the service is no longer in the config');
    return false;
  }

  /** The canary against the other versions with split traffic, with the running config's metric checks and `rollout` hooks. */
  protected check(service: string, rollout: RolloutRecord, spec: AnalysisSpec, live: LiveRollout, now: number): Promise<AnalysisResult> {
    const compiled = this.runtime.table.servicesByName.get(service);
    const last = live.lastAnalysis ?? rollout.lastAnalysis;
    const stables = (compiled?.versions ?? []).filter((v) => v.name !== rollout.canary && (compiled!.split.weights[v.name] ?? 0) > 0).map((v) => v.name);
    return runCheck(
      this.#sources,
      {
        service,
        canary: rollout.canary,
        stables,
        queryStables: stables.length > 0 ? stables : Object.keys(rollout.stable),
        prometheus: compiled?.rollout?.analysis?.prometheus,
        hooks: hooksOf(compiled?.rollout ?? null, 'rollout'),
        body: () => this.#hooks.bodyOf(service, rollout, compiled?.split.weights ?? {}, last, { hook: 'rollout', rollout: rollout.id }),
      },
      spec,
      now,
    );
  }

  protected verdictOf(result: AnalysisResult): Verdict {
    return result.verdict;
  }

  protected override judged(service: string, rollout: RolloutRecord, live: LiveRollout, verdict: Verdict, result: AnalysisResult): void {
    if (verdict === 'fail') this.log.warn({ service, rollout: rollout.id, failures: live.failures, reasons: result.reasons }, 'rollout analysis failed');
  }

  protected abortByAnalysis(service: string, rollout: RolloutRecord, live: LiveRollout, result: AnalysisResult): Promise<void> {
    const why = `analysis failed ${live.failures} check${live.failures === 1 ? '' : 's'} in a row: ${result.reasons.join('; ')}`;
    return this.#transition(service, rollout, (compiled, current, t) => abort(compiled, current, t, why, result));
  }

  protected pauseByAnalysis(service: string, rollout: RolloutRecord, live: LiveRollout, result: AnalysisResult): Promise<void> {
    const why = `${live.inconclusive} inconclusive checks in a row (${result.reasons.join('; ')}); a person must resume, promote or abort`;
    return this.#transition(service, rollout, (_compiled, current, t) => pause(current, t, 'analysis', why, result));
  }

  protected override async afterPass(service: string, rollout: RolloutRecord, _live: LiveRollout, result: AnalysisResult): Promise<boolean> {
    if (!autoPromotes(rollout)) return false;
    await this.#transition(service, rollout, (compiled, current, t) => autoPromote(compiled, current, t, result));
    return true;
  }

  /** While the rollout waits for confirm-promotion: asked at once when the wait starts, then every interval. */
  protected override waitDue(rollout: RolloutRecord, live: LiveRollout, now: number): number {
    if (rollout.phase === 'paused' && rollout.pausedBy === 'confirm-promotion') return (live.nextGateAt ??= now);
    live.nextGateAt = null;
    live.gate = null;
    return Number.POSITIVE_INFINITY;
  }

  protected override async tickWait(service: string, rollout: RolloutRecord, live: LiveRollout, now: number): Promise<boolean> {
    if (rollout.phase !== 'paused' || rollout.pausedBy !== 'confirm-promotion' || live.nextGateAt === null || now < live.nextGateAt) return false;
    live.nextGateAt = now + (currentSpec(rollout)?.intervalMs ?? GATE_INTERVAL_MS);
    await this.#askGate(service, rollout, live, now);
    return true;
  }

  protected stepPauseMs(rollout: RolloutRecord): number | null {
    return timedPauseMs(rollout.steps[rollout.step]);
  }

  /** The last check passed, and during this step. */
  protected passed(rollout: RolloutRecord, live: LiveRollout): boolean {
    const last = live.lastAnalysis;
    return last !== null && last.verdict === 'pass' && Date.parse(last.at) >= Date.parse(rollout.stepStartedAt);
  }

  /** A step counts as reached once every live replica serves it (at once with the file store). */
  protected override async ready(service: string, rollout: RolloutRecord): Promise<boolean> {
    if (await this.runtime.whenApplied(service, APPLIED_WAIT_MS)) return true;
    this.log.debug({ service, rollout: rollout.id, step: rollout.step, replicas: this.runtime.replicas(service) }, 'step not yet applied by every live replica; the next waits');
    return false;
  }

  protected moveOn(service: string, rollout: RolloutRecord, live: LiveRollout): Promise<void> {
    const last = live.lastAnalysis;
    const pause = rollout.steps[rollout.step]!.pause;
    const why = currentSpec(rollout) === null ? `step ${rollout.step + 1} paused ${pause}` : `step ${rollout.step + 1} paused ${pause} and the last check passed`;
    return this.#transition(service, rollout, (compiled, current, t) => advance(compiled, current, t, why, last));
  }

  /**
   * Asks every confirm-promotion hook of the running config: all 2xx
   * promotes; otherwise the rollout keeps waiting, and a history line says
   * so when the answer is new (not at every ask).
   */
  async #askGate(service: string, rollout: RolloutRecord, live: LiveRollout, now: number): Promise<void> {
    const compiled = this.runtime.table.servicesByName.get(service);
    if (compiled === undefined) return;
    const analysis = live.lastAnalysis;
    const calls = await this.#hooks.callAll(compiled, 'confirm-promotion', () => this.#hooks.bodyOf(service, rollout, compiled.split.weights, analysis, { hook: 'confirm-promotion', rollout: rollout.id }));
    if (calls.length === 0) {
      await this.#transition(service, rollout, (c, current, t) => promote(c, current, t, 'the running config has no confirm-promotion hook any more', analysis));
      return;
    }
    if (calls.every((c) => c.ok)) {
      const why = `confirm-promotion: ${calls.map(describeCall).join('; ')}`;
      await this.#transition(service, rollout, (c, current, t) => withHooks(promote(c, current, t, why, analysis), calls));
      return;
    }
    const answerOf = (list: readonly HookCall[]) => list.map((c) => `${c.url} ${c.status ?? c.error?.split(':')[0]}`).join(', ');
    const previous = live.gate;
    live.gate = { since: previous?.since ?? iso(now), asked: (previous?.asked ?? 0) + 1, last: calls };
    if (previous !== null && answerOf(previous.last) === answerOf(calls)) return;
    const reason = `confirm-promotion holds the promotion: ${calls.filter((c) => !c.ok).map(describeCall).join('; ')}`;
    this.log.info({ service, rollout: rollout.id, answers: answerOf(calls) }, reason);
    await this.runtime.command(service, 'rollout', ({ record }) => {
      if (record.rollout?.id !== rollout.id || record.rollout.pausedBy !== 'confirm-promotion') throw new StaleTick();
      return { action: 'rollout.gate', reason, details: { rollout: rollout.id, phase: rollout.phase, step: rollout.step, hooks: calls } };
    });
  }

  /** Leadership changed: plan every running rollout's timer (leader) or drop the timers (follower). */
  #onLeadership(leader: boolean): void {
    if (this.stopped) return;
    for (const [service, record] of Object.entries(this.runtime.records())) {
      if (record.rollout === undefined || !isRolloutActive(record.rollout)) continue;
      if (leader) this.log.info({ service, rollout: record.rollout.id, phase: record.rollout.phase, step: record.rollout.step }, 'rollout taken over by this replica at its stored step');
      this.schedule(service);
    }
  }

  /** Applies an automatic change, unless a person changed the rollout since the tick read it. */
  async #transition(service: string, seen: RolloutRecord, change: (compiled: CompiledService, current: RolloutRecord, now: number) => ServiceChange): Promise<void> {
    await this.runtime.command(service, 'rollout', ({ service: compiled, record, now }) => {
      const current = record.rollout;
      if (!isSameRun(seen, current)) throw new StaleTick();
      return change(compiled, current!, now);
    });
  }
}
