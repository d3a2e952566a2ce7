// Checks of a service's `rollout` section that the schema cannot express:
// the strategy's needs (steps for canary, a preview rule for blueGreen),
// the Prometheus address and credentials, each metric check's range and
// placeholders (the rollout's and every step's), and each hook's URL,
// timeout and headers. The rollout room reads the section as it is; a
// config that passes here is one it can run.
//
// One part is compiled: a blue-green rollout's `preview` rule. It is open
// only while the rollout runs before its switch, which the state room says
// through the service's runtime weights (so every worker and replica gets
// it in the same change as the weights, through the same paths):
//
//   runtime weights { v1: 100, v2: 0, "@preview:v2": 1 }
//     -> split v1 100 / v2 0, and the preview rule first in `rules`: matching requests -> v2
//   runtime weights { v1: 100, v2: 0 } (abort) or { v1: 0, v2: 100 } (promote)
//     -> no preview rule
//
// A version name never contains "@" or ":", so the key cannot clash with one.

import type { MetricCheckConfig, RolloutConfig } from '../config/index.ts';
import { parseDuration } from '../config/index.ts';
import type { Path, Report } from './compile-service.ts';
import { MATCHERS, MatcherSpecError, type Matcher } from './matchers.ts';
import type { CompiledRule, CompiledVersion } from './types.ts';

/** Runtime-weights keys starting with this open the blue-green preview toward the version named after it. */
export const PREVIEW_KEY_PREFIX = '@preview:';

/** The runtime weights with the preview toward `version` opened (or, with null, the weights as they are). */
export function withPreview<W extends Readonly<Record<string, number>>>(weights: W, version: string | null | undefined): W {
  return version === null || version === undefined ? weights : { ...weights, [PREVIEW_KEY_PREFIX + version]: 1 };
}

/** The version the runtime weights open the preview toward, or null. */
export function previewTargetOf(weights: Readonly<Record<string, number>> | undefined): string | null {
  if (weights === undefined) return null;
  for (const key of Object.keys(weights)) if (key.startsWith(PREVIEW_KEY_PREFIX)) return key.slice(PREVIEW_KEY_PREFIX.length);
  return null;
}

/** True for a runtime-weights key that is not a version's weight. */
export function isPreviewKey(key: string): boolean {
  return key.startsWith(PREVIEW_KEY_PREFIX);
}

/** The kinds a preview rule may use, in the matcher registry's order. */
const PREVIEW_KINDS = ['header', 'cookie', 'query'] as const;

/**
 * The preview rule of `rollout` toward `to` (first in the service's rules
 * while open), or null when the section has none or it cannot be compiled
 * (checkRolloutSection reported why).
 */
export function compilePreviewRule(rollout: RolloutConfig | undefined, to: CompiledVersion): CompiledRule | null {
  const preview = rollout?.preview;
  if (preview === undefined) return null;
  const kinds = PREVIEW_KINDS.filter((k) => preview[k] !== undefined);
  if (kinds.length !== 1) return null;
  try {
    const condition = MATCHERS.get(kinds[0]!)!(preview[kinds[0]!]);
    return Object.freeze({ index: -1, conditions: Object.freeze([condition]), to, preview: true });
  } catch {
    return null;
  }
}

/** The placeholders a metric query may use; the rollout room fills exactly these. */
export const METRIC_PLACEHOLDERS = ['service', 'canary', 'stable', 'interval'] as const;

/** The longest a hook may take: a pre-rollout smoke test, not a job runner. */
export const MAX_HOOK_TIMEOUT_MS = 600_000;

/** Headers veer writes itself on a hook call. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'content-type', 'transfer-encoding', 'connection']);

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** Reports every problem of `rollout` (at `base`, the path of the section). */
export function checkRolloutSection(rollout: RolloutConfig, base: Path, report: Report): void {
  checkStrategy(rollout, base, report);
  checkRunChecks(rollout, base, report);
}

/** What a rollout and a release check over their steps: Prometheus metric checks, and hooks. */
type RunChecks = Pick<RolloutConfig, 'analysis' | 'steps' | 'hooks'>;

/** Reports every problem of the analysis (Prometheus, metric checks of the run and of each step) and of the hooks of a rollout or a release at `base`. */
export function checkRunChecks(rollout: RunChecks, base: Path, report: Report): void {
  const analysis = rollout.analysis;
  const prometheus = analysis?.prometheus;
  if (prometheus !== undefined) {
    const at = [...base, 'analysis', 'prometheus'];
    if (!isHttpUrl(prometheus.address)) report('invalid_analysis', [...at, 'address'], `"${prometheus.address}" is not an http:// or https:// URL`);
    if (prometheus.bearerToken !== undefined && prometheus.basicAuth !== undefined) report('invalid_analysis', at, 'give bearerToken or basicAuth, not both');
  }
  const topNames = new Set<string>();
  checkMetrics(analysis?.metrics, [...base, 'analysis', 'metrics'], prometheus !== undefined, topNames, report);
  (rollout.steps ?? []).forEach((step, i) => {
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

/** Steps for a canary, a preview rule (of one kind) for blueGreen; autoPromote only with blueGreen. */
function checkStrategy(rollout: RolloutConfig, base: Path, report: Report): void {
  const blueGreen = rollout.strategy === 'blueGreen';
  if (!blueGreen && rollout.steps === undefined) report('invalid_rollout', [...base, 'steps'], 'a canary rollout needs steps (or strategy: blueGreen with a preview rule)');
  if (blueGreen && rollout.steps !== undefined) report('invalid_rollout', [...base, 'steps'], 'a blueGreen rollout has no steps: it switches 100% at once on promote');
  if (!blueGreen && rollout.preview !== undefined) report('invalid_rollout', [...base, 'preview'], 'preview belongs to strategy: blueGreen (a canary rollout reaches users through its steps; use routes: for a fixed rule)');
  if (!blueGreen && rollout.autoPromote !== undefined) report('invalid_rollout', [...base, 'autoPromote'], 'autoPromote belongs to strategy: blueGreen (a canary rollout promotes at its last step)');
  checkRollbackWindow(rollout.rollbackWindow, base, report);
  const preview = rollout.preview;
  if (blueGreen && preview === undefined) {
    report('invalid_rollout', [...base, 'preview'], 'a blueGreen rollout needs a preview rule: { header | cookie | query: { name, value | regex | present } } that reaches the new version before the switch');
    return;
  }
  if (preview === undefined) return;
  const kinds = PREVIEW_KINDS.filter((k) => preview[k] !== undefined);
  if (kinds.length !== 1) {
    report('invalid_rollout', [...base, 'preview'], kinds.length === 0 ? 'needs one of header, cookie or query' : `takes one of header, cookie or query, not ${kinds.join(' and ')}`);
    return;
  }
  const kind = kinds[0]!;
  try {
    MATCHERS.get(kind)!(preview[kind]) satisfies Matcher;
  } catch (err) {
    if (!(err instanceof MatcherSpecError)) throw err;
    report(err.code, err.field ? [...base, 'preview', kind, err.field] : [...base, 'preview', kind], err.message);
  }
}

/** The longest rollback window: the old version's pools are kept open that long. */
const MAX_ROLLBACK_WINDOW_MS = 7 * 24 * 3_600_000;

/** Reports a `rollbackWindow` (of a rollout or a release at `base`) over the longest one. */
export function checkRollbackWindow(window: string | undefined, base: Path, report: Report): void {
  if (window !== undefined && parseDuration(window) > MAX_ROLLBACK_WINDOW_MS) {
    report('invalid_rollout', [...base, 'rollbackWindow'], `${window} is over the longest rollback window (7d = ${MAX_ROLLBACK_WINDOW_MS / 3_600_000}h)`);
  }
}

function checkMetrics(metrics: readonly MetricCheckConfig[] | undefined, at: Path, hasPrometheus: boolean, names: Set<string>, report: Report): void {
  if (metrics === undefined || metrics.length === 0) return;
  if (!hasPrometheus) report('invalid_analysis', at, 'metric checks need analysis.prometheus (its address) in the same rollout or release');
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
