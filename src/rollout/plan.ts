// A rollout plan: the config's `rollout` section, optionally overridden by
// the body of POST .../rollout, checked against the service and turned into
// the numbers the engine runs on.
//
//   rollout.analysis ──defaults──> the rollout's spec
//   steps[i].analysis ──over the rollout's fields, metrics added──> step i's spec
//
// The metric queries are part of the plan (kept with the rollout); the
// Prometheus address, its credentials and the hooks are not: they are read
// from the running config at each call, so no secret is ever stored.

import { Type, type Static } from '@sinclair/typebox';
import type { MetricCheckConfig, RolloutConfig } from '../config/index.ts';
import { VeerError } from '../errors.ts';
import { Duration, parseDuration, type AnalysisSpec, type MetricCheck, type RolloutRecord } from '../state/index.ts';
import type { CompiledService } from '../table/index.ts';

/** A step's pause that only `resume` ends. */
export const FOREVER = 'forever';

const Pause = Type.Union([Duration, Type.Literal(FOREVER)]);

const Analysis = Type.Object(
  {
    interval: Type.Optional(Duration),
    minRequests: Type.Optional(Type.Integer({ minimum: 0, maximum: 1e9 })),
    maxErrorRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    maxP99Ms: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1e9 })),
    failureLimit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  },
  { additionalProperties: false },
);

const Step = Type.Object(
  { weight: Type.Number({ minimum: 0, maximum: 100 }), pause: Type.Optional(Pause), analysis: Type.Optional(Analysis) },
  { additionalProperties: false },
);

/**
 * Body of POST .../rollout: every field overrides the config's plan. Metric
 * checks and hooks come from the config only (checked by `veer validate`);
 * an `analysis` in the body replaces the thresholds and keeps the config's metrics.
 */
export const RolloutBody = Type.Object(
  {
    canary: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
    steps: Type.Optional(Type.Array(Step, { minItems: 1, maxItems: 100 })),
    analysis: Type.Optional(Type.Union([Analysis, Type.Null()])),
  },
  { additionalProperties: false },
);
/** Body of POST .../rollout. */
export type RolloutBodyT = Static<typeof RolloutBody>;

/** One step of a plan: the canary's weight, its pause, and its own analysis when it has one. */
export interface PlanStep {
  readonly weight: number;
  readonly pause?: string;
  readonly analysis?: AnalysisSpec;
}

/** A plan ready to run. */
export interface RolloutPlan {
  /** blueGreen: one step at 0% with the preview rule open, then one switch; canary (default): the steps. */
  readonly strategy?: 'canary' | 'blueGreen';
  /** blueGreen: promote on the first passing check. */
  readonly autoPromote?: boolean;
  readonly canary: string;
  readonly steps: readonly PlanStep[];
  readonly analysis: AnalysisSpec | null;
}

/** A blue-green rollout's one step: the canary has no split traffic, only the preview rule's. */
const BLUE_GREEN_STEPS: readonly Static<typeof Step>[] = [{ weight: 0 }];

/** Analysis checks faster than this would mostly read empty windows. */
export const MIN_INTERVAL_MS = 100;

type Thresholds = Static<typeof Analysis>;

/** The config's plan with the body's overrides; throws invalid_rollout or unknown_version. */
export function resolvePlan(service: CompiledService, body: RolloutBodyT = {}): RolloutPlan {
  const configured = service.rollout;
  const canary = body.canary ?? configured?.canary;
  const blueGreen = configured?.strategy === 'blueGreen';
  if (blueGreen && body.steps !== undefined) throw new VeerError('invalid_rollout', `service ${service.name} rolls out blue-green: no steps, one switch on promote; leave steps out of the body`);
  // Blue-green: one step at 0% (the preview rule reaches the canary) that only promote or autoPromote ends.
  const steps = blueGreen ? BLUE_GREEN_STEPS : (body.steps ?? configured?.steps);
  if (canary === undefined || steps === undefined) {
    throw new VeerError('invalid_rollout', `service ${service.name} has no rollout plan in the config; give canary and steps in the body`);
  }
  if (!service.versionsByName.has(canary)) {
    throw new VeerError('unknown_version', `canary ${JSON.stringify(canary)} is not a version of service ${service.name} (versions: ${service.versions.map((v) => v.name).join(', ')})`);
  }
  if (service.versions.length < 2) throw new VeerError('invalid_rollout', `a rollout needs two versions, the canary and a stable one; ${service.name} has one`);
  const source: Thresholds | null = body.analysis !== undefined ? body.analysis : (configured?.analysis ?? null);
  const metrics = source === null ? [] : (configured?.analysis?.metrics ?? []);
  const analysis = source === null ? null : specOf(source, null, metrics.map(toCheck), 'analysis');
  return {
    strategy: blueGreen ? 'blueGreen' : 'canary',
    autoPromote: blueGreen && configured?.autoPromote === true,
    canary,
    steps: steps.map((s, i) => {
      const step: { weight: number; pause?: string; analysis?: AnalysisSpec } = { weight: s.weight };
      if (s.pause !== undefined) step.pause = s.pause;
      if (s.analysis !== undefined) step.analysis = stepSpec(s.analysis, source, analysis, i);
      return step;
    }),
    analysis,
  };
}

/** Step i's own analysis: its fields over the rollout's (defaults when the rollout has none), its metrics after the rollout's. */
function stepSpec(own: Thresholds & { metrics?: readonly MetricCheckConfig[] }, rollout: Thresholds | null, base: AnalysisSpec | null, index: number): AnalysisSpec {
  const merged: Thresholds = { ...(rollout ?? {}), ...own };
  const metrics = [...(base?.metrics ?? []), ...(own.metrics ?? []).map(toCheck)];
  return specOf(merged, base, metrics, `steps[${index}].analysis`);
}

function specOf(source: Thresholds, base: AnalysisSpec | null, metrics: readonly MetricCheck[], where: string): AnalysisSpec {
  const intervalMs = source.interval !== undefined ? parseDuration(source.interval) : (base?.intervalMs ?? 10_000);
  if (intervalMs < MIN_INTERVAL_MS) throw new VeerError('invalid_rollout', `${where}: the analysis interval must be at least ${MIN_INTERVAL_MS}ms`);
  const spec: AnalysisSpec = {
    intervalMs,
    minRequests: source.minRequests ?? 50,
    maxErrorRate: source.maxErrorRate ?? null,
    maxP99Ms: source.maxP99Ms ?? null,
    failureLimit: source.failureLimit ?? 2,
  };
  return metrics.length === 0 ? spec : { ...spec, metrics: [...metrics] };
}

function toCheck(m: MetricCheckConfig): MetricCheck {
  return { name: m.name, query: m.query, min: m.min ?? null, max: m.max ?? null };
}

/** The analysis that runs now: the current step's own, else the rollout's (null: no checks). */
export function currentSpec(rollout: RolloutRecord): AnalysisSpec | null {
  return rollout.steps[rollout.step]?.analysis ?? rollout.analysis;
}

/** How long a step holds before it may move on; null when only `resume` moves it (no pause, or `forever`). */
export function timedPauseMs(step: { readonly pause?: string } | undefined): number | null {
  if (step?.pause === undefined || step.pause === FOREVER) return null;
  return parseDuration(step.pause);
}

/** The hooks of `type` in the service's running config. */
export function hooksOf(rollout: RolloutConfig | null, type: string): NonNullable<RolloutConfig['hooks']> {
  return (rollout?.hooks ?? []).filter((h) => h.type === type);
}
