// /api/v1/services/{name}/rollout (start, status, verbs) and .../shift.
// Each call is one command through the rollout engine to state/.

import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { VeerError } from '../errors.ts';
import { RolloutBody, ShiftBody, type RolloutBodyT, type RolloutEngine, type RolloutVerb, type ShiftBodyT } from '../rollout/index.ts';
import type { RuntimeState } from '../state/index.ts';
import { serviceOrThrow } from './api-services.ts';

const ServiceParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 253 }) });
const VerbParams = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 253 }),
  verb: Type.Union([Type.Literal('pause'), Type.Literal('resume'), Type.Literal('promote'), Type.Literal('abort')]),
});
const VerbBody = Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false });

/** What the rollout routes need. */
export interface RolloutRouteOptions {
  readonly runtime: RuntimeState;
  readonly engine: RolloutEngine;
  readonly actorOf: (headers: Record<string, unknown>, ip: string) => string;
}

/** Registers the rollout and shift routes (mounted under /api/v1). */
export async function rolloutRoutes(app: FastifyInstance, options: RolloutRouteOptions): Promise<void> {
  const { runtime, engine, actorOf } = options;

  app.get<{ Params: Static<typeof ServiceParams> }>('/services/:name/rollout', { schema: { params: ServiceParams } }, async (req) => {
    serviceOrThrow(runtime, req.params.name);
    const status = engine.status(req.params.name);
    if (status === null) throw new VeerError('no_rollout', `service ${req.params.name} has no rollout`);
    return status;
  });

  app.post<{ Params: Static<typeof ServiceParams>; Body: RolloutBodyT | undefined }>('/services/:name/rollout', { schema: { params: ServiceParams, body: RolloutBody } }, async (req, reply) => {
    const status = await engine.startRollout(req.params.name, req.body ?? {}, actorOf(req.headers, req.ip));
    reply.code(201);
    return status;
  });

  app.post<{ Params: Static<typeof VerbParams>; Body: Static<typeof VerbBody> | undefined }>('/services/:name/rollout/:verb', { schema: { params: VerbParams, body: VerbBody } }, async (req) =>
    engine.act(req.params.name, req.params.verb as RolloutVerb, actorOf(req.headers, req.ip), req.body?.reason),
  );

  app.post<{ Params: Static<typeof ServiceParams>; Body: ShiftBodyT }>('/services/:name/shift', { schema: { params: ServiceParams, body: ShiftBody } }, async (req) =>
    engine.startShift(req.params.name, req.body, actorOf(req.headers, req.ip)),
  );

  app.delete<{ Params: Static<typeof ServiceParams> }>('/services/:name/shift', { schema: { params: ServiceParams } }, async (req) => engine.stopShift(req.params.name, actorOf(req.headers, req.ip)));
}
