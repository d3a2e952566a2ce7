// One analysis check: the canary's numbers over a sliding window, judged on
// their own (absolute thresholds) and against the stable versions over the
// same window (relative checks).
//
//   canary requests < max(1, minRequests)            -> inconclusive (not a pass)
//   error ratio > maxErrorRate                       -> fail
//   p99 > maxP99Ms                                   -> fail
//   error ratio worse than stable's: one-sided two-proportion z-test,
//     z > 2.326 (99%) and at least 2 points worse    -> fail
//   p99 > 1.5 x stable p99 and > stable p99 + 50 ms  -> fail
//   otherwise                                        -> pass
//
// The relative checks need at least max(1, minRequests) stable requests in
// the window; with fewer they are skipped (and the result says so).

import { quantileOf, type WindowStats } from '../metrics/index.ts';
import type { AnalysisResult, AnalysisSpec, HookCall, MetricResult } from '../state/index.ts';

/** One-sided z for "canary is worse than stable" at 99% confidence. */
export const Z_CRITICAL = 2.326;
/** The canary's error ratio must also be at least this much (absolute) above stable's. */
export const MIN_ERROR_RATIO_DIFF = 0.02;
/** Latency: the canary fails when its p99 exceeds stable's by this factor... */
export const LATENCY_RATIO = 1.5;
/** ...and by at least this many milliseconds. */
export const LATENCY_MARGIN_MS = 50;

/** Sums several versions' windows into one (e.g. every stable version). */
export function mergeStats(list: readonly WindowStats[]): WindowStats | null {
  const first = list[0];
  if (first === undefined) return null;
  const buckets = first.buckets.map(() => 0);
  let requests = 0;
  let errors = 0;
  for (const s of list) {
    requests += s.requests;
    errors += s.errors;
    s.buckets.forEach((n, i) => (buckets[i]! += n));
  }
  return { spanMs: first.spanMs, requests, errors, errorRatio: requests === 0 ? 0 : errors / requests, bounds: first.bounds, buckets };
}

/**
 * z of a one-sided two-proportion test that p1 = x1/n1 is greater than
 * p2 = x2/n2, with the pooled standard error; 0 when it cannot be told.
 */
export function twoProportionZ(x1: number, n1: number, x2: number, n2: number): number {
  if (n1 === 0 || n2 === 0) return 0;
  const pooled = (x1 + x2) / (n1 + n2);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  if (se === 0) return 0;
  return (x1 / n1 - x2 / n2) / se;
}

const pct = (r: number) => `${(r * 100).toFixed(2)}%`;
const ms = (v: number | null) => (v === null ? 'n/a' : `${v.toFixed(1)}ms`);

function summary(stats: WindowStats | null): AnalysisResult['canary'] {
  if (stats === null) return { requests: 0, errors: 0, errorRatio: 0, p99Ms: null };
  const p99 = quantileOf(stats, 0.99);
  return { requests: stats.requests, errors: stats.errors, errorRatio: stats.errorRatio, p99Ms: p99 === null ? null : Math.round(p99 * 1e4) / 10 };
}

/** Judges one window of canary (and stable) traffic against `spec`. */
export function analyseWindow(canaryStats: WindowStats | null, stableStats: WindowStats | null, spec: AnalysisSpec, at: string): AnalysisResult {
  const canary = summary(canaryStats);
  const stable = summary(stableStats);
  const windowMs = canaryStats?.spanMs ?? spec.intervalMs;
  const need = Math.max(1, spec.minRequests);
  const base = { at, windowMs, canary, stable };
  if (canary.requests < need) {
    return { ...base, verdict: 'inconclusive', reasons: [`only ${canary.requests} canary requests in the last ${windowMs}ms (minRequests ${need})`], z: null };
  }
  const reasons: string[] = [];
  if (spec.maxErrorRate !== null && canary.errorRatio > spec.maxErrorRate) {
    reasons.push(`canary error ratio ${pct(canary.errorRatio)} (${canary.errors}/${canary.requests}) is over maxErrorRate ${pct(spec.maxErrorRate)}`);
  }
  if (spec.maxP99Ms !== null && canary.p99Ms !== null && canary.p99Ms > spec.maxP99Ms) {
    reasons.push(`canary p99 ${ms(canary.p99Ms)} is over maxP99Ms ${spec.maxP99Ms}ms`);
  }
  let z: number | null = null;
  if (stable.requests >= need) {
    z = Math.round(twoProportionZ(canary.errors, canary.requests, stable.errors, stable.requests) * 1000) / 1000;
    if (z > Z_CRITICAL && canary.errorRatio - stable.errorRatio >= MIN_ERROR_RATIO_DIFF) {
      reasons.push(`canary error ratio ${pct(canary.errorRatio)} is worse than stable's ${pct(stable.errorRatio)} (z=${z} > ${Z_CRITICAL})`);
    }
    if (canary.p99Ms !== null && stable.p99Ms !== null && canary.p99Ms > LATENCY_RATIO * stable.p99Ms && canary.p99Ms > stable.p99Ms + LATENCY_MARGIN_MS) {
      reasons.push(`canary p99 ${ms(canary.p99Ms)} is over ${LATENCY_RATIO}x stable's ${ms(stable.p99Ms)} and ${LATENCY_MARGIN_MS}ms above it`);
    }
  }
  if (reasons.length > 0) return { ...base, verdict: 'fail', reasons, z };
  const note = z === null ? `; stable had ${stable.requests} requests, too few to compare` : '';
  return { ...base, verdict: 'pass', reasons: [`canary ${pct(canary.errorRatio)} errors, p99 ${ms(canary.p99Ms)} over ${canary.requests} requests; stable ${pct(stable.errorRatio)}, p99 ${ms(stable.p99Ms)}${note}`], z };
}

/**
 * One check's verdict from its parts: veer's own numbers, the metric checks
 * and the `rollout` hooks called before it. Any failure fails the check; else
 * anything inconclusive leaves it inconclusive (never a pass); else it passes.
 */
export function combineCheck(own: AnalysisResult, metrics: readonly MetricResult[], hooks: readonly HookCall[]): AnalysisResult {
  if (metrics.length === 0 && hooks.length === 0) return own;
  const failedHooks = hooks.filter((h) => !h.ok);
  const failed = [...(own.verdict === 'fail' ? own.reasons : []), ...metrics.filter((m) => m.verdict === 'fail').map((m) => m.reason), ...failedHooks.map((h) => `rollout hook ${h.url} ${h.error ?? 'failed'}`)];
  const extra = { ...(metrics.length > 0 ? { metrics: [...metrics] } : {}), ...(hooks.length > 0 ? { hooks: [...hooks] } : {}) };
  if (failed.length > 0) return { ...own, ...extra, verdict: 'fail', reasons: failed };
  const unsure = [...(own.verdict === 'inconclusive' ? own.reasons : []), ...metrics.filter((m) => m.verdict === 'inconclusive').map((m) => `${m.reason} (query: ${m.query})`)];
  if (unsure.length > 0) return { ...own, ...extra, verdict: 'inconclusive', reasons: unsure };
  return { ...own, ...extra, verdict: 'pass', reasons: [...own.reasons, ...metrics.map((m) => m.reason)] };
}
