// Owns: rollouts and shifts over time: plans, steps and their timers, analysis (per-version numbers, Prometheus metric checks), hooks, promote or abort.
// Must not touch: the route table or the store directly (every weight change is a command to state/), listening sockets; its only HTTP is as a client (Prometheus, hooks).

export { RolloutEngine } from './engine.ts';
export type { RolloutEngineOptions, RolloutPhaseSink, RolloutVerb } from './engine.ts';
export { ShiftDriver, ShiftBody, MIN_SHIFT_EVERY_MS } from './shift.ts';
export type { ShiftBodyT, ShiftStatus } from './shift.ts';
export { RolloutBody, resolvePlan, currentSpec, timedPauseMs, FOREVER, MIN_INTERVAL_MS } from './plan.ts';
export type { RolloutBodyT, RolloutPlan, PlanStep } from './plan.ts';
export { analyseWindow, combineCheck, mergeStats, twoProportionZ, Z_CRITICAL, MIN_ERROR_RATIO_DIFF, LATENCY_RATIO, LATENCY_MARGIN_MS } from './analysis.ts';
export { PrometheusClient, fillQuery, judgeMetric, promDuration, formatValue, MAX_QUERY_TIMEOUT_MS } from './prometheus.ts';
export type { QueryContext } from './prometheus.ts';
export { callHook, recordedUrl, hookTimeoutMs, describeCall, HookDeliveries, DEFAULT_HOOK_TIMEOUT_MS, DEFAULT_PRE_ROLLOUT_TIMEOUT_MS, MAX_QUEUED_DELIVERIES } from './hooks.ts';
export type { HookBody, RetryPolicy } from './hooks.ts';
export { LocalWindowsSource } from './analysis-source.ts';
export { FleetWindows, publishPeriodMs } from './fleet-windows.ts';
export type { FleetWindowsOptions } from './fleet-windows.ts';
export type { AnalysisSource, AnalysisQuery, AnalysisWindows, VersionStatsSource } from './analysis-source.ts';
export { describeRollout } from './status.ts';
export { DEFAULT_ROLLBACK_WINDOW, describePreview } from './blue-green.ts';
export type { RolloutStatus, LiveRollout, GateView } from './status.ts';
export { ReleaseEngine } from './release-engine.ts';
export type { ReleaseEngineOptions, ReleasePhaseSink } from './release-engine.ts';
export type { ReleaseVerb } from './release.ts';
export type { ReleaseStatus, ReleaseMemberStatus } from './release-status.ts';
