// Drives releases over time in the process that owns state (the leader):
// one timer per running release wakes it for the next analysis check or the
// end of the current step's pause. Every change is one multi-service command
// to state/ (release.ts builds it); the engine keeps only the consecutive
// check counts and each member's last check in memory.
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

/** The analysis the current step runs: its own, else the release's (null: no checks). */
const specOf = (release: ReleaseRecord): AnalysisSpec | null => release.steps[release.step]?.analysis ?? release.analysis;

/** A tick found the release changed under it (a person acted); it drops its decision. */
class StaleTick extends Error {}

/** Runs releases with timers. */
export class ReleaseEngine {
  readonly #runtime: RuntimeState;
  readonly #analysis: AnalysisSource | null;
  readonly #log: Logger;
  readonly #phases: ReleasePhaseSink | undefined;
  readonly #now: () => number;
  readonly #inconclusiveLimit: number;
  readonly #live = new Map<string, LiveRelease>();
  readonly #ticking = new Set<string>();
  #stopped = false;

  constructor(options: ReleaseEngineOptions) {
    this.#runtime = options.runtime;
    this.#analysis = options.analysis;
    this.#log = options.log;
    this.#phases = options.phases;
    this.#now = options.now ?? Date.now;
    this.#inconclusiveLimit = options.inconclusiveLimit ?? 10;
    // A change of a member (this replica's or another's) re-plans its release's timer and reports the phase.
    this.#runtime.onChange((_service, record) => {
      if (record.release === undefined) return;
      this.#phases?.setReleasePhase(record.release.name, record.release.phase);
      if (!this.#ticking.has(record.release.name)) this.#schedule(record.release.name);
    });
    this.#runtime.leadership.onLeadership(() => {
      if (!this.#stopped) for (const config of this.#configs()) this.#schedule(config.name);
    });
  }

  /** Picks up every running release from the store. */
  start(): void {
    this.#stopped = false;
    for (const config of this.#configs()) {
      const record = this.#record(config);
      if (record === undefined) continue;
      this.#phases?.setReleasePhase(config.name, record.phase);
      if (isReleaseActive(record)) this.#schedule(config.name);
    }
  }

  /** Stops every timer (the stored releases stay as they are). */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const live of this.#live.values()) if (live.timer) clearTimeout(live.timer);
    this.#live.clear();
    await this.#runtime.idle();
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
      const compiled = this.#runtime.table.servicesByName.get(service);
      weights[service] = compiled?.split.weights ?? {};
      labels[service] = compiled?.versionsByName.get(canary)?.labels ?? {};
    }
    return describeRelease(config, record, this.#live.get(name), weights, labels);
  }

  /** Starts the configured release at its first step. */
  async startRelease(name: string, actor: string): Promise<ReleaseStatus> {
    const config = this.#config(name);
    await this.#command(config, actor, (views, now) => {
      const plan = releasePlan(config, views.get(Object.keys(config.services)[0]!)!.service);
      const release = newRelease(config, views, plan, now);
      this.#resetLive(name, release);
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
          this.#resetLive(name, release);
          return resumeRelease(release, views, now, why);
        }
        case 'promote':
          return promoteRelease(requireRelease(name, stored, verb, ['progressing', 'paused']), views, now, why, this.#live.get(name)?.lastAnalysis ?? null);
        case 'abort':
          return abortRelease(requireRelease(name, stored, verb, ['progressing', 'paused']), views, now, why, this.#live.get(name)?.lastAnalysis ?? null);
      }
    });
    return this.status(name);
  }

  #configs(): readonly ReleaseConfig[] {
    return this.#runtime.table.config.releases ?? [];
  }

  #config(name: string): ReleaseConfig {
    const config = this.#configs().find((r) => r.name === name);
    if (config !== undefined) return config;
    // Removed from the config while it ran: its members are still held, so its stored record still answers (abort frees them).
    for (const record of Object.values(this.#runtime.records())) {
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
      const r = this.#runtime.record(service).release;
      if (r !== undefined && r.name === config.name && (newest === undefined || r.updatedAt > newest.updatedAt)) newest = r;
    }
    return newest;
  }

  async #command(config: ReleaseConfig, actor: string, decide: (views: ReadonlyMap<string, ServiceView>, now: number) => MultiChange): Promise<void> {
    try {
      await this.#runtime.commandMany(Object.keys(config.services), actor, decide);
    } finally {
      this.#schedule(config.name);
    }
  }

  #resetLive(name: string, release: ReleaseRecord): void {
    const old = this.#live.get(name);
    if (old?.timer) clearTimeout(old.timer);
    const live: LiveRelease = { releaseId: release.id, failures: 0, inconclusive: 0, lastAnalysis: null, lastPassed: false, nextCheckAt: null, intervalMs: null, timer: null };
    if (old !== undefined && old.releaseId === release.id) live.lastAnalysis = old.lastAnalysis;
    this.#live.set(name, live);
  }

  /** Plans the next wake of a release, or forgets it when it is not running here. */
  #schedule(name: string): void {
    let live = this.#live.get(name);
    if (live?.timer) {
      clearTimeout(live.timer);
      live.timer = null;
    }
    const config = this.#configs().find((r) => r.name === name);
    const release = config === undefined ? undefined : this.#record(config);
    if (this.#stopped || release === undefined || !isReleaseActive(release) || !this.#runtime.leadership.isLeader()) {
      if (live !== undefined && (release === undefined || live.releaseId !== release.id || !isReleaseActive(release))) this.#live.delete(name);
      return;
    }
    if (live === undefined || live.releaseId !== release.id) {
      this.#resetLive(name, release);
      live = this.#live.get(name)!;
    }
    const now = this.#now();
    let due = Number.POSITIVE_INFINITY;
    const spec = specOf(release);
    if (spec !== null && release.phase === 'progressing') {
      if (live.nextCheckAt === null || live.intervalMs !== spec.intervalMs) live.nextCheckAt = now + spec.intervalMs;
      live.intervalMs = spec.intervalMs;
      due = live.nextCheckAt;
    } else {
      live.nextCheckAt = null;
      live.intervalMs = null;
    }
    if (release.phase === 'progressing') {
      const pauseMs = timedPauseMs(release.steps[release.step]) ?? 0;
      const stepDue = Date.parse(release.stepStartedAt) + pauseMs;
      if (stepDue > now || spec === null) due = Math.min(due, stepDue);
    }
    if (!Number.isFinite(due)) return;
    live.timer = setTimeout(() => void this.#tick(name, release.id), Math.max(0, due - now));
    live.timer.unref?.();
  }

  async #tick(name: string, releaseId: string): Promise<void> {
    if (this.#ticking.has(name)) return;
    this.#ticking.add(name);
    try {
      const config = this.#config(name);
      const release = this.#record(config);
      const live = this.#live.get(name);
      if (release === undefined || release.id !== releaseId || release.phase !== 'progressing' || live === undefined) return;
      live.timer = null;
      const now = this.#now();
      const spec = specOf(release);
      if (spec !== null && live.nextCheckAt !== null && now >= live.nextCheckAt) {
        live.nextCheckAt = now + spec.intervalMs;
        const results = await this.#check(release, spec, now);
        live.lastAnalysis = results;
        const verdicts = Object.values(results).map((r) => r.verdict);
        if (verdicts.includes('fail')) {
          live.failures++;
          live.inconclusive = 0;
          live.lastPassed = false;
          if (live.failures >= spec.failureLimit) {
            const failing = Object.entries(results).filter(([, r]) => r.verdict === 'fail').map(([s, r]) => `${s}: ${r.reasons.join('; ')}`);
            this.#log.warn({ release: name, failing }, 'release aborted by analysis');
            await this.#transition(config, release, (views, t) => abortRelease(release, views, t, `analysis failed ${live.failures} time(s) in a row: ${failing.join(' | ')}`, results));
            return;
          }
        } else if (verdicts.includes('inconclusive')) {
          live.inconclusive++;
          live.lastPassed = false;
          if (live.inconclusive >= this.#inconclusiveLimit) {
            await this.#transition(config, release, (views, t) => pauseRelease(release, views, t, 'analysis', `${live.inconclusive} inconclusive checks in a row: too little canary traffic`));
            return;
          }
        } else {
          live.failures = 0;
          live.inconclusive = 0;
          live.lastPassed = true;
        }
      }
      const pauseMs = timedPauseMs(release.steps[release.step]) ?? 0;
      if (now >= Date.parse(release.stepStartedAt) + pauseMs && (spec === null || live.lastPassed)) {
        const last = release.step === release.steps.length - 1;
        if (last) await this.#transition(config, release, (views, t) => promoteRelease(release, views, t, 'the last step completed', live.lastAnalysis));
        else await this.#transition(config, release, (views, t) => enterReleaseStep(release, views, release.step + 1, t, 'release.step', `step ${release.step + 1} done`, live.lastAnalysis));
      }
    } catch (err) {
      if (!(err instanceof StaleTick)) this.#log.error({ err, release: name }, 'release step failed; retrying at the next check');
    } finally {
      this.#ticking.delete(name);
      this.#schedule(name);
    }
  }

  /** Each member's canary against its stable version over the analysis window. */
  async #check(release: ReleaseRecord, spec: AnalysisSpec, now: number): Promise<Record<string, AnalysisResult>> {
    const at = new Date(now).toISOString();
    const out: Record<string, AnalysisResult> = {};
    for (const [service, member] of Object.entries(release.members)) {
      const windows = this.#analysis === null ? null : await this.#analysis.read({ service, canary: member.canary, stables: [member.stable], spanMs: spec.intervalMs });
      out[service] = analyseWindow(windows?.canary ?? null, windows?.stable ?? null, spec, at);
    }
    return out;
  }

  /** Applies an automatic change, unless a person changed the release since the tick read it. */
  async #transition(config: ReleaseConfig, seen: ReleaseRecord, change: (views: ReadonlyMap<string, ServiceView>, now: number) => MultiChange): Promise<void> {
    await this.#runtime.commandMany(Object.keys(config.services), 'release', (views, now) => {
      const current = storedRelease(config.name, views);
      if (current === undefined || current.id !== seen.id || current.phase !== seen.phase || current.step !== seen.step || current.stepStartedAt !== seen.stepStartedAt) throw new StaleTick();
      return change(views, now);
    });
  }
}
