// bare-undici.ts over TLS: the floor for a Node proxy on undici behind an
// HTTPS listener. `https.createServer` with the bench's certificate (TLS 1.2
// and 1.3 with Node's defaults, as veer's listener) and one Pool.dispatch per
// request with a raw dispatch handler; only hop-by-hop headers dropped.
//
// Run as a child: `VEER_BENCH_TLS_CERT=FILE VEER_BENCH_TLS_KEY=FILE
// node bench/lib/bare-undici-https.ts --upstream http://127.0.0.1:N` (the
// files by environment: runProxyChild reads only --upstream).

import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { hasRequestBody, PassThrough, requestHeaders } from './bare-undici.ts';
import { runProxyChild } from './child.ts';

/** Starts the bare HTTPS proxy in this process with `cert` and `key` (PEM); the bench runs it in a child. */
export async function startBareUndiciHttpsProxy(upstream: string, tls: { cert: Buffer; key: Buffer }, port = 0): Promise<{ port: number; close(): Promise<void> }> {
  const pool = new Pool(upstream, { connections: null, keepAliveTimeout: 4000, pipelining: 1 });
  const server = createServer({ ...tls, keepAliveTimeout: 65_000 }, (req, res) => {
    pool.dispatch({ path: req.url ?? '/', method: req.method ?? 'GET', headers: requestHeaders(req), body: hasRequestBody(req) ? req : null }, new PassThrough(res));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', 1024, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      server.closeAllConnections();
      await pool.destroy();
    },
  };
}

if (import.meta.main) {
  const tls = { cert: readFileSync(process.env.VEER_BENCH_TLS_CERT ?? ''), key: readFileSync(process.env.VEER_BENCH_TLS_KEY ?? '') };
  await runProxyChild((upstream) => startBareUndiciHttpsProxy(upstream, tls));
}
