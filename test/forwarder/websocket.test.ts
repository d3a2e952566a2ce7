// WebSocket upgrades through veer: routing, the 101 head, refused upstreams,
// and that tunnels release their sockets on both sides when they close.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { WebSocket, WebSocketServer } from 'ws';
import { connectionCount, formatRequest, rawRequest, RawHttpConnection, startRawUpstream, waitFor, withTimeout, type TestScope } from '../helpers/http.ts';
import { closeWebSocketUpstreamAtEnd, freePort } from '../helpers/upstreams.ts';
import { runVeer, serviceConfig, type RunningVeer } from '../helpers/veer.ts';

/** A WebSocket echo server that prefixes every message with its name. */
async function startEcho(t: TestScope, name: string): Promise<{ server: Server; wss: WebSocketServer; url: string; upgrades: Record<string, string | string[] | undefined>[] }> {
  const server = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' });
    res.end('upgrade required');
  });
  const wss = new WebSocketServer({ server });
  const upgrades: Record<string, string | string[] | undefined>[] = [];
  wss.on('connection', (ws, req) => {
    upgrades.push(req.headers);
    ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `${name}:${String(data)}`, { binary: isBinary }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closeWebSocketUpstreamAtEnd(t, server, wss);
  return { server, wss, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, upgrades };
}

async function veerOn(t: TestScope, yaml: string): Promise<RunningVeer> {
  const veer = await runVeer(yaml);
  t.teardown(() => veer.stop());
  return veer;
}

/** Opens a WebSocket through veer; resolves with the socket and the 101 response headers. */
function open(port: number, headers: Record<string, string> = {}, path = '/ws'): Promise<{ ws: WebSocket; headers: Record<string, string | string[] | undefined> }> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers: { host: 'a.test', ...headers } });
      let upgradeHeaders: Record<string, string | string[] | undefined> = {};
      ws.once('upgrade', (res) => (upgradeHeaders = res.headers));
      ws.once('open', () => resolve({ ws, headers: upgradeHeaders }));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
    }),
    3000,
    'websocket open',
  );
}

/** Sends `text` and resolves with the next message. */
function echo(ws: WebSocket, text: string): Promise<string> {
  return withTimeout(
    new Promise((resolve) => {
      ws.once('message', (data) => resolve(String(data)));
      ws.send(text);
    }),
    3000,
    'websocket echo',
  );
}

function closeSocket(ws: WebSocket): Promise<void> {
  return withTimeout(
    new Promise<void>((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) return resolve();
      ws.once('close', () => resolve());
      ws.close(1000, 'done');
    }),
    3000,
    'websocket close',
  );
}

const ROUTES = `    routes:
      - match: { header: { name: x-canary, value: always } }
        to: v2
`;

t.test('WebSocket echo through veer follows the routing rules and announces the version', async (t) => {
  const v1 = await startEcho(t, 'v1');
  const v2 = await startEcho(t, 'v2');
  const veer = await veerOn(t, serviceConfig({ versions: { v1: v1.url, v2: v2.url }, extra: ROUTES }));
  const port = veer.veer.dataAddress.port;

  const plain = await open(port);
  t.equal(plain.headers['x-veer-version'], 'v1', '101 carries x-veer-version v1');
  t.equal(await echo(plain.ws, 'hello'), 'v1:hello', 'echo from v1');
  const big = 'x'.repeat(200_000);
  t.equal(await echo(plain.ws, big), `v1:${big}`, 'a 200 kB frame crosses intact');
  await closeSocket(plain.ws);

  const canary = await open(port, { 'x-canary': 'always' });
  t.equal(canary.headers['x-veer-version'], 'v2', 'x-canary: always upgrades to v2');
  t.equal(await echo(canary.ws, 'hi'), 'v2:hi', 'echo from v2');
  await closeSocket(canary.ws);

  const seen = v2.upgrades.at(-1)!;
  t.equal(seen['x-veer-version'], 'v2', 'the upstream got x-veer-version');
  t.equal(seen['x-forwarded-for'], '127.0.0.1', 'the upstream got x-forwarded-for');
  t.equal(seen['x-forwarded-host'], 'a.test', 'the upstream got x-forwarded-host');
  t.equal(seen.upgrade, 'websocket', 'the upstream got the Upgrade header');
});

/** A raw WebSocket upgrade request. */
function upgradeRequest(extra: [string, string][] = []): string {
  return formatRequest('GET', '/ws', [
    ['Host', 'a.test'],
    ['Connection', 'Upgrade'],
    ['Upgrade', 'websocket'],
    ['Sec-WebSocket-Version', '13'],
    ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='],
    ...extra,
  ]);
}

t.test('an upgrade to an upstream that refuses the connection gets HTTP 502 with a JSON error', async (t) => {
  const refused = await freePort();
  const veer = await veerOn(t, serviceConfig({ versions: { v1: `http://127.0.0.1:${refused}` } }));
  const res = await rawRequest(veer.veer.dataAddress.port, upgradeRequest());
  t.equal(res.status, 502, '502 on the socket');
  t.match(res.headers['content-type']?.[0], /^application\/json/);
  t.equal((JSON.parse(res.body.toString()) as { error: { code: string } }).error.code, 'upstream_connect_error');
});

t.test('an upstream that declines the upgrade: its answer reaches the client, as nginx and Envoy do', async (t) => {
  const server = createServer((_req, res) => res.end());
  server.on('upgrade', (req, socket) => {
    const body = JSON.stringify({ denied: req.url });
    // chunked for /chunked (veer then frames the body by closing), content-length otherwise
    const framing = req.url === '/chunked' ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${body.length}\r\n`;
    const payload = req.url === '/chunked' ? `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n` : body;
    socket.end(`HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Type: application/json\r\n${framing}\r\n${payload}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const veer = await veerOn(t, serviceConfig({ versions: { v1: `http://127.0.0.1:${(server.address() as AddressInfo).port}` } }));
  for (const path of ['/private', '/chunked']) {
    const res = await rawRequest(veer.veer.dataAddress.port, upgradeRequest().replace('GET /ws ', `GET ${path} `));
    t.equal(res.status, 401, `${path}: the upstream's 401 passes through`);
    t.same(res.headers['www-authenticate'], ['Bearer'], `${path}: with its headers`);
    t.same(res.headers['x-veer-version'], ['v1'], `${path}: and x-veer-version`);
    t.same(JSON.parse(res.body.toString()), { denied: path }, `${path}: and its body`);
  }
});

t.test('an upgrade with no matching service gets HTTP 404 no_route', async (t) => {
  const v1 = await startEcho(t, 'v1');
  const veer = await veerOn(
    t,
    `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: silent }
services:
  - name: svc
    match: { hosts: [only.test] }
    versions:
      - { name: v1, upstream: "${v1.url}" }
`,
  );
  const res = await rawRequest(veer.veer.dataAddress.port, upgradeRequest().replace('Host: a.test', 'Host: other.test'));
  t.equal(res.status, 404);
  t.equal((JSON.parse(res.body.toString()) as { error: { code: string } }).error.code, 'no_route');
});

t.test('a non-WebSocket upgrade (h2c, as curl --http2 sends) is proxied as a plain request', async (t) => {
  const seen: { method: string; upgrade: string | undefined; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += String(d)));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', upgrade: req.headers.upgrade, body });
      res.end(`got ${req.method} ${body}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const veer = await veerOn(t, serviceConfig({ versions: { v1: `http://127.0.0.1:${(server.address() as AddressInfo).port}` } }));
  const res = await rawRequest(
    veer.veer.dataAddress.port,
    formatRequest(
      'POST',
      '/form',
      [
        ['Host', 'a.test'],
        ['Connection', 'Upgrade, HTTP2-Settings'],
        ['Upgrade', 'h2c'],
        ['HTTP2-Settings', 'AAMAAABkAAQCAAAAAAIAAAAA'],
        ['Content-Length', '3'],
      ],
      'abc',
    ),
  );
  t.equal(res.status, 200, 'served');
  t.equal(res.body.toString(), 'got POST abc', 'method and body reach the upstream');
  t.same(seen.at(-1), { method: 'POST', upgrade: undefined, body: 'abc' }, 'the Upgrade header is dropped as hop-by-hop');
  t.same(res.headers['x-veer-version'], ['v1']);
});

t.test('bytes sent right behind the upgrade request, and after the 101, reach the upstream in order', async (t) => {
  // A raw upstream: answers 101, then echoes every byte back.
  const up = await startRawUpstream((socket) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      socket.write(buffered.subarray(end + 4));
      socket.pipe(socket);
    };
    socket.on('data', onData);
  });
  t.teardown(() => up.close());
  const veer = await veerOn(t, serviceConfig({ versions: { v1: up.url } }));
  const conn = await RawHttpConnection.open(veer.veer.dataAddress.port);
  t.teardown(() => conn.close());
  conn.write(upgradeRequest() + 'early-');
  const head = await conn.readResponse({ timeoutMs: 3000 });
  t.equal(head.status, 101);
  t.same(head.headers['x-veer-version'], ['v1'], '101 carries x-veer-version');
  conn.write('late');
  const echoed = await waitFor(() => conn.pending().toString() === 'early-late', 3000);
  t.ok(echoed, `the upstream got "early-late" in order (echoed: ${JSON.stringify(conn.pending().toString())})`);
});

t.test('200 upgrade/close cycles leave no socket open on either side', async (t) => {
  const v1 = await startEcho(t, 'v1');
  const v2 = await startEcho(t, 'v2');
  const veer = await veerOn(t, serviceConfig({ versions: { v1: v1.url, v2: v2.url }, extra: ROUTES }));
  const port = veer.veer.dataAddress.port;
  const started = performance.now();
  // Four ways a tunnel ends, in turn: client close handshake, upstream close handshake,
  // client drops the TCP connection (FIN), client resets it (RST) right after the 101.
  for (let i = 0; i < 200; i++) {
    const mode = i % 4;
    const canary = Math.floor(i / 4) % 2 === 1;
    if (mode === 3) {
      const conn = await RawHttpConnection.open(port);
      conn.write(upgradeRequest(canary ? [['x-canary', 'always']] : []));
      const res = await conn.readResponse({ timeoutMs: 3000 });
      if (res.status !== 101) t.fail(`cycle ${i}: status ${res.status}`);
      conn.socket.resetAndDestroy();
      continue;
    }
    const { ws } = await open(port, canary ? { 'x-canary': 'always' } : {});
    const reply = await echo(ws, `m${i}`);
    if (reply !== `${canary ? 'v2' : 'v1'}:m${i}`) t.fail(`cycle ${i}: unexpected reply ${reply}`);
    if (mode === 0) await closeSocket(ws);
    else if (mode === 1) {
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
      for (const c of (canary ? v2 : v1).wss.clients) c.close(1001, 'going away');
      await withTimeout(closed, 3000, 'upstream-initiated close');
    } else {
      ws.terminate();
    }
  }
  t.comment(`200 upgrade/echo/close cycles in ${(performance.now() - started).toFixed(0)} ms`);
  t.equal(v1.upgrades.length + v2.upgrades.length, 200, 'every cycle reached an upstream');
  t.equal(v2.upgrades.length, 100, 'half of them routed to v2 by the header rule');

  const counts = async () => [await connectionCount(v1.server), await connectionCount(v2.server), await connectionCount(veer.veer.dataPlane.server)];
  const released = await waitFor(async () => (await counts()).every((n) => n === 0), 5000, 50);
  const final = await counts();
  t.ok(released, `all sockets released (upstream v1 ${final[0]}, upstream v2 ${final[1]}, veer data plane ${final[2]})`);
});
