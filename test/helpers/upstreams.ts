// Real HTTP upstreams on 127.0.0.1 for tests.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { WebSocketServer } from 'ws';

/** A running test upstream. */
export interface TestUpstream {
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  /** Requests seen, in order. */
  readonly seen: IncomingMessage[];
  close(): Promise<void>;
}

/** Default handler: JSON naming the upstream, echoing what veer sent. */
export function echoHandler(name: string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const body = JSON.stringify({ upstream: name, method: req.method, url: req.url, headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': name });
    res.end(body);
  };
}

/** Starts an upstream on 127.0.0.1 with a free port. */
export async function startUpstream(
  name: string,
  handler: (req: IncomingMessage, res: ServerResponse) => void = echoHandler(name),
): Promise<TestUpstream> {
  const seen: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    seen.push(req);
    handler(req, res);
  });
  const port = await listenOnLoopback(server);
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Listens on 127.0.0.1 on a free port and returns the port. */
export async function listenOnLoopback(server: { listen(port: number, host: string, cb: () => void): unknown; address(): unknown }): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** Listens on 127.0.0.1 (a free port) for one test; its connections are cut and the server closed when the test ends. */
export async function listenForTest(t: { teardown(fn: () => unknown): void }, server: Server | HttpsServer): Promise<number> {
  const port = await listenOnLoopback(server);
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return port;
}

/**
 * A port on 127.0.0.1 that refuses every connection for the whole run: the
 * address of a dead pod. A port from freePort() is free only for a moment; with
 * test files running in parallel another file's listener can take it, and the
 * "dead" upstream answers. Port 1 (tcpmux) is far below the ephemeral range, so
 * no listen on port 0 is ever given it.
 */
export const REFUSED_PORT = 1;

/** A port that nothing listens on (bound, then released; see REFUSED_PORT for a dead upstream). */
export async function freePort(): Promise<number> {
  const server = createServer();
  const port = await listenOnLoopback(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Upstreams v1 and v2 (echo servers) for one test, closed when it ends. */
export async function startTwoUpstreams(t: { teardown(fn: () => unknown): void }): Promise<[TestUpstream, TestUpstream]> {
  const v1 = await startUpstream('v1');
  const v2 = await startUpstream('v2');
  t.teardown(async () => {
    await v1.close();
    await v2.close();
  });
  return [v1, v2];
}

/** Closes a WebSocket upstream when `t` ends: its open sockets at once, then its HTTP server. */
export function closeWebSocketUpstreamAtEnd(t: { teardown(fn: () => unknown): void }, server: Server, wss: WebSocketServer): void {
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
}
