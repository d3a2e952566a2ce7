// What a rollout (one service) and a release (several services, one
// cohort) have in common: a run through plan steps, and the moves of its
// phase. transitions.ts and release.ts build their records with these and
// add what differs (weights of one service or of every member, the history
// line); run-loop.ts drives both over time.
//
//   startRun ──> progressing ──enterRunStep──> progressing | paused (plan)
//                    │   ▲
//        holdRun     ▼   │ continueRun (the step starts its pause over)
//                  paused
//   progressing | paused ──endRun──> promoted | aborted | rolledBack

import type { AnalysisSpec, RolloutRecord } from '../state/index.ts';

/** An epoch-ms time as the records write it. */
export const iso = (ms: number) => new Date(ms).toISOString();

/** The fields a rollout record and a release record share. */
export interface RunRecord {
  readonly id: string;
  readonly steps: readonly { readonly weight: number; readonly pause?: string; readonly analysis?: AnalysisSpec }[];
  readonly analysis: AnalysisSpec | null;
  readonly phase: RolloutRecord['phase'];
  readonly pausedBy: RolloutRecord['pausedBy'];
  readonly step: number;
  readonly stepStartedAt: string;
  readonly startedAt: string;
  readonly updatedAt: string;
  readonly endedAt: string | null;
  readonly reason: string;
}

/** Who holds a paused run. */
export type PausedBy = NonNullable<RolloutRecord['pausedBy']>;

/** A run's plan and phase fields at its start on `plan`: progressing at step 0, nothing analysed yet. */
export function startRun(plan: Pick<RunRecord, 'steps' | 'analysis'>, now: number) {
  const at = iso(now);
  return {
    steps: plan.steps.map((s) => ({ ...s })),
    analysis: plan.analysis,
    phase: 'progressing' as const,
    pausedBy: null,
    step: 0,
    stepStartedAt: at,
    startedAt: at,
    updatedAt: at,
    endedAt: null,
    reason: 'started',
  };
}

/** True while the run holds its weights (a person or the plan may still move them). */
export function isRunning(run: RunRecord | undefined): boolean {
  return run !== undefined && (run.phase === 'progressing' || run.phase === 'paused');
}

/** The analysis the current step runs: its own, else the run's (null: no checks). */
export function stepSpec(run: RunRecord): AnalysisSpec | null {
  return run.steps[run.step]?.analysis ?? run.analysis;
}

/** At step `index`: progressing through its pause, or (held) paused by the plan until resume. */
export function enterRunStep<R extends RunRecord>(run: R, index: number, now: number, held: boolean, reason: string, extra: Partial<R> = {}): R {
  const at = iso(now);
  return { ...run, step: index, stepStartedAt: at, updatedAt: at, phase: held ? 'paused' : 'progressing', pausedBy: held ? 'plan' : null, reason, ...extra };
}

/** Paused where it is (weights stay). */
export function holdRun<R extends RunRecord>(run: R, now: number, by: PausedBy, reason: string, extra: Partial<R> = {}): R {
  return { ...run, phase: 'paused', pausedBy: by, updatedAt: iso(now), reason, ...extra };
}

/** Progressing again at the current step, whose pause starts over. */
export function continueRun<R extends RunRecord>(run: R, now: number, reason: string, extra: Partial<R> = {}): R {
  const at = iso(now);
  return { ...run, phase: 'progressing', pausedBy: null, stepStartedAt: at, updatedAt: at, reason, ...extra };
}

/** Ended: promoted, aborted or rolled back. */
export function endRun<R extends RunRecord>(run: R, phase: 'promoted' | 'aborted' | 'rolledBack', now: number, reason: string, extra: Partial<R> = {}): R {
  const at = iso(now);
  return { ...run, phase, pausedBy: null, updatedAt: at, endedAt: at, reason, ...extra };
}

/** True when `current` is still the run a tick read as `seen` (no one moved it meanwhile). */
export function isSameRun(seen: RunRecord, current: RunRecord | undefined): boolean {
  return current !== undefined && current.id === seen.id && current.phase === seen.phase && current.step === seen.step && current.stepStartedAt === seen.stepStartedAt;
}
