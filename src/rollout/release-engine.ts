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
import { isReleaseActive, type AnalysisResult, type AnalysisSpec, type MultiChange, type ReleaseRecord, type RuntimeState, type ServiceView } from '../state/index.ts';
import { analyseWindow } from './analysis.ts';
import type { AnalysisSource } from './analysis-source.ts';
import { timedPauseMs } from './plan.ts';
import { abortRelease, enterReleaseStep, pauseRelease, promoteRelease, releasePlan, requireRelease, resumeRelease, newRelease, storedRelease, type ReleaseVerb } from './release.ts';
import { describeRelease, type LiveRelease, type ReleaseStatus } from './release-status.ts';
import { RunLoop, StaleTick, type Verdict } from './run-loop.ts';
import { isSameRun } from './run.ts';

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
}

/** Runs releases with timers. */
export class ReleaseEngine extends RunLoop<ReleaseRecord, Record<string, AnalysisResult>, LiveRelease> {
  protected readonly noun = { run: 'release', key: 'release' };
  readonly #analysis: AnalysisSource | null;
  readonly #phases: ReleasePhaseSink | undefined;

  constructor(options: ReleaseEngineOptions) {
    super({ runtime: options.runtime, log: options.log, now: options.now ?? Date.now, inconclusiveLimit: options.inconclusiveLimit ?? 10 });
    this.#analysis = options.analysis;
    this.#phases = options.phases;
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
    await this.halt();
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

  /** Starts the configured release at its first step. */
  async startRelease(name: string, actor: string): Promise<ReleaseStatus> {
    const config = this.#config(name);
    await this.#command(config, actor, (views, now) => {
      const plan = releasePlan(config, views.get(Object.keys(config.services)[0]!)!.service);
      const release = newRelease(config, views, plan, now);
      this.resetLive(name, release);
      return enterReleaseStep(release, views, 0, now, 'release.start', `release ${name} started by ${actor}`);
    });
    return this.status(name);
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

  /** Each member's canary against its stable version over the analysis window. */
  protected async check(_name: string, release: ReleaseRecord, spec: AnalysisSpec, _live: LiveRelease, now: number): Promise<Record<string, AnalysisResult>> {
    const at = new Date(now).toISOString();
    const out: Record<string, AnalysisResult> = {};
    for (const [service, member] of Object.entries(release.members)) {
      const windows = this.#analysis === null ? null : await this.#analysis.read({ service, canary: member.canary, stables: [member.stable], spanMs: spec.intervalMs });
      out[service] = analyseWindow(windows?.canary ?? null, windows?.stable ?? null, spec, at);
    }
    return out;
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
