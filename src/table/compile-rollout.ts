// Checks of a service's `rollout` section that the schema cannot express:
// the Prometheus address and credentials, each metric check's range and
// placeholders (the rollout's and every step's), and each hook's URL,
// timeout and headers. Nothing is compiled: the rollout room reads the
// section as it is; a config that passes here is one it can run.

import type { MetricCheckConfig, RolloutConfig } from '../config/index.ts';
import { parseDuration } from '../config/index.ts';
import type { Path, Report } from './compile-service.ts';

/** The placeholders a metric query may use; the rollout room fills exactly these. */
export const METRIC_PLACEHOLDERS = ['service', 'canary', 'stable', 'interval'] as const;

/** The longest a hook may take: a pre-rollout smoke test, not a job runner. */
export const MAX_HOOK_TIMEOUT_MS = 600_000;

/** Headers veer writes itself on a hook call. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'content-type', 'transfer-encoding', 'connection']);

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** Reports every problem of `rollout` (at `base`, the path of the section). */
export function checkRolloutSection(rollout: RolloutConfig, base: Path, report: Report): void {
  const analysis = rollout.analysis;
  const prometheus = analysis?.prometheus;
  if (prometheus !== undefined) {
    const at = [...base, 'analysis', 'prometheus'];
    if (!isHttpUrl(prometheus.address)) report('invalid_analysis', [...at, 'address'], `"${prometheus.address}" is not an http:// or https:// URL`);
    if (prometheus.bearerToken !== undefined && prometheus.basicAuth !== undefined) report('invalid_analysis', at, 'give bearerToken or basicAuth, not both');
  }
  const topNames = new Set<string>();
  checkMetrics(analysis?.metrics, [...base, 'analysis', 'metrics'], prometheus !== undefined, topNames, report);
  rollout.steps.forEach((step, i) => {
    if (step.analysis?.metrics === undefined) return;
    // A step's metrics add to the rollout's: names must not repeat across the two.
    checkMetrics(step.analysis.metrics, [...base, 'steps', i, 'analysis', 'metrics'], prometheus !== undefined, new Set(topNames), report);
  });
  rollout.hooks?.forEach((hook, i) => {
    const at = [...base, 'hooks', i];
    if (!isHttpUrl(hook.url)) report('invalid_hook', [...at, 'url'], `"${hook.url}" is not an http:// or https:// URL`);
    if (hook.timeout !== undefined && parseDuration(hook.timeout) > MAX_HOOK_TIMEOUT_MS) report('invalid_hook', [...at, 'timeout'], `${hook.timeout} is over the longest a hook may take (${MAX_HOOK_TIMEOUT_MS / 60_000}m)`);
    for (const name of Object.keys(hook.headers ?? {})) {
      if (RESERVED_HEADERS.has(name.toLowerCase())) report('invalid_hook', [...at, 'headers', name], `veer sets ${name.toLowerCase()} itself on hook calls`, true);
    }
  });
}

function checkMetrics(metrics: readonly MetricCheckConfig[] | undefined, at: Path, hasPrometheus: boolean, names: Set<string>, report: Report): void {
  if (metrics === undefined || metrics.length === 0) return;
  if (!hasPrometheus) report('invalid_analysis', at, 'metric checks need analysis.prometheus (its address) in the rollout');
  metrics.forEach((metric, i) => {
    if (names.has(metric.name)) report('invalid_analysis', [...at, i, 'name'], `metric ${metric.name} is checked twice; give each a name of its own`);
    names.add(metric.name);
    if (metric.min === undefined && metric.max === undefined) report('invalid_analysis', [...at, i], `metric ${metric.name} has neither min nor max: give the range its value must stay in`);
    else if (metric.min !== undefined && metric.max !== undefined && metric.min > metric.max) report('invalid_analysis', [...at, i], `metric ${metric.name}: min ${metric.min} is over max ${metric.max}`);
    const problem = placeholderProblem(metric.query);
    if (problem !== null) report('invalid_analysis', [...at, i, 'query'], problem);
  });
}

/** Why a query's placeholders cannot be filled, or null. */
export function placeholderProblem(query: string): string | null {
  const known: readonly string[] = METRIC_PLACEHOLDERS;
  for (const m of query.matchAll(PLACEHOLDER)) {
    if (!known.includes(m[1]!)) return `unknown placeholder ${m[0]}; the placeholders are ${METRIC_PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')}`;
  }
  const rest = query.replace(PLACEHOLDER, '');
  if (rest.includes('{{') || rest.includes('}}')) return 'has an unterminated {{placeholder}}';
  return null;
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}
