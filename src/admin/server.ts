// The admin HTTP server (Fastify): health and readiness for now; the admin
// API, /metrics and the dashboard mount here.

import Fastify, { type FastifyInstance } from 'fastify';
import type { ReloadStats } from '../state/index.ts';

/** What the admin server reads to answer health and readiness. */
export interface AdminOptions {
  readonly ready: () => boolean;
  readonly reloads: () => ReloadStats;
  readonly generation: () => number | null;
  readonly bodyLimit?: number;
}

/** Builds the admin server (not yet listening). */
export function createAdminServer(options: AdminOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: options.bodyLimit ?? 64 * 1024 });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const ready = options.ready();
    const reloads = options.reloads();
    reply.code(ready ? 200 : 503);
    return {
      status: ready ? 'ready' : 'not_ready',
      config: {
        generation: options.generation(),
        reloads: { success: reloads.success, failure: reloads.failure },
        lastReloadError: reloads.lastError,
      },
      store: { kind: 'none', status: 'ok' },
    };
  });

  app.setNotFoundHandler(async (req, reply) => {
    reply.code(404);
    return { error: { code: 'not_found', message: `no admin endpoint ${req.method} ${req.url}` } };
  });

  return app;
}
