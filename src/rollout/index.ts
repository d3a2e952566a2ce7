// Owns: rollouts and shifts over time: plans, steps and their timers, analysis of per-version numbers, promote or abort.
// Must not touch: the route table or the store directly (every weight change is a command to state/), sockets, HTTP.

export { RolloutEngine } from './engine.ts';
export type { RolloutEngineOptions, RolloutPhaseSink, RolloutVerb } from './engine.ts';
export { ShiftDriver, ShiftBody, MIN_SHIFT_EVERY_MS } from './shift.ts';
export type { ShiftBodyT, ShiftStatus } from './shift.ts';
export { RolloutBody, resolvePlan, MIN_INTERVAL_MS } from './plan.ts';
export type { RolloutBodyT, RolloutPlan } from './plan.ts';
export { analyseWindow, mergeStats, twoProportionZ, Z_CRITICAL, MIN_ERROR_RATIO_DIFF, LATENCY_RATIO, LATENCY_MARGIN_MS } from './analysis.ts';
export { LocalWindowsSource } from './analysis-source.ts';
export type { AnalysisSource, AnalysisQuery, AnalysisWindows, VersionStatsSource } from './analysis-source.ts';
export { describeRollout } from './status.ts';
export type { RolloutStatus, LiveRollout } from './status.ts';
