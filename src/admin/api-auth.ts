// Bearer-token auth for the admin server. With a token configured, every
// request but /metrics, /healthz and /readyz must carry
// `Authorization: Bearer <token>`. Tokens are compared as SHA-256 digests
// with timingSafeEqual: equal lengths, constant time, no length leak.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { sendError } from './api-errors.ts';

/** Paths anyone may read, token or not: scrapers, probes, and the dashboard page (which holds no data). */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/metrics', '/healthz', '/readyz', '/']);

/** The dashboard page's own code and styles (no data): public too. Plain names only, so no `..` or encoded path slips past. */
export const PUBLIC_ASSET = /^\/dashboard\/(?:vendor\/)?[a-z][a-z-]*\.(?:js|css)$/;

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** True when `header` is `Bearer <token>` for exactly `token`. */
export function checkBearer(header: string | undefined, token: string): boolean {
  const match = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  // Compare even when the header is missing, so both paths take the same time.
  const given = digest(match?.[1] ?? '');
  return timingSafeEqual(given, digest(token)) && match !== null;
}

/**
 * Adds the auth hook to the root of `app` (it covers every route, the 404
 * handler too). `token()` is read per request, so a reloaded config applies;
 * an empty or missing token turns auth off.
 */
export function installAdminAuth(app: FastifyInstance, token: () => string | undefined): void {
  app.addHook('onRequest', async (req, reply) => {
    const expected = token();
    if (expected === undefined || expected === '') return;
    const q = req.url.indexOf('?');
    const path = q === -1 ? req.url : req.url.slice(0, q);
    if (PUBLIC_PATHS.has(path) || (req.method === 'GET' && PUBLIC_ASSET.test(path))) return;
    if (checkBearer(req.headers.authorization, expected)) return;
    reply.header('www-authenticate', 'Bearer realm="veer"');
    return sendError(reply, 401, 'unauthorized', req.headers.authorization === undefined ? 'missing admin token: send Authorization: Bearer <token>' : 'wrong admin token');
  });
}
