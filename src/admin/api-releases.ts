// /api/v1/releases (list), /api/v1/releases/{name} (status) and
// POST /api/v1/releases/{name}/{start|pause|resume|promote|abort}.
// Each write is one multi-service command through the release engine.

import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ReleaseEngine, ReleaseVerb } from '../rollout/index.ts';

const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 253 }) });
const VerbParams = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 253 }),
  verb: Type.Union([Type.Literal('start'), Type.Literal('pause'), Type.Literal('resume'), Type.Literal('promote'), Type.Literal('abort')]),
});
const VerbBody = Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false });

/** What the release routes need. */
export interface ReleaseRouteOptions {
  readonly releases: ReleaseEngine;
  readonly actorOf: (headers: Record<string, unknown>, ip: string) => string;
}

/** Registers the release routes (mounted under /api/v1). */
export async function releaseRoutes(app: FastifyInstance, options: ReleaseRouteOptions): Promise<void> {
  const { releases, actorOf } = options;

  app.get('/releases', async () => ({ releases: releases.list() }));

  app.get<{ Params: Static<typeof NameParams> }>('/releases/:name', { schema: { params: NameParams } }, async (req) => releases.status(req.params.name));

  app.post<{ Params: Static<typeof VerbParams>; Body: Static<typeof VerbBody> | undefined }>('/releases/:name/:verb', { schema: { params: VerbParams, body: VerbBody } }, async (req, reply) => {
    const actor = actorOf(req.headers, req.ip);
    if (req.params.verb === 'start') {
      const status = await releases.startRelease(req.params.name, actor);
      reply.code(201);
      return status;
    }
    return releases.act(req.params.name, req.params.verb as ReleaseVerb, actor, req.body?.reason);
  });
}
