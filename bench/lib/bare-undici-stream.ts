// The bare proxy the table names: http.createServer plus undici's
// `stream` API, whose factory writes the response head and hands undici the
// ServerResponse to write the body into. It differs from bare-undici.ts only
// in the undici API used (stream's factory and callback over a raw dispatch
// handler), so the two rows show what each forwarding style costs.
//
// Run as a child: `node bench/lib/bare-undici-stream.ts --upstream http://127.0.0.1:N`.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Pool, type Dispatcher } from 'undici';
import { announceReady } from './child.ts';
import { HOP_BY_HOP, requestHeaders } from './bare-undici.ts';

function writeHead(res: ServerResponse, statusCode: number, headers: Dispatcher.StreamFactoryData['headers']): void {
  const out: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  res.writeHead(statusCode, out);
}

/** Starts the stream-based bare proxy in this process; the bench runs it in a child so its CPU is its own. */
export async function startBareUndiciStreamProxy(upstream: string, port = 0): Promise<{ port: number; close(): Promise<void> }> {
  const pool = new Pool(upstream, { connections: null, keepAliveTimeout: 4000, pipelining: 1 });
  const server = createServer({ keepAliveTimeout: 65_000 }, (req: IncomingMessage, res: ServerResponse) => {
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    pool.stream(
      { path: req.url ?? '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers: requestHeaders(req), body: hasBody ? req : null, opaque: res },
      ({ statusCode, headers, opaque }) => {
        const out = opaque as ServerResponse;
        writeHead(out, statusCode, headers);
        return out;
      },
      (err) => {
        if (err === null) return;
        if (res.headersSent) res.destroy(err);
        else res.writeHead(502).end();
      },
    );
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
  const { values } = parseArgs({ options: { upstream: { type: 'string' } } });
  if (!values.upstream) throw new Error('--upstream URL is required');
  const proxy = await startBareUndiciStreamProxy(values.upstream);
  announceReady(proxy.port);
  process.once('SIGTERM', () => void proxy.close().finally(() => process.exit(0)));
}
