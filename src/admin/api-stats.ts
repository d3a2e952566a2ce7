// GET /api/v1/stats: each version's recent traffic (rate, error ratio, p50,
// p99) from the same per-version windows rollout analysis reads, for the
// dashboard and for scripts that want numbers without a Prometheus.

import type { FastifyInstance } from 'fastify';
import type { WindowSummary } from '../metrics/index.ts';
import { parseDuration, type RuntimeState } from '../state/index.ts';
import { sendError } from './api-errors.ts';

/** One version's window, as the stats provider gives it. */
export type VersionWindowStats = WindowSummary;

/** Reads one version's last `spanMs` of traffic; null for an unknown version. */
export type StatsSource = (service: string, version: string, spanMs: number) => VersionWindowStats | null;

const MAX_WINDOW_MS = 5 * 60_000;
const DEFAULT_WINDOW = '10s';

/** Registers GET /stats (under the /api/v1 prefix). */
export async function statsRoutes(app: FastifyInstance, opts: { runtime: RuntimeState; stats: StatsSource }): Promise<void> {
  app.get('/stats', async (req, reply) => {
    const raw = (req.query as { window?: unknown }).window ?? DEFAULT_WINDOW;
    let spanMs: number;
    try {
      spanMs = parseDuration(String(raw));
    } catch {
      return sendError(reply, 400, 'invalid_body', `window must be a duration such as 10s or 1m (got ${JSON.stringify(raw)})`);
    }
    if (spanMs <= 0 || spanMs > MAX_WINDOW_MS) return sendError(reply, 400, 'invalid_body', 'window must be between 1ms and 5m');
    const services: Record<string, { versions: Record<string, VersionWindowStats & { rps: number }> }> = {};
    for (const service of opts.runtime.table.services) {
      const versions: Record<string, VersionWindowStats & { rps: number }> = {};
      for (const version of service.versions) {
        const stats = opts.stats(service.name, version.name, spanMs);
        if (stats === null) continue;
        versions[version.name] = { ...stats, rps: stats.spanMs > 0 ? (stats.requests * 1000) / stats.spanMs : 0 };
      }
      services[service.name] = { versions };
    }
    return { windowMs: spanMs, services };
  });
}
