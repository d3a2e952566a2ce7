// The admin HTTP server (Fastify): health, readiness and /metrics; the
// admin API and the dashboard mount here.

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
  /** The state store's health, for /readyz: `degraded` (unreachable, serving the last known state) is still ready. */
  readonly store?: () => Promise<{ readonly kind: string; readonly status: 'ok' | 'degraded' | 'failing'; readonly error?: string }>;
  /** Resolves once every data-plane process runs the published table (cluster workers); writes answer after it. */
  readonly settle?: () => Promise<void>;
  /** Cluster workers configured and serving; with none serving, veer is not ready. */
  readonly workers?: () => { readonly configured: number; readonly serving: number };
  /** The TLS listener's certificates in use (names, expiry), for /readyz. */
  readonly certificates?: () => readonly { readonly cert: string; readonly names: readonly string[]; readonly notAfter: string }[];
}

/** Builds the admin server (not yet listening). */
export function createAdminServer(options: AdminOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: options.bodyLimit ?? 64 * 1024 });

  // With workers, a write's answer waits until every worker serves its table.
  const settle = options.settle;
  if (settle !== undefined) {
    app.addHook('onSend', async (req, _reply, payload) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') await settle();
      return payload;
    });
  }

  if (options.api !== undefined) registerAdminApi(app, options.api);

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const store = (await options.store?.()) ?? { kind: 'none', status: 'ok' };
    const workers = options.workers?.();
    const ready = options.ready() && store.status !== 'failing' && (workers === undefined || workers.serving > 0);
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
      ...(workers === undefined ? {} : { workers }),
      ...(options.certificates === undefined ? {} : { certificates: options.certificates().map(({ cert, names, notAfter }) => ({ cert, names, notAfter })) }),
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
