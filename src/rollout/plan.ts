// A rollout plan: the config's `rollout` section, optionally overridden by
// the body of POST .../rollout, checked against the service and turned into
// the numbers the engine runs on.

import { Type, type Static } from '@sinclair/typebox';
import { VeerError } from '../errors.ts';
import { Duration, parseDuration, type AnalysisSpec } from '../state/index.ts';
import type { CompiledService } from '../table/index.ts';

const Step = Type.Object(
  { weight: Type.Number({ minimum: 0, maximum: 100 }), pause: Type.Optional(Duration) },
  { additionalProperties: false },
);

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

/** Body of POST .../rollout: every field overrides the config's plan. */
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

/** A plan ready to run. */
export interface RolloutPlan {
  readonly canary: string;
  readonly steps: readonly { readonly weight: number; readonly pause?: string }[];
  readonly analysis: AnalysisSpec | null;
}

/** Analysis checks faster than this would mostly read empty windows. */
export const MIN_INTERVAL_MS = 100;

/** The config's plan with the body's overrides; throws invalid_rollout or unknown_version. */
export function resolvePlan(service: CompiledService, body: RolloutBodyT = {}): RolloutPlan {
  const configured = service.rollout;
  const canary = body.canary ?? configured?.canary;
  const steps = body.steps ?? configured?.steps;
  if (canary === undefined || steps === undefined) {
    throw new VeerError('invalid_rollout', `service ${service.name} has no rollout plan in the config; give canary and steps in the body`);
  }
  if (!service.versionsByName.has(canary)) {
    throw new VeerError('unknown_version', `canary ${JSON.stringify(canary)} is not a version of service ${service.name} (versions: ${service.versions.map((v) => v.name).join(', ')})`);
  }
  if (service.versions.length < 2) throw new VeerError('invalid_rollout', `a rollout needs two versions, the canary and a stable one; ${service.name} has one`);
  const source = body.analysis !== undefined ? body.analysis : (configured?.analysis ?? null);
  let analysis: AnalysisSpec | null = null;
  if (source !== null) {
    const intervalMs = parseDuration(source.interval ?? '10s');
    if (intervalMs < MIN_INTERVAL_MS) throw new VeerError('invalid_rollout', `analysis interval must be at least ${MIN_INTERVAL_MS}ms`);
    analysis = {
      intervalMs,
      minRequests: source.minRequests ?? 50,
      maxErrorRate: source.maxErrorRate ?? null,
      maxP99Ms: source.maxP99Ms ?? null,
      failureLimit: source.failureLimit ?? 2,
    };
  }
  return { canary, steps: steps.map((s) => (s.pause === undefined ? { weight: s.weight } : { weight: s.weight, pause: s.pause })), analysis };
}
