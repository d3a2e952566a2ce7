// The bare proxy most Node users would write: http.createServer plus undici's
// `stream` API, whose factory writes the response head and hands undici the
// ServerResponse to write the body into. It differs from bare-undici.ts only
// in the undici API used (stream's factory and callback over a raw dispatch
// handler), so the two rows show what each forwarding style costs.
//
// Run as a child: `node bench/lib/bare-undici-stream.ts --upstream http://127.0.0.1:N`.

import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { runProxyChild } from './child.ts';
import { hasRequestBody, listenBareProxy, requestHeaders, responseHeaders } from './bare-undici.ts';

/** Starts the stream-based bare proxy in this process; the bench runs it in a child so its CPU is its own. */
export function startBareUndiciStreamProxy(upstream: string, port = 0): Promise<{ port: number; close(): Promise<void> }> {
  return listenBareProxy(upstream, port, (pool, req, res) => {
    pool.stream(
      { path: req.url ?? '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers: requestHeaders(req), body: hasRequestBody(req) ? req : null, opaque: res },
      ({ statusCode, headers, opaque }) => {
        const out = opaque as ServerResponse;
        out.writeHead(statusCode, responseHeaders(headers));
        return out;
      },
      (err) => {
        if (err === null) return;
        if (res.headersSent) res.destroy(err);
        else res.writeHead(502).end();
      },
    );
  });
}

if (import.meta.main) await runProxyChild(startBareUndiciStreamProxy);
