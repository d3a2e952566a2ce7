// GET /api/v1/history: the audit log of every weight and rollout change.

import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { RuntimeState } from '../state/index.ts';

const HistoryQuery = Type.Object(
  {
    service: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,6}$' })),
  },
  { additionalProperties: false },
);

/** Registers GET /history (mounted under /api/v1). */
export async function historyRoutes(app: FastifyInstance, options: { runtime: RuntimeState }): Promise<void> {
  app.get<{ Querystring: Static<typeof HistoryQuery> }>('/history', { schema: { querystring: HistoryQuery } }, async (req) => {
    const limit = req.query.limit === undefined ? 100 : Number(req.query.limit);
    return { history: options.runtime.history({ service: req.query.service, limit }) };
  });
}
