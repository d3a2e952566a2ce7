// What GET .../rollout answers: the stored rollout plus the engine's live
// view (consecutive check results, when the next step and check are due).

import type { AnalysisResult, AnalysisSpec, HookCall, RolloutRecord } from '../state/index.ts';
import { currentSpec, timedPauseMs } from './plan.ts';
import type { LiveRun } from './run-loop.ts';

/** A confirm-promotion gate that has not said yes yet: since when it is asked, how often, and its last answers. */
export interface GateView {
  readonly since: string;
  readonly asked: number;
  readonly last: readonly HookCall[];
}

/** The engine's in-memory view of one running rollout (run-loop.ts), with its confirm-promotion wait. */
export interface LiveRollout extends LiveRun<AnalysisResult> {
  /** When the confirm-promotion hooks are asked next (while the rollout waits for them). */
  nextGateAt: number | null;
  gate: GateView | null;
}

/** A rollout as the API shows it. */
export interface RolloutStatus extends RolloutRecord {
  readonly service: string;
  /** The service's weights as published now. */
  readonly weights: Readonly<Record<string, number>>;
  readonly stepCount: number;
  /** The canary's weight in percent at the current step. */
  readonly canaryWeight: number;
  /** When the current step's pause ends (progressing with a pause), else null. */
  readonly nextStepAt: string | null;
  readonly nextCheckAt: string | null;
  readonly consecutiveFailures: number;
  readonly consecutiveInconclusive: number;
  /** The analysis the current step runs: its own (`steps[i].analysis`), else the rollout's. */
  readonly currentAnalysis: AnalysisSpec | null;
  /** While paused (confirm-promotion): the gate's answers so far. */
  readonly confirmPromotion: GateView | null;
  /** Promoted: until when `abort` rolls it back (its rollbackWindow after the promotion); else null. */
  readonly rollbackUntil?: string | null;
}

/** Merges the stored record and the live view. */
export function describeRollout(service: string, record: RolloutRecord, live: LiveRollout | undefined, weights: Readonly<Record<string, number>> = {}): RolloutStatus {
  const step = record.steps[record.step];
  const running = record.phase === 'progressing' || record.phase === 'paused';
  const current = live !== undefined && live.runId === record.id && running ? live : undefined;
  const pauseMs = timedPauseMs(step);
  const nextStepAt = record.phase === 'progressing' && pauseMs !== null ? new Date(Date.parse(record.stepStartedAt) + pauseMs).toISOString() : null;
  return {
    ...record,
    service,
    weights,
    lastAnalysis: current?.lastAnalysis ?? record.lastAnalysis,
    stepCount: record.steps.length,
    canaryWeight: record.phase === 'promoted' ? 100 : record.phase === 'aborted' || record.phase === 'rolledBack' ? 0 : (step?.weight ?? 0),
    nextStepAt,
    nextCheckAt: current?.nextCheckAt != null ? new Date(current.nextCheckAt).toISOString() : null,
    consecutiveFailures: current?.failures ?? 0,
    consecutiveInconclusive: current?.inconclusive ?? 0,
    currentAnalysis: running ? currentSpec(record) : null,
    confirmPromotion: record.pausedBy === 'confirm-promotion' ? (current?.gate ?? null) : null,
  };
}
