// One analysis check of a running rollout, from its parts:
//
//   rollout hooks (each must answer 2xx) ──> veer's window of the canary and
//   the stable versions  ║  the metric queries (each bounded by the interval,
//   at most 10 s) ──> combineCheck: one verdict
//
// A rollout checks its service's canary; a release checks each member's
// canary the same way, with the release's metric checks and hooks.
// Everything it reads comes from the running config and the analysis
// source; it changes nothing.

import type { PrometheusConfig, RolloutHookConfig } from '../config/index.ts';
import type { AnalysisResult, AnalysisSpec } from '../state/index.ts';
import { analyseWindow, combineCheck } from './analysis.ts';
import type { AnalysisSource } from './analysis-source.ts';
import type { HookBody } from './hooks.ts';
import { MAX_QUERY_TIMEOUT_MS, type PrometheusClient } from './prometheus.ts';
import type { RolloutHooks } from './rollout-hooks.ts';

/** What a check reads from. */
export interface CheckSources {
  readonly windows: AnalysisSource | null;
  readonly prometheus: PrometheusClient;
  readonly hooks: RolloutHooks;
}

/** What one check is about: a service's canary (a rollout's, or one member's of a release) and what it is judged with. */
export interface CheckTarget {
  readonly service: string;
  readonly canary: string;
  /** The versions whose window the canary's is compared with. */
  readonly stables: readonly string[];
  /** What a metric query's {{stable}} names. */
  readonly queryStables: readonly string[];
  /** Where the metric queries go (the running config's `analysis.prometheus`). */
  readonly prometheus: PrometheusConfig | undefined;
  /** The `rollout` hooks called before the check (the running config's), and the body they get. */
  readonly hooks: readonly RolloutHookConfig[];
  readonly body: () => HookBody;
}

/** Runs one check of `target` against `spec` at `now`. */
export async function runCheck(sources: CheckSources, target: CheckTarget, spec: AnalysisSpec, now: number): Promise<AnalysisResult> {
  const at = new Date(now).toISOString();
  const hookCalls = await sources.hooks.call(target.hooks, target.body);
  const { service, canary, stables } = target;
  const checks = spec.metrics ?? [];
  const [windows, metrics] = await Promise.all([
    sources.windows === null ? null : sources.windows.read({ service, canary, stables, spanMs: spec.intervalMs }),
    checks.length === 0
      ? []
      : sources.prometheus.check(target.prometheus, checks, { service, canary, stables: target.queryStables, intervalMs: spec.intervalMs }, Math.min(spec.intervalMs, MAX_QUERY_TIMEOUT_MS)),
  ]);
  const result = combineCheck(analyseWindow(windows?.canary ?? null, windows?.stable ?? null, spec, at), metrics, hookCalls);
  return windows?.replicas === undefined ? result : { ...result, replicas: [...windows.replicas] };
}
