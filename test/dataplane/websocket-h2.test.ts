// WebSocket over HTTP/2 (RFC 8441 extended CONNECT) through veer's TLS
// listener (ALPN h2) and h2c, to real HTTP/1.1 WebSocket upstreams (the `ws`
// package's server). The client is node:http2 with `ws` speaking the
// WebSocket framing over the CONNECT stream: the SETTINGS advertise
// enableConnectProtocol, frames cross both ways, either side's close or reset
// reaches the other, backpressure holds either side back, sticky keys,
// header and GET rules pick the version, a declined upgrade is relayed, and
// what veer does not tunnel answers a coded error.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type IncomingHttpStatusHeader } from 'node:http2';
import { createServer, type IncomingHttpHeaders as Http1Headers, type Server } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import t, { type Test } from 'tap';
import { WebSocket, WebSocketServer } from 'ws';
import { websocketAccept } from '../../src/forwarder/index.ts';
import { makePki, makeServerCert, opensslMissing } from '../helpers/certs.ts';
import { connectionCount, onRequestHeads, startRawUpstream, waitFor, withTimeout } from '../helpers/http.ts';
import { closeWebSocketUpstreamAtEnd, freePort, listenOnLoopback } from '../helpers/upstreams.ts';
import { runVeerIn, type RunningVeer } from '../helpers/veer.ts';

const skip = opensslMissing();
const LIMIT_MS = 5000;

type ResponseHeaders = IncomingHttpHeaders & IncomingHttpStatusHeader;

interface EchoUpstream {
  readonly server: Server;
  readonly wss: WebSocketServer;
  readonly url: string;
  /** The head of every upgrade request, in order. */
  readonly upgrades: Http1Headers[];
  readonly urls: string[];
  /** The socket of every upgrade request, in order. */
  readonly sockets: Socket[];
}

/**
 * An HTTP/1.1 WebSocket upstream: echoes each text message prefixed with its
 * name and each binary one as it is, closes (1001) on "bye", declines `/private` with a 403, and answers
 * plain GETs with its name. Speaks the `chat` subprotocol and accepts
 * permessage-deflate (never compressing, so the test client needs none).
 */
async function startEcho(t: Test, name: string): Promise<EchoUpstream> {
  const server = createServer((_req, res) => res.end(name));
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: true,
    handleProtocols: (protocols) => (protocols.has('chat') ? 'chat' : false),
  });
  const upgrades: Http1Headers[] = [];
  const urls: string[] = [];
  const sockets: Socket[] = [];
  server.on('upgrade', (req, socket: Socket, head) => {
    upgrades.push(req.headers);
    sockets.push(socket);
    urls.push(req.url ?? '');
    if (req.url?.startsWith('/private') === true) {
      const body = JSON.stringify({ denied: req.url });
      socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nX-Reason: members only\r\n\r\n${body}`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  wss.on('connection', (ws: WebSocket) => {
    ws.on('message', (data, isBinary) => {
      if (isBinary) ws.send(data, { binary: true, compress: false });
      else if (String(data) === 'bye') ws.close(1001, 'going away');
      else ws.send(`${name}:${String(data)}`, { compress: false });
    });
  });
  const port = await listenOnLoopback(server);
  closeWebSocketUpstreamAtEnd(t, server, wss);
  return { server, wss, url: `http://127.0.0.1:${port}`, upgrades, urls, sockets };
}

interface Edge {
  readonly veer: RunningVeer;
  readonly ca: Buffer;
  readonly tlsPort: number;
  readonly plainPort: number;
  readonly v1: EchoUpstream;
  readonly v2: EchoUpstream;
  /** Resolves once the half-open upstream's (only) socket closed. */
  readonly halfOpenClosed: Promise<void>;
}

/** An upstream answering every upgrade 101 with a Sec-WebSocket-Accept that is not the key's. */
async function startWrongAccept(t: Test): Promise<string> {
  const up = await startRawUpstream((socket) =>
    onRequestHeads(socket, (_head, s) => s.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: bm90IHRoZSBrZXk=\r\n\r\n')),
  );
  t.teardown(() => up.close());
  return up.url;
}

/**
 * An upstream that accepts every upgrade and keeps its socket after the
 * peer's FIN (allowHalfOpen), writing on: only a socket veer destroys goes.
 */
async function startHalfOpen(t: Test): Promise<{ url: string; closed: Promise<void> }> {
  let onClosed = (): void => {};
  const closed = new Promise<void>((resolve) => (onClosed = resolve));
  const connections = new Set<Socket>();
  const server = createNetServer({ allowHalfOpen: true }, (socket) => {
    connections.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => {
      connections.delete(socket);
      onClosed();
    });
    onRequestHeads(socket, (head, s) => {
      const key = /^sec-websocket-key: *(\S+)/im.exec(head)?.[1] ?? '';
      s.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${websocketAccept(key)}\r\n\r\n`);
      // An unmasked empty ping every 20 ms: the write after veer's destroy is what makes this socket close.
      const timer = setInterval(() => s.write(Buffer.from([0x89, 0x00])), 20);
      s.once('close', () => clearInterval(timer));
    });
  });
  const port = await listenOnLoopback(server);
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of connections) s.destroy();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${port}`, closed };
}

async function startEdge(t: Test): Promise<Edge> {
  const pki = makePki();
  t.teardown(() => pki.destroy());
  const pair = makeServerCert(pki, 'chat', ['chat.test']);
  const v1 = await startEcho(t, 'v1');
  const v2 = await startEcho(t, 'v2');
  const refused = await freePort();
  const wrongAccept = await startWrongAccept(t);
  const halfOpen = await startHalfOpen(t);
  const veer = await runVeerIn(
    t,
    `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: silent }
drainTimeout: 1s
h2c: true
tls:
  listen: 127.0.0.1:0
  certificates: [{ cert: ${pair.cert}, key: ${pair.key} }]
services:
  - name: chat
    match: { hosts: [chat.test] }
    versions: [{ name: v1, upstream: ${v1.url} }, { name: v2, upstream: ${v2.url} }]
    split: { weights: { v1: 50, v2: 50 }, sticky: { header: x-user-id } }
    rules:
      - matches: [{ headers: [{ name: x-canary, type: Exact, value: always }] }]
        to: v1
      - matches: [{ path: { type: PathPrefix, value: /pinned }, method: GET }]
        to: v2
      - matches: [{ path: { type: PathPrefix, value: / } }]
  - name: down
    match: { hosts: [down.test] }
    versions: [{ name: v1, upstream: http://127.0.0.1:${refused} }]
  - name: h2up
    match: { hosts: [h2up.test] }
    versions: [{ name: v1, upstream: { urls: [http://127.0.0.1:${refused}], protocol: h2c } }]
  - name: odd
    match: { hosts: [odd.test] }
    versions: [{ name: v1, upstream: ${wrongAccept} }]
  - name: halfopen
    match: { hosts: [halfopen.test] }
    versions: [{ name: v1, upstream: ${halfOpen.url} }]
`,
  );
  return { veer, ca: readFileSync(pki.ca), tlsPort: veer.veer.tlsAddress!.port, plainPort: veer.veer.dataAddress.port, v1, v2, halfOpenClosed: halfOpen.closed };
}

interface Session {
  readonly session: ClientHttp2Session;
  readonly scheme: 'https' | 'http';
}

/** An HTTP/2 session to veer (TLS with ALPN h2, or h2c), once the server's SETTINGS arrived. */
async function openSession(t: Test, edge: Edge, scheme: 'https' | 'http'): Promise<Session> {
  const session = scheme === 'https' ? connect(`https://127.0.0.1:${edge.tlsPort}`, { ca: edge.ca, servername: 'chat.test' }) : connect(`http://127.0.0.1:${edge.plainPort}`);
  session.on('error', () => {});
  t.teardown(() => session.destroy());
  await withTimeout(new Promise((resolve) => session.once('remoteSettings', resolve)), LIMIT_MS, 'server SETTINGS');
  return { session, scheme };
}

interface Answer {
  readonly status: number;
  readonly headers: ResponseHeaders;
  readonly stream: ClientHttp2Stream;
  /** The body of an answer other than 200 (empty for a tunnel). */
  readonly body: string;
}

/** Sends an extended CONNECT for WebSocket (RFC 8441); resolves at a 200 with the open stream, else with the whole answer. */
function extendedConnect({ session, scheme }: Session, path: string, headers: Record<string, string> = {}, protocol: string | null = 'websocket', authority = 'chat.test'): Promise<Answer> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const stream = session.request(
        {
          ':method': 'CONNECT',
          ...(protocol === null ? { ':authority': 'chat.test:443' } : { ':protocol': protocol, ':scheme': scheme, ':path': path, ':authority': authority }),
          'sec-websocket-version': '13',
          ...headers,
        },
        { endStream: false },
      );
      stream.once('error', reject);
      stream.once('response', (head: ResponseHeaders) => {
        const status = Number(head[':status']);
        if (status === 200) {
          resolve({ status, headers: head, stream, body: '' });
          return;
        }
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.once('end', () => resolve({ status, headers: head, stream, body: Buffer.concat(chunks).toString() }));
      });
    }),
    LIMIT_MS,
    `extended CONNECT ${path}`,
  );
}

/** `ws` internals that let its client speak over any duplex: the tunnel here. */
interface WebSocketOverDuplex {
  _isServer: boolean;
  setSocket(socket: Duplex, head: Buffer, options: { maxPayload: number }): void;
}

/** A `ws` client (masked frames, the close handshake) over an open tunnel stream. */
function websocketOver(stream: Duplex): WebSocket {
  // closeTimeout: how long a close handshake may take before the socket goes (a server socket gets none by default).
  const ws = new WebSocket(null as unknown as string, undefined, { closeTimeout: LIMIT_MS } as object);
  const internals = ws as unknown as WebSocketOverDuplex;
  internals._isServer = false;
  internals.setSocket(stream, Buffer.alloc(0), { maxPayload: 64 * 1024 * 1024 });
  ws.on('error', () => {});
  return ws;
}

/** Opens a WebSocket over HTTP/2 through veer; fails the test on any answer but 200. */
async function openWebSocket(session: Session, path: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; headers: ResponseHeaders; stream: ClientHttp2Stream }> {
  const answer = await extendedConnect(session, path, headers);
  if (answer.status !== 200) throw new Error(`extended CONNECT ${path}: ${answer.status} ${answer.body}`);
  return { ws: websocketOver(answer.stream), headers: answer.headers, stream: answer.stream };
}

/** Sends `text` and resolves with the next message. */
function echo(ws: WebSocket, text: string): Promise<string> {
  return withTimeout(
    new Promise((resolve) => {
      ws.once('message', (data) => resolve(String(data)));
      ws.send(text);
    }),
    LIMIT_MS,
    'websocket echo',
  );
}

/** Sends `bytes` as one binary message and resolves with the next message. */
function echoBinary(ws: WebSocket, bytes: Buffer): Promise<Buffer> {
  return withTimeout(
    new Promise((resolve) => {
      ws.once('message', (data: Buffer, isBinary: boolean) => resolve(isBinary ? data : Buffer.alloc(0)));
      ws.send(bytes, { binary: true });
    }),
    LIMIT_MS,
    'websocket binary echo',
  );
}

/** Resolves with the close code once `ws` is closed. */
function closed(ws: WebSocket): Promise<number> {
  return withTimeout(
    new Promise((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) resolve(1006);
      else ws.once('close', (code) => resolve(code));
    }),
    LIMIT_MS,
    'websocket close',
  );
}

/** A plain HTTP/2 GET; resolves with the version that answered. */
function getVersion({ session }: Session, path: string, headers: Record<string, string>): Promise<string> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const stream = session.request({ ':path': path, ':authority': 'chat.test', ...headers });
      stream.once('response', (head) => resolve(String(head['x-veer-version'])));
      stream.once('error', reject);
      stream.resume();
    }),
    LIMIT_MS,
    `GET ${path}`,
  );
}

const errorCode = (body: string): string => (JSON.parse(body) as { error: { code: string } }).error.code;

t.test('over TLS (ALPN h2) and h2c: SETTINGS allow extended CONNECT, frames cross both ways, the client closes', { skip: skip ?? false }, async (t) => {
  const edge = await startEdge(t);
  for (const scheme of ['https', 'http'] as const) {
    const session = await openSession(t, edge, scheme);
    t.equal(session.session.remoteSettings.enableConnectProtocol, true, `${scheme}: the server's SETTINGS carry SETTINGS_ENABLE_CONNECT_PROTOCOL`);
    const before = edge.v1.upgrades.length + edge.v2.upgrades.length;
    const { ws, headers } = await openWebSocket(session, '/a/../chat?room=1', {
      'x-user-id': 'u1',
      'sec-websocket-protocol': 'chat, superchat',
      'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits',
      origin: 'https://chat.test',
    });
    const version = String(headers['x-veer-version']);
    t.equal(headers['sec-websocket-protocol'], 'chat', `${scheme}: the upstream's subprotocol comes back`);
    t.match(headers['sec-websocket-extensions'], /^permessage-deflate/, `${scheme}: and its extensions`);
    t.equal(headers['sec-websocket-accept'], undefined, `${scheme}: no Sec-WebSocket-Accept over HTTP/2 (RFC 8441 5)`);
    t.type(headers['x-request-id'], 'string', `${scheme}: the request id comes back`);
    t.equal(await echo(ws, 'hello'), `${version}:hello`, `${scheme}: a text frame crosses and the echo returns`);
    const big = 'x'.repeat(300_000);
    t.equal(await echo(ws, big), `${version}:${big}`, `${scheme}: a 300 kB frame crosses intact`);
    const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    t.same(await echoBinary(ws, everyByte), everyByte, `${scheme}: a binary frame of every byte value crosses both ways unchanged`);
    // 2 MB: many times the 64 kB HTTP/2 windows, so it crosses only with WINDOW_UPDATEs both ways.
    const random = randomBytes(2 * 1024 * 1024);
    t.ok((await echoBinary(ws, random)).equals(random), `${scheme}: a 2 MB binary frame crosses both ways intact`);

    const upstream = version === 'v1' ? edge.v1 : edge.v2;
    t.equal(edge.v1.upgrades.length + edge.v2.upgrades.length, before + 1, `${scheme}: one upgrade reached an upstream`);
    const seen = upstream.upgrades.at(-1)!;
    t.equal(upstream.urls.at(-1), '/chat?room=1', `${scheme}: the :path is normalised as a GET's`);
    t.equal(seen.upgrade, 'websocket', `${scheme}: the upstream got Upgrade: websocket`);
    t.match(seen.connection, /upgrade/i, `${scheme}: and Connection: upgrade`);
    t.equal(Buffer.from(String(seen['sec-websocket-key']), 'base64').length, 16, `${scheme}: and a 16-byte Sec-WebSocket-Key made by veer`);
    t.equal(seen['sec-websocket-version'], '13');
    t.equal(seen['sec-websocket-protocol'], 'chat, superchat', `${scheme}: the subprotocols offered are passed on`);
    t.match(seen['sec-websocket-extensions'], /^permessage-deflate/, `${scheme}: and the extensions`);
    t.equal(seen.origin, 'https://chat.test');
    t.equal(seen.host, 'chat.test', `${scheme}: :authority became Host`);
    t.equal(seen['x-forwarded-proto'], scheme, `${scheme}: x-forwarded-proto`);
    t.equal(seen['x-veer-version'], version);

    ws.close(1000, 'done');
    t.equal(await closed(ws), 1000, `${scheme}: the close handshake completes`);
    t.ok(await waitFor(async () => (await connectionCount(upstream.server)) === 0, LIMIT_MS), `${scheme}: the upstream socket is released`);
    t.equal(await getVersion(session, '/', { 'x-user-id': 'u1' }), version, `${scheme}: the session serves on`);
  }
  // Tunnels are not per-version traffic, as over HTTP/1.1: only the two GETs are counted.
  const metrics = await (await fetch(`${edge.veer.adminUrl}/metrics`)).text();
  const counted = [...metrics.matchAll(/^veer_requests_total\{service="chat",[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
  t.equal(counted, 2, 'the tunnels are not counted as requests');
});

t.test('the sticky key and GET rules pick the version of an extended CONNECT', { skip: skip ?? false }, async (t) => {
  const edge = await startEdge(t);
  const session = await openSession(t, edge, 'https');
  const picked = new Set<string>();
  for (let i = 0; i < 12; i++) {
    const user = `user-${i}`;
    const expected = await getVersion(session, '/chat', { 'x-user-id': user });
    const { ws, headers } = await openWebSocket(session, '/chat', { 'x-user-id': user });
    t.equal(headers['x-veer-version'], expected, `${user}: the tunnel goes where a GET goes (${expected})`);
    t.equal(await echo(ws, 'hi'), `${expected}:hi`, `${user}: and is served there`);
    picked.add(expected);
    ws.close();
    await closed(ws);
  }
  t.same([...picked].sort(), ['v1', 'v2'], 'the split sends users to both versions');
  for (const user of ['a', 'b', 'c']) {
    const { ws, headers } = await openWebSocket(session, '/pinned/room', { 'x-user-id': user });
    t.equal(headers['x-veer-version'], 'v2', `${user}: the rule for GET /pinned applies to the tunnel`);
    ws.terminate();
  }
  // Users the split sends to v2, carrying the header the first rule sends to v1.
  const toV2: string[] = [];
  for (let i = 0; toV2.length < 3 && i < 100; i++) if ((await getVersion(session, '/chat', { 'x-user-id': `canary-${i}` })) === 'v2') toV2.push(`canary-${i}`);
  t.equal(toV2.length, 3, 'the split sends some users to v2');
  for (const user of toV2) {
    const { ws, headers } = await openWebSocket(session, '/chat', { 'x-user-id': user, 'x-canary': 'always' });
    t.equal(headers['x-veer-version'], 'v1', `${user}: the header rule sends the tunnel to v1`);
    t.equal(await echo(ws, 'hi'), 'v1:hi', `${user}: and v1 serves it`);
    ws.terminate();
  }
});

t.test('either side closing or resetting closes the other', { skip: skip ?? false }, async (t) => {
  const edge = await startEdge(t);
  const session = await openSession(t, edge, 'https');
  const pinned = { 'x-user-id': 'u' };
  const upstream = edge.v2;

  // The client resets its stream: the upstream's socket goes.
  const reset = await openWebSocket(session, '/pinned', pinned);
  t.equal(await echo(reset.ws, 'before'), 'v2:before');
  const serverSide = [...upstream.wss.clients].at(-1)!;
  const upstreamClosed = new Promise<number>((resolve) => serverSide.once('close', (code) => resolve(code)));
  reset.stream.close(constants.NGHTTP2_CANCEL);
  t.equal(await withTimeout(upstreamClosed, LIMIT_MS, 'upstream close'), 1006, 'the upstream sees its connection drop (no close frame: a reset)');
  t.ok(await waitFor(async () => (await connectionCount(upstream.server)) === 0, LIMIT_MS), 'its socket is released');

  // Even an upstream that would keep a half-closed socket loses it: veer destroys its end.
  const halfOpen = await extendedConnect(session, '/', {}, 'websocket', 'halfopen.test');
  t.equal(halfOpen.status, 200);
  halfOpen.stream.close(constants.NGHTTP2_CANCEL);
  await withTimeout(edge.halfOpenClosed, LIMIT_MS, 'half-open upstream socket close');
  t.pass('a reset stream destroys its upstream socket, not just half-closes it');

  // The upstream closes: the client gets the close frame, and its stream ends.
  const byUpstream = await openWebSocket(session, '/pinned', pinned);
  const streamClosed = new Promise<void>((resolve) => byUpstream.stream.once('close', () => resolve()));
  byUpstream.ws.send('bye');
  t.equal(await closed(byUpstream.ws), 1001, "the upstream's close frame reaches the client");
  await withTimeout(streamClosed, LIMIT_MS, 'stream close');
  t.equal(byUpstream.stream.rstCode, constants.NGHTTP2_NO_ERROR, 'the stream closes without error');
  t.ok(await waitFor(async () => (await connectionCount(upstream.server)) === 0, LIMIT_MS), 'the upstream socket is released');

  // The upstream resets its TCP connection: the stream is reset with CONNECT_ERROR (RFC 9113 8.5).
  const dropped = await openWebSocket(session, '/pinned', pinned);
  const droppedClosed = new Promise<void>((resolve) => dropped.stream.once('close', () => resolve()));
  t.equal(await echo(dropped.ws, 'x'), 'v2:x');
  upstream.sockets.at(-1)!.resetAndDestroy();
  await withTimeout(droppedClosed, LIMIT_MS, 'stream reset');
  t.equal(dropped.stream.rstCode, constants.NGHTTP2_CONNECT_ERROR, 'an upstream reset resets the stream with CONNECT_ERROR');

  t.equal(await getVersion(session, '/', pinned), 'v1', 'the session lives on');
});

/** Resolves after `ms`. */
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

t.test('backpressure: a side that does not read holds the other back, then gets everything', { skip: skip ?? false }, async (t) => {
  const edge = await startEdge(t);
  const session = await openSession(t, edge, 'https');
  const pinned = { 'x-user-id': 'u' };
  const chunk = Buffer.alloc(1024 * 1024, 'z');
  const count = 64;
  const size = chunk.length * count;
  const limit = { ms: 20_000 };

  // The client does not read: the upstream is held back by veer, not buffered by it.
  const down = await openWebSocket(session, '/pinned', pinned);
  const sender = [...edge.v2.wss.clients].at(-1)!;
  let received = 0;
  down.ws.on('message', (data: Buffer) => (received += data.length));
  down.stream.pause();
  for (let i = 0; i < count; i++) sender.send(chunk, { binary: true, compress: false });
  await sleep(500);
  // Kernel socket buffers on loopback take a few MB; without backpressure veer would read all 64 MB.
  const written = size - sender.bufferedAmount;
  t.ok(written < size / 4, `the upstream was held back (${written} of ${size} bytes left it while the client read nothing)`);
  down.stream.resume();
  t.ok(await waitFor(() => received === size, limit.ms), `once the client reads, all ${count} MB arrive (${received})`);
  down.ws.terminate();

  // The upstream does not read: the client is held back the same way.
  const up = await openWebSocket(session, '/pinned', pinned);
  const reader = [...edge.v2.wss.clients].at(-1)!;
  reader.removeAllListeners('message');
  let got = 0;
  reader.on('message', (data: Buffer) => (got += data.length));
  reader.pause();
  for (let i = 0; i < count; i++) up.ws.send(chunk, { binary: true });
  await sleep(500);
  const sent = size - up.ws.bufferedAmount;
  t.ok(sent < size / 4, `the client was held back (${sent} of ${size} bytes left it while the upstream read nothing)`);
  reader.resume();
  t.ok(await waitFor(() => got === size, limit.ms), `once the upstream reads, all ${count} MB arrive (${got})`);
  up.ws.terminate();
});

t.test('a declined or failed upgrade is answered on the stream; the session lives on', { skip: skip ?? false }, async (t) => {
  const edge = await startEdge(t);
  const session = await openSession(t, edge, 'https');

  const denied = await extendedConnect(session, '/private', { 'x-user-id': 'u1' });
  t.equal(denied.status, 403, "the upstream's 403 is relayed");
  t.equal(denied.headers['x-reason'], 'members only', 'with its headers');
  t.type(denied.headers['x-veer-version'], 'string', 'and x-veer-version');
  t.same(JSON.parse(denied.body), { denied: '/private' }, 'and its body');

  const good = await extendedConnect(session, '/');
  t.equal(good.status, 200, 'a good upgrade still works after a declined one');
  good.stream.close();

  const connectTo = (authority: string) =>
    withTimeout(
      new Promise<Answer>((resolve, reject) => {
        const stream = session.session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': '/ws', ':authority': authority, 'sec-websocket-version': '13' }, { endStream: false });
        stream.once('error', reject);
        stream.once('response', (head: ResponseHeaders) => {
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.once('end', () => resolve({ status: Number(head[':status']), headers: head, stream, body: Buffer.concat(chunks).toString() }));
        });
      }),
      LIMIT_MS,
      `CONNECT to ${authority}`,
    );
  const odd = await connectTo('odd.test');
  t.equal(odd.status, 502, 'an upstream 101 with a wrong Sec-WebSocket-Accept is 502');
  t.equal(errorCode(odd.body), 'upstream_protocol_error');
  const down = await connectTo('down.test');
  t.equal(down.status, 502, 'an upstream that refuses connections is 502');
  t.equal(errorCode(down.body), 'upstream_connect_error');
  const h2up = await connectTo('h2up.test');
  t.equal(h2up.status, 501, 'an HTTP/2 upstream is not spoken WebSocket to: 501');
  t.equal(errorCode(h2up.body), 'unsupported_upgrade');
  const nowhere = await connectTo('nowhere.test');
  t.equal(nowhere.status, 404);
  t.equal(errorCode(nowhere.body), 'no_route');
  t.equal(await getVersion(session, '/', { 'x-user-id': 'u1' }), await getVersion(session, '/', { 'x-user-id': 'u1' }), 'the session serves on');
});

t.test('a plain CONNECT is 405 and another :protocol 501, with their codes', { skip: skip ?? false }, async (t) => {
  const edge = await startEdge(t);
  for (const scheme of ['https', 'http'] as const) {
    const session = await openSession(t, edge, scheme);
    const plain = await extendedConnect(session, '', {}, null);
    t.equal(plain.status, 405, `${scheme}: CONNECT without :protocol is 405`);
    t.equal(errorCode(plain.body), 'bad_request');
    const udp = await extendedConnect(session, '/.well-known/masque/udp/1.2.3.4/53/', {}, 'connect-udp');
    t.equal(udp.status, 501, `${scheme}: :protocol connect-udp is 501`);
    t.equal(errorCode(udp.body), 'unsupported_upgrade');
  }
  t.equal(edge.v1.upgrades.length + edge.v2.upgrades.length, 0, 'nothing reached an upstream');
});

t.test('websocketAccept is RFC 6455 4.2.2', async (t) => {
  t.equal(websocketAccept('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=', "the RFC's example");
});

t.test('on shutdown an open HTTP/2 WebSocket keeps working until drainTimeout, then is closed with its upstream', { skip: skip ?? false }, async (t) => {
  const edge = await startEdge(t);
  const session = await openSession(t, edge, 'https');
  const { ws, stream } = await openWebSocket(session, '/room', { 'x-canary': 'always' });
  t.equal(await echo(ws, 'before'), 'v1:before');
  const upstreamSocket = edge.v1.sockets.at(-1)!;
  t.notOk(upstreamSocket.destroyed, 'the tunnel holds its upstream socket');
  const goaway = new Promise<void>((resolve) => session.session.once('goaway', () => resolve()));
  const startedAt = Date.now();
  const stopping = edge.veer.veer.stop();
  await withTimeout(goaway, LIMIT_MS, 'GOAWAY on shutdown');
  t.equal(await echo(ws, 'during'), 'v1:during', 'the open tunnel still carries messages while veer drains');
  const streamClosed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
  const { forced } = await withTimeout(stopping, LIMIT_MS, 'veer stop');
  await withTimeout(streamClosed, LIMIT_MS, 'the tunnel stream closed');
  const waited = Date.now() - startedAt;
  t.ok(waited >= 900, `closed at the drain deadline (1s), not before: ${waited} ms`);
  t.equal(forced, 1, 'the tunnel is counted as forced closed');
  t.ok(await waitFor(() => upstreamSocket.destroyed || upstreamSocket.readableEnded, LIMIT_MS), 'the upstream socket closed');
});
