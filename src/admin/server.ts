// The admin HTTP server (Fastify): health, readiness and /metrics for now;
// the admin API and the dashboard mount here.

import Fastify, { type FastifyInstance } from 'fastify';
import type { ReloadStats } from '../state/index.ts';
import { registerAdminApi, type AdminApi } from './api.ts';

/** What the admin server reads to answer health and readiness. */
export interface AdminOptions {
  readonly ready: () => boolean;
  readonly reloads: () => ReloadStats;
  readonly generation: () => number | null;
  /** Renders /metrics (Prometheus text and its content type); without it /metrics is 404. */
  readonly metrics?: () => Promise<{ readonly contentType: string; readonly body: string }>;
  readonly bodyLimit?: number;
  /** The admin API (/api/v1, token auth, JSON errors); without it only health, readiness and /metrics are served. */
  readonly api?: AdminApi;
  /** The state store's health, for /readyz. */
  readonly store?: () => Promise<{ readonly kind: string; readonly status: 'ok' | 'failing'; readonly error?: string }>;
}

/** Builds the admin server (not yet listening). */
export function createAdminServer(options: AdminOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: options.bodyLimit ?? 64 * 1024 });

  if (options.api !== undefined) registerAdminApi(app, options.api);

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const store = (await options.store?.()) ?? { kind: 'none', status: 'ok' };
    const ready = options.ready() && store.status === 'ok';
    const reloads = options.reloads();
    reply.code(ready ? 200 : 503);
    return {
      status: ready ? 'ready' : 'not_ready',
      config: {
        generation: options.generation(),
        reloads: { success: reloads.success, failure: reloads.failure },
        lastReloadError: reloads.lastError,
      },
      store,
    };
  });

  // --- metrics: GET /metrics (never behind the admin token, per the contract) ---
  const renderMetrics = options.metrics;
  if (renderMetrics !== undefined) {
    app.get('/metrics', async (_req, reply) => {
      const { contentType, body } = await renderMetrics();
      reply.header('content-type', contentType);
      reply.header('cache-control', 'no-store');
      return body;
    });
  }
  // --- end metrics ---

  app.setNotFoundHandler(async (req, reply) => {
    reply.code(404);
    return { error: { code: 'not_found', message: `no admin endpoint ${req.method} ${req.url}` } };
  });

  return app;
}
