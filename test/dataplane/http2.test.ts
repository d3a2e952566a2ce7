// HTTP/2 to clients on the TLS listener (ALPN h2), with a CA and certificates
// made by openssl in the test and node:http2 and curl as clients: routing by
// :authority, rules, sticky keys and metrics as for HTTP/1.1; bodies both
// ways with backpressure; a stream the client resets aborts its upstream
// request (499); rotation under an open session; draining with GOAWAY.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { copyFileSync, readFileSync } from 'node:fs';
import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders, type IncomingHttpStatusHeader } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import t, { type Test } from 'tap';
import { WebSocket, WebSocketServer } from 'ws';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { until } from '../helpers/admin.ts';
import { makePki, makeServerCert, opensslMissing, type TestPki } from '../helpers/certs.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstreams.ts';
import { runVeerIn, type RunningVeer } from '../helpers/veer.ts';

const skip = opensslMissing();

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders & IncomingHttpStatusHeader;
  readonly body: string;
}

/** One request on an HTTP/2 session; resolves with the whole answer. */
function h2request(session: ClientHttp2Session, headers: Record<string, string>, body?: string | Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let head: IncomingHttpHeaders & IncomingHttpStatusHeader = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (head = h));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks).toString() }));
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

/** An upstream that answers with what it saw, as JSON. */
async function echoUpstream(t: Test, name: string): Promise<TestUpstream> {
  const up = await startUpstream(name, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({ name, method: req.method, url: req.url, httpVersion: req.httpVersion, headers: req.headers, bodyLength: Buffer.concat(chunks).length });
      res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive', 'keep-alive': 'timeout=5' });
      res.end(body);
    });
  });
  t.teardown(() => up.close());
  return up;
}

interface Edge {
  readonly pki: TestPki;
  readonly veer: RunningVeer;
  readonly origin: string;
  readonly port: number;
  readonly ca: Buffer;
  readonly pair: { cert: string; key: string };
}

async function startEdge(t: Test, services: string, tlsExtra = ''): Promise<Edge> {
  const pki = makePki();
  t.teardown(() => pki.destroy());
  const pair = makeServerCert(pki, 'shop', ['shop.test', '*.shop.test']);
  const veer = await runVeerIn(
    t,
    `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: silent }
drainTimeout: 5s
tls:
  listen: 127.0.0.1:0
  certificates: [{ cert: ${pair.cert}, key: ${pair.key} }]
${tlsExtra}
services:
${services}`,
  );
  const port = veer.veer.tlsAddress!.port;
  return { pki, veer, origin: `https://127.0.0.1:${port}`, port, ca: readFileSync(pki.ca), pair };
}

function openSession(t: Test, edge: Edge, servername = 'shop.test'): ClientHttp2Session {
  const session = connect(edge.origin, { ca: edge.ca, servername });
  session.on('error', () => {});
  t.teardown(() => session.destroy());
  return session;
}

t.test('h2 by ALPN: routed by :authority, with rules and sticky keys, headers as RFC 9113 says', { skip: skip ?? false }, async (t) => {
  const v1 = await echoUpstream(t, 'v1');
  const v2 = await echoUpstream(t, 'v2');
  const other = await echoUpstream(t, 'other');
  const edge = await startEdge(
    t,
    `  - name: shop
    match: { hosts: [shop.test] }
    versions: [{ name: v1, upstream: ${v1.url} }, { name: v2, upstream: ${v2.url} }]
    routes: [{ match: { header: { name: x-canary, value: always } }, to: v2 }]
    split: { weights: { v1: 50, v2: 50 }, sticky: { header: x-user-id } }
  - name: other
    match: { hosts: [other.shop.test] }
    versions: [{ name: v1, upstream: ${other.url} }]`,
  );
  const session = openSession(t, edge);
  const answer = await h2request(session, { ':path': '/a/../b?x=1', ':authority': 'shop.test', 'x-canary': 'always', te: 'trailers', cookie: 'a=1', 'x-user-id': 'u1' });
  t.equal(answer.status, 200);
  const seen = JSON.parse(answer.body) as { name: string; url: string; httpVersion: string; headers: Record<string, string> };
  t.equal(seen.name, 'v2', 'the rule picked v2');
  t.equal(answer.headers['x-veer-version'], 'v2');
  t.equal(seen.url, '/b?x=1', 'the :path normalised as for HTTP/1.1');
  t.equal(seen.httpVersion, '1.1', 'the upstream is spoken to in HTTP/1.1');
  t.equal(seen.headers.host, 'shop.test', ':authority became Host');
  t.equal(seen.headers['x-forwarded-proto'], 'https');
  t.equal(seen.headers['x-forwarded-host'], 'shop.test');
  t.equal(seen.headers.te, 'trailers', 'TE: trailers is passed on');
  t.notOk(Object.keys(seen.headers).some((h) => h.startsWith(':')), 'no pseudo-header reaches the upstream');
  t.equal(answer.headers.connection, undefined, 'the upstream Connection header is not relayed');
  t.equal(answer.headers['keep-alive'], undefined);

  // Cookies split into several fields (RFC 9113 8.2.3) arrive joined.
  const cookies = await h2request(session, { ':path': '/', ':authority': 'shop.test', 'x-canary': 'always', cookie: ['a=1', 'b=2'] as unknown as string });
  t.equal((JSON.parse(cookies.body) as { headers: Record<string, string> }).headers.cookie, 'a=1; b=2');

  // Sticky: one user stays on one version over many requests on one session.
  const versions = new Set<string>();
  for (let i = 0; i < 10; i++) versions.add(String((await h2request(session, { ':path': '/', ':authority': 'shop.test', 'x-user-id': 'user-7' })).headers['x-veer-version']));
  t.equal(versions.size, 1, 'one version for one user');

  // Another host on the same connection (the certificate covers both): routed by its :authority.
  const otherAnswer = await h2request(session, { ':path': '/', ':authority': 'other.shop.test' });
  t.equal((JSON.parse(otherAnswer.body) as { name: string }).name, 'other');

  const unknown = await h2request(session, { ':path': '/', ':authority': 'nobody.test' });
  t.equal(unknown.status, 404);
  t.match(JSON.parse(unknown.body), { error: { code: 'no_route' } });

  const mismatch = await h2request(session, { ':path': '/', ':authority': 'shop.test', host: 'other.shop.test' });
  t.equal(mismatch.status, 400, 'Host naming another host than :authority is malformed');

  // Metrics count HTTP/2 requests like HTTP/1.1 ones.
  const metrics = await (await fetch(`${edge.veer.adminUrl}/metrics`)).text();
  t.match(metrics, /veer_requests_total\{service="shop",version="v2",method="GET",code="200"\} \d+/);
});

t.test('bodies both ways, large, with flow control holding back a slow reader', { skip: skip ?? false }, async (t) => {
  const size = 64 * 1024 * 1024;
  let upstreamWrote = 0;
  const up = await startUpstream('big', (req, res) => {
    if (req.method === 'POST') {
      let length = 0;
      req.on('data', (c: Buffer) => (length += c.length));
      req.on('end', () => res.end(JSON.stringify({ length })));
      return;
    }
    // A big answer written as fast as the socket takes it.
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const pump = () => {
      while (upstreamWrote < size) {
        upstreamWrote += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
  t.teardown(() => up.close());
  const edge = await startEdge(t, `  - name: big\n    versions: [{ name: v1, upstream: ${up.url} }]`);
  const session = openSession(t, edge);

  const posted = await h2request(session, { ':method': 'POST', ':path': '/upload', ':authority': 'shop.test' }, Buffer.alloc(size / 8, 'y'));
  t.equal(posted.status, 200);
  t.same(JSON.parse(posted.body), { length: size / 8 }, 'the whole request body reached the upstream');

  // A reader that does not read: HTTP/2 flow control and veer's backpressure stop the upstream early.
  const stream = session.request({ ':path': '/download', ':authority': 'shop.test' });
  stream.pause();
  await new Promise((resolve) => stream.once('response', resolve));
  await new Promise((resolve) => setTimeout(resolve, 500));
  // Kernel socket buffers on loopback take a few MB; without backpressure veer would read all 64 MB.
  t.ok(upstreamWrote < size / 4, `the upstream was held back (${upstreamWrote} of ${size} bytes written while the client read nothing)`);
  let received = 0;
  stream.on('data', (c: Buffer) => (received += c.length));
  stream.resume();
  await new Promise((resolve) => stream.once('end', resolve));
  t.equal(received, size, 'once the client reads, the whole body arrives');
});

t.test('a stream the client resets aborts its upstream request and counts 499; the session lives on', { skip: skip ?? false }, async (t) => {
  let aborted = 0;
  const up = await startUpstream('slow', (req, res) => {
    if (req.url === '/fast') {
      res.end('fast');
      return;
    }
    res.on('close', () => {
      if (!res.writableFinished) aborted++;
    });
    res.writeHead(200);
    res.write('started');
  });
  t.teardown(() => up.close());
  const edge = await startEdge(t, `  - name: slow\n    versions: [{ name: v1, upstream: ${up.url} }]`);
  const session = openSession(t, edge);
  const stream = session.request({ ':path': '/slow', ':authority': 'shop.test' });
  stream.on('error', () => {});
  await new Promise((resolve) => stream.once('data', resolve));
  stream.close(constants.NGHTTP2_CANCEL);
  t.ok(await until(() => aborted === 1, 5000), 'the upstream request is aborted');
  t.ok(
    await until(async () => /veer_requests_total\{service="slow",version="v1",method="GET",code="499"\} 1/.test(await (await fetch(`${edge.veer.adminUrl}/metrics`)).text()), 5000),
    'a 499 is counted',
  );
  const after = await h2request(session, { ':path': '/fast', ':authority': 'shop.test' });
  t.equal(after.body, 'fast', 'the session serves the next stream');
});

t.test('curl --http2 negotiates h2 and is served; http2: false offers HTTP/1.1 only', { skip: skip ?? false }, async (t) => {
  const up = await echoUpstream(t, 'v1');
  const edge = await startEdge(t, `  - name: shop\n    versions: [{ name: v1, upstream: ${up.url} }]`);
  // Not spawnSync: veer serves from this very process.
  const curl = await promisify(execFile)('curl', ['-s', '--max-time', '10', '--http2', '--cacert', edge.pki.ca, '--resolve', `shop.test:${edge.port}:127.0.0.1`, '-w', '\\n%{http_version} %{http_code}', `https://shop.test:${edge.port}/x`], {
    encoding: 'utf8',
  });
  const [body, outcome] = curl.stdout.split('\n');
  t.equal(outcome, '2 200', 'curl spoke HTTP/2 and got 200');
  t.equal((JSON.parse(body!) as { url: string }).url, '/x');

  const http1Only = await startEdge(t, `  - name: shop\n    versions: [{ name: v1, upstream: ${up.url} }]`, '  http2: false');
  const alpn = await new Promise<string | false>((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: http1Only.port, servername: 'shop.test', ca: http1Only.ca, ALPNProtocols: ['h2', 'http/1.1'] }, () => {
      resolve(socket.alpnProtocol ?? false);
      socket.end();
    });
    socket.on('error', reject);
  });
  t.equal(alpn, 'http/1.1', 'with http2: false the listener does not offer h2');
});

t.test('a renewed certificate reaches new handshakes while an open HTTP/2 session keeps serving', { skip: skip ?? false }, async (t) => {
  const up = await echoUpstream(t, 'v1');
  const edge = await startEdge(t, `  - name: shop\n    versions: [{ name: v1, upstream: ${up.url} }]`);
  const session = openSession(t, edge);
  const before = await h2request(session, { ':path': '/', ':authority': 'shop.test' });
  t.equal(before.status, 200);
  const serialOf = (s: ClientHttp2Session) => (s.socket as unknown as import('node:tls').TLSSocket).getPeerCertificate().serialNumber;
  const firstSerial = serialOf(session);

  const renewed = makeServerCert(edge.pki, 'shop-renewed', ['shop.test', '*.shop.test']);
  copyFileSync(renewed.key, edge.pair.key);
  copyFileSync(renewed.cert, edge.pair.cert);
  const renewedSeen = await until(async () => {
    const fresh = connect(edge.origin, { ca: edge.ca, servername: 'shop.test' });
    fresh.on('error', () => {});
    try {
      await new Promise((resolve, reject) => {
        fresh.once('connect', resolve);
        fresh.once('error', reject);
      });
      return serialOf(fresh) !== firstSerial;
    } finally {
      fresh.destroy();
    }
  }, 10_000, 200);
  t.ok(renewedSeen, 'new handshakes get the renewed certificate');
  const after = await h2request(session, { ':path': '/', ':authority': 'shop.test' });
  t.equal(after.status, 200, 'the session opened before the renewal still serves');
  t.equal(serialOf(session), firstSerial);
});

t.test('draining sends GOAWAY: a running stream finishes, the session closes', { skip: skip ?? false }, async (t) => {
  let release: (() => void) | null = null;
  const up = await startUpstream('held', (_req, res) => {
    release = () => res.end('done');
  });
  t.teardown(() => up.close());
  const edge = await startEdge(t, `  - name: held\n    versions: [{ name: v1, upstream: ${up.url} }]`);
  const session = openSession(t, edge);
  const goaway = new Promise((resolve) => session.once('goaway', resolve));
  const running = h2request(session, { ':path': '/', ':authority': 'shop.test' });
  t.ok(await until(() => release !== null, 5000), 'the request reached the upstream');
  const stopped = edge.veer.stop();
  await goaway;
  t.pass('the client got GOAWAY');
  release!();
  const answer = await running;
  t.equal(answer.body, 'done', 'the stream running at the drain finished');
  await stopped;
  t.ok(await until(() => session.closed || session.destroyed, 5000), 'the session closed');
});

t.test('WebSocket keeps working over HTTP/1.1 on the TLS listener that offers h2', { skip: skip ?? false }, async (t) => {
  const server = createHttpServer((_req, res) => res.end('plain'));
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (data) => ws.send(`echo:${String(data)}`)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    server.closeAllConnections();
    server.close();
  });
  const edge = await startEdge(t, `  - name: ws\n    versions: [{ name: v1, upstream: http://127.0.0.1:${(server.address() as AddressInfo).port} }]`);
  const ws = new WebSocket(`wss://127.0.0.1:${edge.port}/ws`, { ca: edge.ca, headers: { host: 'shop.test' }, ...{ servername: 'shop.test' } });
  t.teardown(() => ws.terminate());
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const reply = await new Promise<string>((resolve) => {
    ws.once('message', (data) => resolve(String(data)));
    ws.send('hi');
  });
  t.equal(reply, 'echo:hi', 'the tunnel through the TLS listener echoes');
});
