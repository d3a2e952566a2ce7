// The most used Node reverse proxy library, http-proxy, set up the way a
// careful user would: a keep-alive agent to the upstream (its default opens
// a connection per request, which would make the comparison unfair to it).
//
// Run as a child: `node bench/lib/node-http-proxy.ts --upstream http://127.0.0.1:N`.

import { Agent, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import httpProxy from 'http-proxy';
import { runProxyChild } from './child.ts';

/** Starts an http-proxy server in this process; the bench runs it in a child so its CPU is its own. */
export async function startNodeHttpProxy(upstream: string, port = 0): Promise<{ port: number; close(): void }> {
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256 });
  const proxy = httpProxy.createProxyServer({ target: upstream, agent, xfwd: true });
  proxy.on('error', (_err, _req, res) => {
    if ('writeHead' in res && !res.headersSent) res.writeHead(502).end();
    else res.destroy();
  });
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => proxy.web(req, res));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', 1024, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close() {
      server.closeAllConnections();
      agent.destroy();
    },
  };
}

if (import.meta.main) await runProxyChild(startNodeHttpProxy);
