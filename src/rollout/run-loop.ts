// The one analysis/step loop, shared by a service's rollout (engine.ts)
// and a release (release-engine.ts): a timer per running run wakes it for
// the next analysis check, a wait of its own (a rollout's confirm-promotion
// hook) or the end of the current step's pause. The kinds differ only in
// what they read, how a check is made and which change each decision is
// (one service's, or every member's in one command); those are the
// abstract methods.
//
//   tick ──> check due? ── check ── fail x failureLimit ──> abortByAnalysis
//       │                        └── pass ──> afterPass (e.g. blue-green autoPromote)
//       │                        └── inconclusive x limit (progressing) ──> pauseByAnalysis
//       └──> a wait of its own due? ──> tickWait
//       └──> step's pause over and the step may move on? ──> moveOn (next step / promote)
//       └──> schedule the next wake: min(next check, waitDue, end of pause)
//
// Only the consecutive check counts and the last check are kept in memory;
// everything else is in the stored record, so a restart or a new leader
// continues from there.

import type { Logger } from '../log/index.ts';
import type { AnalysisSpec, RuntimeState } from '../state/index.ts';
import { isRunning, stepSpec, type RunRecord } from './run.ts';

/** A tick found the run changed under it (a person acted); it drops its decision. */
export class StaleTick extends Error {}

/** The verdict of one check. */
export type Verdict = 'pass' | 'fail' | 'inconclusive';

/** The loop's in-memory view of one running run; `A` is what one check gives. */
export interface LiveRun<A> {
  readonly runId: string;
  failures: number;
  inconclusive: number;
  lastAnalysis: A | null;
  nextCheckAt: number | null;
  /** The interval nextCheckAt was planned with (a step with its own analysis may change it). */
  intervalMs: number | null;
  timer: NodeJS.Timeout | null;
}

/** What the loop needs to be built. */
export interface RunLoopOptions {
  readonly runtime: RuntimeState;
  readonly log: Logger;
  readonly now: () => number;
  /** Inconclusive checks in a row before a progressing run pauses for a person. */
  readonly inconclusiveLimit: number;
}

/** Drives runs of one kind (keyed by service, or by release name) with timers. */
export abstract class RunLoop<R extends RunRecord, A, L extends LiveRun<A>> {
  protected readonly runtime: RuntimeState;
  protected readonly log: Logger;
  protected readonly now: () => number;
  readonly #inconclusiveLimit: number;
  readonly #live = new Map<string, L>();
  /** Keys whose tick is running: their timer is planned again when it ends, never meanwhile. */
  readonly #ticking = new Set<string>();
  #stopped = false;

  constructor(options: RunLoopOptions) {
    this.runtime = options.runtime;
    this.log = options.log;
    this.now = options.now;
    this.#inconclusiveLimit = options.inconclusiveLimit;
  }

  /** What the log calls a run of this kind, and the field that names its key. */
  protected abstract readonly noun: { readonly run: string; readonly key: string };
  /** The stored run of `key` (running or ended), or undefined. */
  protected abstract current(key: string): R | undefined;
  /** A fresh live view of the run `runId`. */
  protected abstract newLive(runId: string): L;
  /** Runs one check of `run` against `spec`. */
  protected abstract check(key: string, run: R, spec: AnalysisSpec, live: L, now: number): Promise<A>;
  /** The verdict of a check. */
  protected abstract verdictOf(result: A): Verdict;
  /** failureLimit failed checks in a row: the abort. */
  protected abstract abortByAnalysis(key: string, run: R, live: L, result: A): Promise<void>;
  /** Too many inconclusive checks in a row: the pause for a person. */
  protected abstract pauseByAnalysis(key: string, run: R, live: L, result: A): Promise<void>;
  /** The step's pause is over and the step may move on: the next step, or the end of the plan. */
  protected abstract moveOn(key: string, run: R, live: L): Promise<void>;
  /** How long the current step holds before it may move on (null: only a person moves it). */
  protected abstract stepPauseMs(run: R): number | null;
  /** True when the last check lets the step move on (the step has analysis). */
  protected abstract passed(run: R, live: L): boolean;

  /** Whether checks run in the run's phase (default: while it runs). */
  protected checksWhile(run: R): boolean {
    return isRunning(run);
  }

  /** False when the run cannot be driven now (e.g. its service left the config); the loop forgets it. */
  protected drivable(_key: string, _run: R): boolean {
    return true;
  }

  /** After each check (its counts are updated): a kind's own bookkeeping or log. */
  protected judged(_key: string, _run: R, _live: L, _verdict: Verdict, _result: A): void {}

  /** After a passing check: a change the pass makes at once (true: made). */
  protected async afterPass(_key: string, _run: R, _live: L, _result: A): Promise<boolean> {
    return false;
  }

  /** When a wait of the kind's own (not a check, not the step's pause) is due; Infinity for none. */
  protected waitDue(_run: R, _live: L, _now: number): number {
    return Number.POSITIVE_INFINITY;
  }

  /** Acts on that wait when it is due (true: the tick is done). */
  protected async tickWait(_key: string, _run: R, _live: L, _now: number): Promise<boolean> {
    return false;
  }

  /** Whether the step may move on now that it is due (e.g. every replica applied it); false: the next tick tries again. */
  protected async ready(_key: string, _run: R): Promise<boolean> {
    return true;
  }

  /** True once stop() ran and until start(). */
  protected get stopped(): boolean {
    return this.#stopped;
  }

  protected resume(): void {
    this.#stopped = false;
  }

  /** Stops every timer (the stored runs stay as they are) and waits for a command in flight. */
  protected async halt(): Promise<void> {
    this.#stopped = true;
    for (const live of this.#live.values()) if (live.timer) clearTimeout(live.timer);
    this.#live.clear();
    await this.runtime.idle();
  }

  /** The live view of `key` when it is the run `run`'s. */
  protected liveOf(key: string, run: RunRecord | undefined): L | undefined {
    const live = this.#live.get(key);
    return live !== undefined && run !== undefined && live.runId === run.id ? live : undefined;
  }

  /** The live view of `key`, whichever run it is of. */
  protected liveAny(key: string): L | undefined {
    return this.#live.get(key);
  }

  /** Starts the live counts of `run` over (the last check stays when it is the same run). */
  protected resetLive(key: string, run: RunRecord): L {
    const old = this.#live.get(key);
    if (old?.timer) clearTimeout(old.timer);
    const live = this.newLive(run.id);
    if (old !== undefined && old.runId === run.id) live.lastAnalysis = old.lastAnalysis;
    this.#live.set(key, live);
    return live;
  }

  /** A command from a person; whatever its outcome, the run's timer is planned again (a refused resume must not leave checks stopped). */
  protected async commandThenSchedule(key: string, command: () => Promise<unknown>): Promise<void> {
    try {
      await command();
    } finally {
      this.schedule(key);
    }
  }

  /** Plans the next wake of `key`'s run, or forgets it when none is running here. */
  protected schedule(key: string): void {
    const run = this.current(key);
    let live = this.#live.get(key);
    if (live?.timer) {
      clearTimeout(live.timer);
      live.timer = null;
    }
    if (this.#stopped || run === undefined || !isRunning(run) || !this.runtime.leadership.isLeader()) {
      if (live !== undefined && (run === undefined || live.runId !== run.id || !isRunning(run))) this.#live.delete(key);
      return;
    }
    if (!this.drivable(key, run)) {
      if (live !== undefined) this.#live.delete(key);
      return;
    }
    if (live === undefined || live.runId !== run.id) live = this.resetLive(key, run);
    const now = this.now();
    let due = Number.POSITIVE_INFINITY;
    const spec = stepSpec(run);
    if (spec !== null && this.checksWhile(run)) {
      // A step with its own analysis may check at another interval: the next check is planned with it.
      if (live.nextCheckAt === null || live.intervalMs !== spec.intervalMs) live.nextCheckAt = now + spec.intervalMs;
      live.intervalMs = spec.intervalMs;
      due = live.nextCheckAt;
    } else {
      live.nextCheckAt = null;
      live.intervalMs = null;
    }
    due = Math.min(due, this.waitDue(run, live, now));
    const pauseMs = this.stepPauseMs(run);
    if (run.phase === 'progressing' && pauseMs !== null) {
      const stepDue = Date.parse(run.stepStartedAt) + pauseMs;
      // Once the pause is over, only a passing check moves the step on: wake for the checks.
      if (stepDue > now || spec === null) due = Math.min(due, stepDue);
    }
    if (!Number.isFinite(due) || this.#ticking.has(key)) return;
    const timer = setTimeout(() => void this.#tick(key, run.id), Math.max(0, due - now));
    timer.unref();
    live.timer = timer;
  }

  async #tick(key: string, runId: string): Promise<void> {
    const live = this.#live.get(key);
    if (live === undefined || live.runId !== runId) return;
    live.timer = null;
    if (!this.runtime.leadership.isLeader()) return;
    const run = this.current(key);
    if (run === undefined || run.id !== runId || !isRunning(run)) return;
    const now = this.now();
    const spec = stepSpec(run);
    this.#ticking.add(key);
    try {
      if (spec !== null && this.checksWhile(run) && live.nextCheckAt !== null && now >= live.nextCheckAt) {
        live.nextCheckAt = now + spec.intervalMs;
        const result = await this.check(key, run, spec, live, now);
        live.lastAnalysis = result;
        const verdict = this.verdictOf(result);
        if (verdict === 'fail') live.failures++;
        else if (verdict === 'pass') live.failures = live.inconclusive = 0;
        else live.inconclusive++;
        this.judged(key, run, live, verdict, result);
        if (verdict === 'fail' && live.failures >= spec.failureLimit) return await this.abortByAnalysis(key, run, live, result);
        if (verdict === 'pass' && (await this.afterPass(key, run, live, result))) return;
        if (verdict === 'inconclusive' && run.phase === 'progressing' && live.inconclusive >= this.#inconclusiveLimit) return await this.pauseByAnalysis(key, run, live, result);
      }
      if (await this.tickWait(key, run, live, now)) return;
      const pauseMs = this.stepPauseMs(run);
      if (run.phase === 'progressing' && pauseMs !== null && now >= Date.parse(run.stepStartedAt) + pauseMs && (spec === null || this.passed(run, live))) {
        // A step counts as reached once the kind says so (a rollout: every live replica serves it).
        if (await this.ready(key, run)) await this.moveOn(key, run, live);
      }
    } catch (err) {
      if (!(err instanceof StaleTick)) this.log.error({ err, [this.noun.key]: key, id: runId }, `${this.noun.run} step failed; retrying at the next check`);
    } finally {
      this.#ticking.delete(key);
      this.schedule(key);
    }
  }
}
