// One analysis check of a running rollout, from its parts:
//
//   rollout hooks (each must answer 2xx) ──> veer's window of the canary and
//   the stable versions  ║  the metric queries (each bounded by the interval,
//   at most 10 s) ──> combineCheck: one verdict
//
// Everything it reads comes from the published table (the running config)
// and the analysis source; it changes nothing.

import type { AnalysisResult, AnalysisSpec, RolloutRecord } from '../state/index.ts';
import type { CompiledService } from '../table/index.ts';
import { analyseWindow, combineCheck } from './analysis.ts';
import type { AnalysisSource } from './analysis-source.ts';
import { MAX_QUERY_TIMEOUT_MS, type PrometheusClient } from './prometheus.ts';
import type { RolloutHooks } from './rollout-hooks.ts';

/** What a check reads from. */
export interface CheckSources {
  readonly windows: AnalysisSource | null;
  readonly prometheus: PrometheusClient;
  readonly hooks: RolloutHooks;
}

/** Runs one check of `rollout` against `spec` at `now`; `last` is the previous check (for the rollout hooks' body). */
export async function runCheck(sources: CheckSources, service: string, compiled: CompiledService | undefined, rollout: RolloutRecord, spec: AnalysisSpec, last: AnalysisResult | null, now: number): Promise<AnalysisResult> {
  const at = new Date(now).toISOString();
  const hookCalls = await sources.hooks.callAll(compiled, 'rollout', () =>
    sources.hooks.bodyOf(service, rollout, compiled?.split.weights ?? {}, last, { hook: 'rollout', rollout: rollout.id }),
  );
  const stables = (compiled?.versions ?? []).filter((v) => v.name !== rollout.canary && (compiled!.split.weights[v.name] ?? 0) > 0).map((v) => v.name);
  const checks = spec.metrics ?? [];
  const [windows, metrics] = await Promise.all([
    sources.windows === null ? null : sources.windows.read({ service, canary: rollout.canary, stables, spanMs: spec.intervalMs }),
    checks.length === 0
      ? []
      : sources.prometheus.check(
          compiled?.rollout?.analysis?.prometheus,
          checks,
          { service, canary: rollout.canary, stables: stables.length > 0 ? stables : Object.keys(rollout.stable), intervalMs: spec.intervalMs },
          Math.min(spec.intervalMs, MAX_QUERY_TIMEOUT_MS),
        ),
  ]);
  const result = combineCheck(analyseWindow(windows?.canary ?? null, windows?.stable ?? null, spec, at), metrics, hookCalls);
  return windows?.replicas === undefined ? result : { ...result, replicas: [...windows.replicas] };
}
