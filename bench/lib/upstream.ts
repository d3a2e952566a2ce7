// The upstream every case talks to: a Node HTTP server answering every
// request with the same ~100-byte body over keep-alive connections, so the
// numbers measure the proxy rather than the application behind it.
//
// Run as a child: `node bench/lib/upstream.ts [--ports N]` listens on N
// ports of 127.0.0.1 (veer's versions get distinct origins, hence pools) and
// prints {"ready":true,"port":FIRST,"ports":[...]}.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

/** The response body: 100 bytes, like a small JSON API answer. */
export const UPSTREAM_BODY = Buffer.from(`{"ok":true,"service":"bench-upstream","padding":"${'x'.repeat(49)}"}`);

/** Starts one upstream server on 127.0.0.1 and resolves with its port; the bench runs it in a child. */
export async function startUpstreamServer(port = 0): Promise<{ server: Server; port: number }> {
  const headers = { 'content-type': 'application/json', 'content-length': String(UPSTREAM_BODY.length) };
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    // Drain any request body so the connection stays reusable.
    req.resume();
    res.writeHead(200, headers);
    res.end(UPSTREAM_BODY);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', 1024, resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { ports: { type: 'string', default: '1' } } });
  const count = Math.max(1, Number(values.ports));
  const servers = await Promise.all(Array.from({ length: count }, () => startUpstreamServer()));
  const ports = servers.map((s) => s.port);
  process.stdout.write(`${JSON.stringify({ ready: true, port: ports[0], ports })}\n`);
  process.once('SIGTERM', () => {
    for (const s of servers) s.server.closeAllConnections();
    process.exit(0);
  });
}
