// Drives releases over time in the process that owns state (the leader),
// on the loop a rollout uses too (run-loop.ts): one timer per running
// release wakes it for the next analysis check or the end of the current
// step's pause. Every change is one multi-service command to state/
// (release.ts builds it); the engine keeps only the consecutive check
// counts and each member's last check in memory.
//
//   tick ──> check due? ── each member's canary window vs its stable ── any fail x failureLimit ──> abort all
//       │                                                            └── inconclusive x limit ──> pause (analysis)
//       └──> step's pause over and last check passed? ──> next step / promote
//       └──> schedule the next wake: min(next check, end of pause)

import type { ReleaseConfig } from '../config/index.ts';
import { VeerError } from '../errors.ts';
import type { Logger } from '../log/index.ts';
import { isReleaseActive, type AnalysisResult, type AnalysisSpec, type HookCall, type MultiChange, type ReleaseRecord, type RuntimeState, type ServiceView } from '../state/index.ts';
import type { AnalysisSource } from './analysis-source.ts';
import { runCheck, type CheckSources } from './check.ts';
import { timedPauseMs } from './plan.ts';
import { PrometheusClient } from './prometheus.ts';
import { RolloutHooks } from './rollout-hooks.ts';
import { abortRelease, enterReleaseStep, hooksOfRelease, memberBody, pauseRelease, promoteRelease, refuseRelease, releasePlan, requireRelease, resumeRelease, newRelease, rollBackRelease, storedRelease, type ReleaseVerb } from './release.ts';
import { describeRelease, type LiveRelease, type ReleaseStatus } from './release-status.ts';
import { RunLoop, StaleTick, type Verdict } from './run-loop.ts';
import { isSameRun, iso } from './run.ts';

/** Where release phases are reported (veer_release_info). */
export interface ReleasePhaseSink {
  setReleasePhase(release: string, phase: string): void;
}

/** How to build a ReleaseEngine. */
export interface ReleaseEngineOptions {
  readonly runtime: RuntimeState;
  readonly analysis: AnalysisSource | null;
  readonly log: Logger;
  readonly phases?: ReleasePhaseSink;
  readonly now?: () => number;
  /** Inconclusive checks in a row before a progressing release pauses for a person (default 10). */
  readonly inconclusiveLimit?: number;
  /** The config file's directory: `analysis.prometheus.ca` is read from it (default: the working directory). */
  readonly configDir?: string;
}

/** Runs releases with timers. */
export class ReleaseEngine extends RunLoop<ReleaseRecord, Record<string, AnalysisResult>, LiveRelease> {
  protected readonly noun = { run: 'release', key: 'release' };
  readonly #phases: ReleasePhaseSink | undefined;
  readonly #prometheus: PrometheusClient;
  readonly #hooks: RolloutHooks;
  readonly #sources: CheckSources;

  constructor(options: ReleaseEngineOptions) {
    super({ runtime: options.runtime, log: options.log, now: options.now ?? Date.now, inconclusiveLimit: options.inconclusiveLimit ?? 10 });
    this.#phases = options.phases;
    this.#prometheus = new PrometheusClient(options.configDir ?? process.cwd());
    this.#hooks = new RolloutHooks(this.runtime, this.log, this.now, undefined);
    this.#sources = { windows: options.analysis, prometheus: this.#prometheus, hooks: this.#hooks };
    // A change of a member (this replica's or another's) re-plans its release's timer and reports the phase.
    this.runtime.onChange((_service, record) => {
      if (record.release === undefined) return;
      this.#phases?.setReleasePhase(record.release.name, record.release.phase);
      this.schedule(record.release.name);
    });
    this.runtime.leadership.onLeadership(() => {
      if (!this.stopped) for (const config of this.#configs()) this.schedule(config.name);
    });
  }

  /** Picks up every running release from the store. */
  start(): void {
    this.resume();
    for (const config of this.#configs()) {
      const record = this.#record(config);
      if (record === undefined) continue;
      this.#phases?.setReleasePhase(config.name, record.phase);
      if (isReleaseActive(record)) this.schedule(config.name);
    }
  }

  /** Stops every timer (the stored releases stay as they are). */
  async stop(): Promise<void> {
    this.#hooks.stop();
    await this.halt();
    await this.#prometheus.close();
  }

  /** Every configured release's status. */
  list(): ReleaseStatus[] {
    return this.#configs().map((c) => this.status(c.name));
  }

  /** A configured release's status (idle when it never ran); throws no_release for a name the config lacks. */
  status(name: string): ReleaseStatus {
    const config = this.#config(name);
    const record = this.#record(config);
    const weights: Record<string, Readonly<Record<string, number>>> = {};
    const labels: Record<string, Readonly<Record<string, string>>> = {};
    for (const [service, canary] of Object.entries(config.services)) {
      const compiled = this.runtime.table.servicesByName.get(service);
      weights[service] = compiled?.split.weights ?? {};
      labels[service] = compiled?.versionsByName.get(canary)?.labels ?? {};
    }
    return describeRelease(config, record, this.liveAny(name), weights, labels);
  }

  /**
   * Starts the configured release at its first step. Every pre-rollout hook
   * must answer 2xx for every member first; one that does not refuses the
   * start (hook_failed) and nothing changes.
   */
  async startRelease(name: string, actor: string): Promise<ReleaseStatus> {
    const config = this.#config(name);
    const calls = await this.#preRollout(config);
    await this.#command(config, actor, (views, now) => {
      const plan = releasePlan(config, views.get(Object.keys(config.services)[0]!)!.service);
      const release = newRelease(config, views, plan, now);
      this.resetLive(name, release);
      const change = enterReleaseStep(release, views, 0, now, 'release.start', `release ${name} started by ${actor}`);
      return calls.length === 0 ? change : { ...change, details: { ...(change.details as object), hooks: calls } };
    });
    return this.status(name);
  }

  /** Calls the pre-rollout hooks for each member (in config order) once the start itself would be accepted (so a refused start calls nobody). */
  async #preRollout(config: ReleaseConfig): Promise<HookCall[]> {
    const hooks = hooksOfRelease(config, 'pre-rollout');
    if (hooks.length === 0) return [];
    refuseRelease(config, (service) => this.runtime.record(service));
    const draft = { id: `${config.name}@${iso(this.now())}`, step: 0, steps: config.steps };
    const calls: HookCall[] = [];
    for (const [service, canary] of Object.entries(config.services)) {
      const compiled = this.runtime.table.servicesByName.get(service);
      if (compiled === undefined) continue;
      const stables = compiled.versions.filter((v) => v.name !== canary && (compiled.split.weights[v.name] ?? 0) > 0).map((v) => v.name);
      const body = memberBody(service, compiled, canary, stables, draft, 'starting', null, { hook: 'pre-rollout', release: draft.id });
      calls.push(...(await this.#hooks.callInOrder(service, hooks, body, `the release ${config.name}`)));
    }
    return calls;
  }

  /** Applies a verb to a running release. */
  async act(name: string, verb: ReleaseVerb, actor: string, note?: string): Promise<ReleaseStatus> {
    const config = this.#config(name);
    const why = `${verb} by ${actor}${note ? ` (${note})` : ''}`;
    await this.#command(config, actor, (views, now) => {
      const stored = storedRelease(name, views);
      switch (verb) {
        case 'pause':
          return pauseRelease(requireRelease(name, stored, verb, ['progressing']), views, now, 'operator', why);
        case 'resume': {
          const release = requireRelease(name, stored, verb, ['paused']);
          this.resetLive(name, release);
          return resumeRelease(release, views, now, why);
        }
        case 'promote':
          return promoteRelease(requireRelease(name, stored, verb, ['progressing', 'paused']), views, now, why, this.liveAny(name)?.lastAnalysis ?? null);
        case 'abort':
          // A promoted release is rolled back within its rollbackWindow.
          if (stored?.phase === 'promoted') return rollBackRelease(stored, views, now, why, config.rollbackWindow);
          return abortRelease(requireRelease(name, stored, verb, ['progressing', 'paused']), views, now, why, this.liveAny(name)?.lastAnalysis ?? null);
      }
    });
    return this.status(name);
  }

  #configs(): readonly ReleaseConfig[] {
    return this.runtime.table.config.releases ?? [];
  }

  #config(name: string): ReleaseConfig {
    const config = this.#configs().find((r) => r.name === name);
    if (config !== undefined) return config;
    // Removed from the config while it ran: its members are still held, so its stored record still answers (abort frees them).
    for (const record of Object.values(this.runtime.records())) {
      const r = record.release;
      if (r !== undefined && r.name === name && isReleaseActive(r)) {
        return { name, services: Object.fromEntries(Object.entries(r.members).map(([s, m]) => [s, m.canary])), steps: r.steps.map((st) => ({ weight: st.weight })) } as ReleaseConfig;
      }
    }
    throw new VeerError('no_release', `no release named ${JSON.stringify(name)} in the config`);
  }

  #record(config: ReleaseConfig): ReleaseRecord | undefined {
    let newest: ReleaseRecord | undefined;
    for (const service of Object.keys(config.services)) {
      const r = this.runtime.record(service).release;
      if (r !== undefined && r.name === config.name && (newest === undefined || r.updatedAt > newest.updatedAt)) newest = r;
    }
    return newest;
  }

  #command(config: ReleaseConfig, actor: string, decide: (views: ReadonlyMap<string, ServiceView>, now: number) => MultiChange): Promise<void> {
    return this.commandThenSchedule(config.name, () => this.runtime.commandMany(Object.keys(config.services), actor, decide));
  }

  /** The running release of a configured name (a release removed from the config has no timer: abort frees it). */
  protected current(name: string): ReleaseRecord | undefined {
    const config = this.#configs().find((r) => r.name === name);
    return config === undefined ? undefined : this.#record(config);
  }

  protected newLive(runId: string): LiveRelease {
    return { runId, failures: 0, inconclusive: 0, lastAnalysis: null, lastPassed: false, nextCheckAt: null, intervalMs: null, timer: null };
  }

  /** Checks run while the release progresses (a paused one waits for a person). */
  protected override checksWhile(release: ReleaseRecord): boolean {
    return release.phase === 'progressing';
  }

  /**
   * Each member's canary against its stable version over the analysis
   * window, as a rollout's check: with the release's metric checks (filled
   * in per member) and its `rollout` hooks (called per member), all read
   * from the running config.
   */
  protected async check(name: string, release: ReleaseRecord, spec: AnalysisSpec, live: LiveRelease, now: number): Promise<Record<string, AnalysisResult>> {
    const config = this.#configs().find((r) => r.name === name);
    const hooks = config === undefined ? [] : hooksOfRelease(config, 'rollout');
    const members = Object.entries(release.members);
    const results = await Promise.all(
      members.map(([service, member]) => {
        const compiled = this.runtime.table.servicesByName.get(service);
        const last = live.lastAnalysis?.[service] ?? release.lastAnalysis[service] ?? null;
        return runCheck(
          this.#sources,
          {
            service,
            canary: member.canary,
            stables: [member.stable],
            queryStables: [member.stable],
            prometheus: config?.analysis?.prometheus,
            hooks: compiled === undefined ? [] : hooks,
            body: () => memberBody(service, compiled!, member.canary, [member.stable], release, release.phase, last, { hook: 'rollout', release: release.id }),
          },
          spec,
          now,
        );
      }),
    );
    return Object.fromEntries(members.map(([service], i) => [service, results[i]!]));
  }

  /** Any member failing fails the check; else any inconclusive leaves it inconclusive. */
  protected verdictOf(results: Record<string, AnalysisResult>): Verdict {
    const verdicts = Object.values(results).map((r) => r.verdict);
    return verdicts.includes('fail') ? 'fail' : verdicts.includes('inconclusive') ? 'inconclusive' : 'pass';
  }

  /** A failed check also ends a row of inconclusive ones. */
  protected override judged(_name: string, _release: ReleaseRecord, live: LiveRelease, verdict: Verdict): void {
    if (verdict === 'fail') live.inconclusive = 0;
    live.lastPassed = verdict === 'pass';
  }

  protected abortByAnalysis(name: string, release: ReleaseRecord, live: LiveRelease, results: Record<string, AnalysisResult>): Promise<void> {
    const failing = Object.entries(results).filter(([, r]) => r.verdict === 'fail').map(([s, r]) => `${s}: ${r.reasons.join('; ')}`);
    this.log.warn({ release: name, failing }, 'release aborted by analysis');
    return this.#transition(name, release, (views, t) => abortRelease(release, views, t, `analysis failed ${live.failures} time(s) in a row: ${failing.join(' | ')}`, results));
  }

  protected pauseByAnalysis(name: string, release: ReleaseRecord, live: LiveRelease): Promise<void> {
    return this.#transition(name, release, (views, t) => pauseRelease(release, views, t, 'analysis', `${live.inconclusive} inconclusive checks in a row: too little canary traffic`));
  }

  /** A step without pause holds (paused by the plan) unless it is the last: that one moves on at once. */
  protected stepPauseMs(release: ReleaseRecord): number | null {
    return timedPauseMs(release.steps[release.step]) ?? 0;
  }

  protected passed(_release: ReleaseRecord, live: LiveRelease): boolean {
    return live.lastPassed;
  }

  protected moveOn(name: string, release: ReleaseRecord, live: LiveRelease): Promise<void> {
    if (release.step === release.steps.length - 1) return this.#transition(name, release, (views, t) => promoteRelease(release, views, t, 'the last step completed', live.lastAnalysis));
    return this.#transition(name, release, (views, t) => enterReleaseStep(release, views, release.step + 1, t, 'release.step', `step ${release.step + 1} done`, live.lastAnalysis));
  }

  /** Applies an automatic change, unless a person changed the release since the tick read it. */
  async #transition(name: string, seen: ReleaseRecord, change: (views: ReadonlyMap<string, ServiceView>, now: number) => MultiChange): Promise<void> {
    const config = this.#config(name);
    await this.runtime.commandMany(Object.keys(config.services), 'release', (views, now) => {
      if (!isSameRun(seen, storedRelease(config.name, views))) throw new StaleTick();
      return change(views, now);
    });
  }
}
