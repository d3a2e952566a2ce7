// @fastify/http-proxy (undici underneath), the usual choice for a proxy on
// Fastify, with its defaults: every path forwarded to one upstream.
//
// Run as a child: `node bench/lib/fastify-http-proxy.ts --upstream http://127.0.0.1:N`.

import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';
import { runProxyChild } from './child.ts';

/** Starts the Fastify proxy in this process; the bench runs it in a child so its CPU is its own. */
export async function startFastifyHttpProxy(upstream: string, port = 0): Promise<{ port: number; close(): Promise<void> }> {
  const app = Fastify({ logger: false, keepAliveTimeout: 65_000 });
  await app.register(proxy, { upstream, http2: false });
  await app.listen({ port, host: '127.0.0.1' });
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
}

if (import.meta.main) await runProxyChild(startFastifyHttpProxy);
