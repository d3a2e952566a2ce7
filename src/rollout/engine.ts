// Drives rollouts over time in the process that owns state: one timer per
// running rollout wakes it for the next analysis check or the end of the
// current step's pause. Every change is a command to state/ (which persists
// it, publishes the weights and writes the history line); the engine keeps
// only the consecutive check counts in memory. On restart it picks every
// running rollout up again at its stored step.
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
import { isReleaseActive, isRolloutActive, type HookCall, type RolloutPhase, type RolloutRecord, type RuntimeState, type ServiceChange, type ServiceRecord } from '../state/index.ts';
import type { CompiledService } from '../table/index.ts';
import type { AnalysisSource } from './analysis-source.ts';
import { runCheck, type CheckSources } from './check.ts';
import { autoPromote, autoPromotes, isBlueGreen, rollBack, rollbackUntil, startBlueGreen } from './blue-green.ts';
import { describeCall, type RetryPolicy } from './hooks.ts';
import { currentSpec, hooksOf, resolvePlan, timedPauseMs, type RolloutBodyT } from './plan.ts';
import { PrometheusClient } from './prometheus.ts';
import { RolloutHooks } from './rollout-hooks.ts';
import { ShiftDriver, type ShiftBodyT } from './shift.ts';
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

/** A tick found the rollout changed under it (a person acted); it drops its decision. */
class StaleTick extends Error {}

/** How long a due step waits, per try, for every live replica to apply the current one. */
const APPLIED_WAIT_MS = 1000;

/** How often a confirm-promotion hook is asked when the rollout has no analysis interval to follow. */
const GATE_INTERVAL_MS = 10_000;

const iso = (ms: number) => new Date(ms).toISOString();

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
export class RolloutEngine {
  readonly #runtime: RuntimeState;
  readonly #analysis: AnalysisSource | null;
  readonly #log: Logger;
  readonly #phases: RolloutPhaseSink | undefined;
  readonly #now: () => number;
  readonly #inconclusiveLimit: number;
  readonly #live = new Map<string, LiveRollout>();
  readonly #prometheus: PrometheusClient;
  readonly #hooks: RolloutHooks;
  readonly #sources: CheckSources;
  /** Services whose tick is running: their timer is planned again when it ends, never meanwhile. */
  readonly #ticking = new Set<string>();
  readonly shifts: ShiftDriver;
  #stopped = false;

  constructor(options: RolloutEngineOptions) {
    this.#runtime = options.runtime;
    this.#analysis = options.analysis;
    this.#log = options.log;
    this.#phases = options.phases;
    this.#now = options.now ?? Date.now;
    this.#inconclusiveLimit = options.inconclusiveLimit ?? 10;
    this.#prometheus = new PrometheusClient(options.configDir ?? process.cwd());
    this.#hooks = new RolloutHooks(this.#runtime, this.#log, this.#now, options.hookRetry);
    this.#sources = { windows: this.#analysis, prometheus: this.#prometheus, hooks: this.#hooks };
    this.shifts = new ShiftDriver({ runtime: this.#runtime, log: this.#log, now: this.#now });
    // Any change to a service's rollout (API verb, tick, restart) re-plans its timer; a transition goes to the event hooks.
    this.#runtime.onChange((service, record, entry) => {
      if (record.rollout !== undefined) this.#phases?.setRolloutPhase(service, record.rollout.phase, record.rollout.canary);
      this.#schedule(service);
      if (!this.#stopped) this.#hooks.announce(service, record, entry);
    });
    // A reload that brings back a service whose rollout was suspended (see #schedule) picks it up again.
    this.#runtime.routes.onPublish((table, change) => {
      // Only a new config can bring back a service whose rollout waits for it; a weight change never does.
      if (this.#stopped || change.kind === 'weights') return;
      for (const [service, record] of Object.entries(this.#runtime.records())) {
        if (record.rollout !== undefined && isRolloutActive(record.rollout) && !this.#live.has(service) && table.servicesByName.has(service)) this.#schedule(service);
      }
    });
    // Only the leader runs the timers (with the file store, always this replica); a new leader continues every running rollout from its stored step.
    this.#runtime.leadership.onLeadership((leader) => this.#onLeadership(leader));
  }

  /** Picks up every running rollout and shift from the store. */
  start(): void {
    this.#stopped = false;
    for (const [service, record] of Object.entries(this.#runtime.records())) {
      if (record.rollout === undefined) continue;
      this.#phases?.setRolloutPhase(service, record.rollout.phase, record.rollout.canary);
      if (isRolloutActive(record.rollout) && this.#runtime.leadership.isLeader()) {
        this.#log.info({ service, rollout: record.rollout.id, phase: record.rollout.phase, step: record.rollout.step }, 'rollout resumed after restart');
        this.#schedule(service);
      }
    }
    this.shifts.start();
  }

  /** Stops every timer (the stored rollouts stay as they are) and waits for a command in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const live of this.#live.values()) if (live.timer) clearTimeout(live.timer);
    this.#live.clear();
    this.shifts.stop();
    this.#hooks.stop();
    await this.#runtime.idle();
    await this.#prometheus.close();
  }

  /** The service's latest rollout with the live analysis, or null when it never had one. */
  status(service: string): RolloutStatus | null {
    const record = this.#runtime.record(service).rollout;
    if (record === undefined) return null;
    const compiled = this.#runtime.table.servicesByName.get(service);
    return { ...describeRollout(service, record, this.#live.get(service), compiled?.split.weights), rollbackUntil: rollbackUntil(compiled, record) };
  }

  /**
   * Starts the configured plan (with `body`'s overrides) at its first step.
   * Every pre-rollout hook must answer 2xx first; one that does not refuses
   * the start (hook_failed) and nothing changes.
   */
  async startRollout(service: string, body: RolloutBodyT | undefined, actor: string): Promise<RolloutStatus> {
    const calls = await this.#preRollout(service, body);
    await this.#commandThenSchedule(service, actor, ({ service: compiled, record, now }) => {
      refuseStart(service, record);
      const plan = resolvePlan(compiled, body);
      const rollout = newRollout(compiled, plan, now);
      this.#resetLive(service, rollout);
      const why = `rollout of ${plan.canary} started by ${actor}`;
      return withHooks(isBlueGreen(rollout) ? startBlueGreen(compiled, rollout, now, why) : enterStep(compiled, rollout, 0, now, 'rollout.start', why, null), calls);
    });
    return this.status(service)!;
  }

  /** Calls the pre-rollout hooks once the start itself would be accepted (so a refused start calls nobody). */
  async #preRollout(service: string, body: RolloutBodyT | undefined): Promise<HookCall[]> {
    const compiled = this.#runtime.table.servicesByName.get(service);
    if (compiled === undefined || hooksOf(compiled.rollout, 'pre-rollout').length === 0) return [];
    refuseStart(service, this.#runtime.record(service));
    return this.#hooks.preRollout(service, compiled, newRollout(compiled, resolvePlan(compiled, body), this.#now()));
  }

  /** Applies a verb to the service's running rollout. */
  async act(service: string, verb: RolloutVerb, actor: string, note?: string): Promise<RolloutStatus> {
    const why = `${verb} by ${actor}${note ? ` (${note})` : ''}`;
    await this.#commandThenSchedule(service, actor, ({ service: compiled, record, now }) => {
      const analysis = this.#liveOf(service, record.rollout)?.lastAnalysis ?? null;
      switch (verb) {
        case 'pause':
          return pause(requireRollout(service, record.rollout, verb, ['progressing']), now, 'operator', why, analysis);
        case 'resume': {
          const rollout = requireRollout(service, record.rollout, verb, ['paused']);
          // Refused (waiting for confirm-promotion) before the live counts start over.
          const change = resume(compiled, rollout, now, why, analysis);
          this.#resetLive(service, rollout);
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

  /** A command from a person; whatever its outcome, the service's timer is planned again (a refused resume must not leave checks stopped). */
  async #commandThenSchedule(service: string, actor: string, decide: Parameters<RuntimeState['command']>[2]): Promise<void> {
    try {
      await this.#runtime.command(service, actor, decide);
    } finally {
      this.#schedule(service);
    }
  }

  #liveOf(service: string, rollout: RolloutRecord | undefined): LiveRollout | undefined {
    const live = this.#live.get(service);
    return live !== undefined && rollout !== undefined && live.rolloutId === rollout.id ? live : undefined;
  }

  #resetLive(service: string, rollout: RolloutRecord): void {
    const old = this.#live.get(service);
    if (old?.timer) clearTimeout(old.timer);
    const live: LiveRollout = { rolloutId: rollout.id, failures: 0, inconclusive: 0, lastAnalysis: null, nextCheckAt: null, intervalMs: null, nextGateAt: null, gate: null, timer: null };
    if (old !== undefined && old.rolloutId === rollout.id) live.lastAnalysis = old.lastAnalysis;
    this.#live.set(service, live);
  }

  /** Plans the next wake of a service's rollout, or forgets it when none is running. */
  #schedule(service: string): void {
    const rollout = this.#runtime.record(service).rollout;
    let live = this.#live.get(service);
    if (live?.timer) {
      clearTimeout(live.timer);
      live.timer = null;
    }
    if (this.#stopped || rollout === undefined || !isRolloutActive(rollout) || !this.#runtime.leadership.isLeader()) {
      if (live !== undefined && (rollout === undefined || live.rolloutId !== rollout.id || !isRolloutActive(rollout))) this.#live.delete(service);
      return;
    }
    if (!this.#runtime.table.servicesByName.has(service)) {
      // A reload removed the service: nothing to drive. The record stays; restoring the
      // service and resuming (or restarting veer) picks the rollout up at its step.
      this.#log.warn({ service, rollout: rollout.id, step: rollout.step }, 'rollout suspended: the service is no longer in the config');
      if (live !== undefined) this.#live.delete(service);
      return;
    }
    if (live === undefined || live.rolloutId !== rollout.id) {
      this.#resetLive(service, rollout);
      live = this.#live.get(service)!;
    }
    const now = this.#now();
    let due = Number.POSITIVE_INFINITY;
    const spec = currentSpec(rollout);
    if (spec !== null) {
      // A step with its own analysis may check at another interval: the next check is planned with it.
      if (live.nextCheckAt === null || live.intervalMs !== spec.intervalMs) live.nextCheckAt = now + spec.intervalMs;
      live.intervalMs = spec.intervalMs;
      due = live.nextCheckAt;
    } else {
      live.nextCheckAt = null;
      live.intervalMs = null;
    }
    if (rollout.phase === 'paused' && rollout.pausedBy === 'confirm-promotion') {
      // Asked at once when the wait starts, then every interval.
      live.nextGateAt ??= now;
      due = Math.min(due, live.nextGateAt);
    } else {
      live.nextGateAt = null;
      live.gate = null;
    }
    const pauseMs = timedPauseMs(rollout.steps[rollout.step]);
    if (rollout.phase === 'progressing' && pauseMs !== null) {
      const stepDue = Date.parse(rollout.stepStartedAt) + pauseMs;
      // Once the pause is over, only a passing check moves the step on: wake for the checks.
      if (stepDue > now || spec === null) due = Math.min(due, stepDue);
    }
    if (!Number.isFinite(due) || this.#ticking.has(service)) return;
    live.timer = setTimeout(() => void this.#tick(service, rollout.id), Math.max(0, due - now));
    live.timer.unref();
  }

  async #tick(service: string, rolloutId: string): Promise<void> {
    const live = this.#live.get(service);
    if (live === undefined || live.rolloutId !== rolloutId) return;
    live.timer = null;
    if (!this.#runtime.leadership.isLeader()) return;
    const rollout = this.#runtime.record(service).rollout;
    if (rollout === undefined || rollout.id !== rolloutId || !isRolloutActive(rollout)) return;
    const now = this.#now();
    const spec = currentSpec(rollout);
    this.#ticking.add(service);
    try {
      if (spec !== null && live.nextCheckAt !== null && now >= live.nextCheckAt) {
        live.nextCheckAt = now + spec.intervalMs;
        const result = await runCheck(this.#sources, service, this.#runtime.table.servicesByName.get(service), rollout, spec, live.lastAnalysis ?? rollout.lastAnalysis, now);
        live.lastAnalysis = result;
        if (result.verdict === 'fail') {
          live.failures++;
          this.#log.warn({ service, rollout: rollout.id, failures: live.failures, reasons: result.reasons }, 'rollout analysis failed');
          if (live.failures >= spec.failureLimit) {
            const why = `analysis failed ${live.failures} check${live.failures === 1 ? '' : 's'} in a row: ${result.reasons.join('; ')}`;
            await this.#transition(service, rollout, (compiled, current, t) => abort(compiled, current, t, why, result));
            return;
          }
        } else if (result.verdict === 'pass') {
          live.failures = 0;
          live.inconclusive = 0;
          if (autoPromotes(rollout)) {
            await this.#transition(service, rollout, (compiled, current, t) => autoPromote(compiled, current, t, result));
            return;
          }
        } else {
          live.inconclusive++;
          if (rollout.phase === 'progressing' && live.inconclusive >= this.#inconclusiveLimit) {
            const why = `${live.inconclusive} inconclusive checks in a row (${result.reasons.join('; ')}); a person must resume, promote or abort`;
            await this.#transition(service, rollout, (_compiled, current, t) => pause(current, t, 'analysis', why, result));
            return;
          }
        }
      }
      if (rollout.phase === 'paused' && rollout.pausedBy === 'confirm-promotion' && live.nextGateAt !== null && now >= live.nextGateAt) {
        live.nextGateAt = now + (spec?.intervalMs ?? GATE_INTERVAL_MS);
        await this.#askGate(service, rollout, live, now);
        return;
      }
      const pauseMs = timedPauseMs(rollout.steps[rollout.step]);
      if (rollout.phase === 'progressing' && pauseMs !== null) {
        const stepDue = Date.parse(rollout.stepStartedAt) + pauseMs;
        const last = live.lastAnalysis;
        const passedThisStep = last !== null && last.verdict === 'pass' && Date.parse(last.at) >= Date.parse(rollout.stepStartedAt);
        if (now >= stepDue && (spec === null || passedThisStep)) {
          // A step counts as reached once every live replica serves it (at once with the file store).
          if (!(await this.#runtime.whenApplied(service, APPLIED_WAIT_MS))) {
            this.#log.debug({ service, rollout: rollout.id, step: rollout.step, replicas: this.#runtime.replicas(service) }, 'step not yet applied by every live replica; the next waits');
            return;
          }
          const pause = rollout.steps[rollout.step]!.pause;
          const why = spec === null ? `step ${rollout.step + 1} paused ${pause}` : `step ${rollout.step + 1} paused ${pause} and the last check passed`;
          await this.#transition(service, rollout, (compiled, current, t) => advance(compiled, current, t, why, last));
          return;
        }
      }
    } catch (err) {
      if (!(err instanceof StaleTick)) this.#log.error({ err, service, rollout: rolloutId }, 'rollout step failed; retrying at the next check');
    } finally {
      this.#ticking.delete(service);
      this.#schedule(service);
    }
  }

  /**
   * Asks every confirm-promotion hook of the running config: all 2xx
   * promotes; otherwise the rollout keeps waiting, and a history line says
   * so when the answer is new (not at every ask).
   */
  async #askGate(service: string, rollout: RolloutRecord, live: LiveRollout, now: number): Promise<void> {
    const compiled = this.#runtime.table.servicesByName.get(service);
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
    this.#log.info({ service, rollout: rollout.id, answers: answerOf(calls) }, reason);
    await this.#runtime.command(service, 'rollout', ({ record }) => {
      if (record.rollout?.id !== rollout.id || record.rollout.pausedBy !== 'confirm-promotion') throw new StaleTick();
      return { action: 'rollout.gate', reason, details: { rollout: rollout.id, phase: rollout.phase, step: rollout.step, hooks: calls } };
    });
  }

  /** Leadership changed: plan every running rollout's timer (leader) or drop the timers (follower). */
  #onLeadership(leader: boolean): void {
    if (this.#stopped) return;
    for (const [service, record] of Object.entries(this.#runtime.records())) {
      if (record.rollout === undefined || !isRolloutActive(record.rollout)) continue;
      if (leader) this.#log.info({ service, rollout: record.rollout.id, phase: record.rollout.phase, step: record.rollout.step }, 'rollout taken over by this replica at its stored step');
      this.#schedule(service);
    }
  }

  /** Applies an automatic change, unless a person changed the rollout since the tick read it. */
  async #transition(service: string, seen: RolloutRecord, change: (compiled: CompiledService, current: RolloutRecord, now: number) => ServiceChange): Promise<void> {
    await this.#runtime.command(service, 'rollout', ({ service: compiled, record, now }) => {
      const current = record.rollout;
      if (current === undefined || current.id !== seen.id || current.phase !== seen.phase || current.step !== seen.step || current.stepStartedAt !== seen.stepStartedAt) throw new StaleTick();
      return change(compiled, current, now);
    });
  }
}
