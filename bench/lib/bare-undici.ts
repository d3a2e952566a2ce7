// The floor for any Node proxy built on undici: http.createServer plus one
// Pool.dispatch per request, no routing, no header rewriting beyond dropping
// the hop-by-hop headers that would corrupt the exchange. veer's overhead
// is read against this row.
//
// Run as a child: `node bench/lib/bare-undici.ts --upstream http://127.0.0.1:N`.

import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Pool, type Dispatcher } from 'undici';
import { runProxyChild } from './child.ts';

/** Hop-by-hop headers: the only ones a bare pass-through must drop. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

/** The client's request headers minus the hop-by-hop ones, as a flat list. */
export function requestHeaders(req: IncomingMessage): string[] {
  const raw = req.rawHeaders;
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!);
  }
  return headers;
}

/** The upstream's response headers minus the hop-by-hop ones, as a flat list for writeHead. */
export function responseHeaders(headers: IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  return out;
}

/** The upstream's response written through as it comes, with backpressure. */
export class PassThrough implements Dispatcher.DispatchHandler {
  readonly res: ServerResponse;
  constructor(res: ServerResponse) {
    this.res = res;
  }
  // Its presence tells undici this is a new-style (controller) handler.
  onRequestStart(): void {}
  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.res.writeHead(statusCode, responseHeaders(headers));
  }
  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', () => controller.resume());
    }
  }
  onResponseEnd(): void {
    this.res.end();
  }
  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (this.res.headersSent) this.res.destroy(err);
    else this.res.writeHead(502).end();
  }
}

/** Starts the bare proxy in this process (over HTTPS with `tls`); the bench runs it in a child so its CPU is its own. */
export function startBareUndiciProxy(upstream: string, port = 0, tls?: BareProxyTls): Promise<{ port: number; close(): Promise<void> }> {
  return listenBareProxy(
    upstream,
    port,
    (pool, req, res) => {
      const headers = requestHeaders(req);
      pool.dispatch({ path: req.url ?? '/', method: req.method ?? 'GET', headers, body: hasRequestBody(req) ? req : null }, new PassThrough(res));
    },
    tls,
  );
}

/** The certificate and key (PEM) of a bare proxy's HTTPS listener. */
export interface BareProxyTls {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** Whether the client's request has a body to pass on. */
export function hasRequestBody(req: IncomingMessage): boolean {
  return req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
}

/**
 * A bare proxy's server and pool: one keep-alive Pool to `upstream`, an
 * http server (https with `tls`: TLS 1.2 and 1.3 with Node's defaults, as
 * veer's listener) on 127.0.0.1:`port` handing each request to `forward`.
 */
export async function listenBareProxy(
  upstream: string,
  port: number,
  forward: (pool: Pool, req: IncomingMessage, res: ServerResponse) => void,
  tls?: BareProxyTls,
): Promise<{ port: number; close(): Promise<void> }> {
  const pool = new Pool(upstream, { connections: null, keepAliveTimeout: 4000, pipelining: 1 });
  const handler = (req: IncomingMessage, res: ServerResponse): void => forward(pool, req, res);
  const server = tls === undefined ? createServer({ keepAliveTimeout: 65_000 }, handler) : createHttpsServer({ ...tls, keepAliveTimeout: 65_000 }, handler);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', 1024, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      server.closeAllConnections();
      await pool.destroy();
    },
  };
}

if (import.meta.main) await runProxyChild(startBareUndiciProxy);
