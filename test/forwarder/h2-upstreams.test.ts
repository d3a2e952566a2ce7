// HTTP/2 to upstreams (`upstream: { urls, protocol: h2 | h2c }`) against
// real node:http2 servers on 127.0.0.1: HTTP/1.1 clients through veer get the
// upstream's answers, bodies stream both ways, requests share one session,
// the upstream restarting (gracefully or killed) is survived, health checks
// speak HTTP/2 too, pools outlive a reload, and a scheme the protocol cannot
// speak is a config error. The dispatcher itself (src/forwarder/http2-upstream.ts)
// is tested directly for what a proxy needs of it: trailers, backpressure,
// resets, GOAWAY and timeouts.

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { constants, createSecureServer, createServer, type IncomingHttpHeaders, type Http2Server, type Http2ServerRequest, type Http2ServerResponse, type Http2Session, type SecureServerOptions } from 'node:http2';
import { Readable } from 'node:stream';
import t, { type Test } from 'tap';
import { request } from 'undici';
import type { Dispatcher } from 'undici';
import { Http2Upstream } from '../../src/forwarder/http2-upstream.ts';
import { classifyUpstreamError } from '../../src/forwarder/index.ts';
import { until } from '../helpers/admin.ts';
import { formatRequest, rawRequest, sendRawUntilClose } from '../helpers/http.ts';
import { makePki, opensslMissing, type TestPki } from '../helpers/certs.ts';
import { tableFromYaml } from '../helpers/tables.ts';
import { listenOnLoopback, startUpstream } from '../helpers/upstreams.ts';
import { runVeer, serviceConfig } from '../helpers/veer.ts';

const skipTls = opensslMissing();
let pki: TestPki | null = null;
if (skipTls === null) {
  pki = makePki('h2-upstream-ca');
  t.teardown(() => pki!.destroy());
}

/** An HTTP/2 upstream: what it saw, the sessions veer opened, and a restart on the same port. */
interface H2Upstream {
  readonly url: string;
  readonly seen: { path: string; httpVersion: string; session: Http2Session; headers: IncomingHttpHeaders }[];
  readonly sessions: Set<Http2Session>;
  /** Sessions opened since the start. */
  readonly opened: () => number;
  readonly counts: { cancelled: number };
  /** Closes the server and its sessions (GOAWAY, or `kill`: the sockets dropped), then listens on the same port again. */
  restart(kill?: boolean): Promise<void>;
}

/**
 * GET /      `NAME over HTTP/2.0`
 * POST /echo the request body back, as it streams
 * GET /slow  answers after 200 ms
 * GET /trailers  a body and trailers
 * POST /early    413 at once, the body unread
 * GET /forever   a body that never ends (`cancelled` counts the streams reset by veer)
 * GET /healthz   ok
 */
function handle(name: string, req: Http2ServerRequest, res: Http2ServerResponse, counts: { cancelled: number }): void {
  if (req.url === '/early') {
    res.writeHead(413);
    res.end('too large');
    return;
  }
  if (req.url === '/forever') {
    res.writeHead(200);
    const timer = setInterval(() => res.write('tick '), 10);
    req.stream.on('close', () => {
      clearInterval(timer);
      if (req.stream.rstCode === constants.NGHTTP2_CANCEL) counts.cancelled++;
    });
    return;
  }
  if (req.url === '/echo') {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    req.pipe(res);
    return;
  }
  if (req.url === '/slow') {
    setTimeout(() => res.end(`${name} slow`), 200);
    return;
  }
  if (req.url === '/trailers') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.addTrailers({ 'x-checksum': 'abc' });
    res.end('with trailers');
    return;
  }
  res.setHeader('x-upstream-http', req.httpVersion);
  res.end(`${name} over HTTP/${req.httpVersion}`);
}

async function h2Upstream(t: Test, name: string, tls?: SecureServerOptions): Promise<H2Upstream> {
  const seen: H2Upstream['seen'] = [];
  const sessions = new Set<Http2Session>();
  let opened = 0;
  const counts = { cancelled: 0 };
  const server: Http2Server = tls === undefined ? createServer() : createSecureServer(tls);
  server.on('session', (session) => {
    opened++;
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    seen.push({ path: req.url, httpVersion: req.httpVersion, session: req.stream.session!, headers: req.headers });
    handle(name, req, res, counts);
  });
  const port = await listenOnLoopback(server);
  t.teardown(() => {
    for (const session of sessions) session.destroy();
    server.close();
  });
  return {
    url: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    seen,
    sessions,
    opened: () => opened,
    counts,
    async restart(kill = false) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) {
        if (kill) session.destroy();
        else session.close();
      }
      await closed;
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    },
  };
}

const upstreamYaml = (urls: string, more = '') => `{ urls: [${urls}], protocol: h2c${more} }`;
const configWith = (upstream: string, extra?: string) => serviceConfig({ versions: { v1: '__UP__' }, ...(extra !== undefined && { extra }) }).replace('upstream: __UP__', `upstream: ${upstream}`);

t.test('h2c: HTTP/1.1 clients through veer, HTTP/2 to the upstream', async (t) => {
  const up = await h2Upstream(t, 'v1');
  const veer = await runVeer(configWith(upstreamYaml(up.url)));
  t.teardown(() => veer.stop());
  const res = await request(`${veer.url}/hello`);
  t.equal(res.statusCode, 200);
  t.equal(await res.body.text(), 'v1 over HTTP/2.0');
  t.equal(res.headers['x-upstream-http'], '2.0', 'the upstream saw HTTP/2');
  t.match(up.seen, [{ path: '/hello', httpVersion: '2.0' }]);

  // Connection-specific fields are malformed in HTTP/2 (RFC 9113 8.2.2): none reaches the upstream.
  const port = Number(new URL(veer.url).port);
  const raw = await rawRequest(
    port,
    formatRequest('GET', '/hop', [
      ['Host', 'shop.example'],
      ['Connection', 'keep-alive, X-Drop'],
      ['Keep-Alive', 'timeout=5'],
      ['Proxy-Connection', 'keep-alive'],
      ['TE', 'trailers'],
      ['X-Drop', '1'],
      ['X-Kept', 'yes'],
    ]),
  );
  t.equal(raw.status, 200);
  const hop = up.seen.at(-1)!.headers;
  t.equal(hop[':authority'], 'shop.example', "the client's Host is the :authority");
  t.equal(hop.host, undefined, 'and no Host field besides');
  t.equal(hop['x-kept'], 'yes');
  for (const name of ['connection', 'keep-alive', 'proxy-connection', 'te', 'x-drop', 'transfer-encoding', 'upgrade']) t.equal(hop[name], undefined, `no ${name}`);

  // WebSocket over HTTP/2 (RFC 8441) is not spoken to upstreams: the upgrade is refused, not hung.
  const upgrade = await sendRawUntilClose(
    port,
    formatRequest('GET', '/ws', [
      ['Host', 'shop.example'],
      ['Connection', 'Upgrade'],
      ['Upgrade', 'websocket'],
      ['Sec-WebSocket-Version', '13'],
      ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='],
    ]),
  );
  t.match(upgrade.text, /^HTTP\/1\.1 501 /, 'a WebSocket upgrade to an HTTP/2 upstream is 501');
  t.match(upgrade.text, /"code":"unsupported_upgrade"/, 'with the code unsupported_upgrade');
});

t.test('POST bodies of a few MB stream both ways', async (t) => {
  const up = await h2Upstream(t, 'v1');
  const veer = await runVeer(configWith(upstreamYaml(up.url)));
  t.teardown(() => veer.stop());
  const body = Buffer.alloc(5 * 1024 * 1024);
  for (let i = 0; i < body.length; i += 4) body.writeUInt32LE(i, i);
  const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  // Chunked (a stream) and with Content-Length (a buffer).
  async function* chunks() {
    for (let i = 0; i < body.length; i += 256 * 1024) yield body.subarray(i, i + 256 * 1024);
  }
  for (const [label, sent] of [['chunked', Readable.from(chunks())], ['content-length', body]] as const) {
    const res = await request(`${veer.url}/echo`, { method: 'POST', body: sent });
    t.equal(res.statusCode, 200, label);
    const got = Buffer.from(await res.body.arrayBuffer());
    t.equal(got.length, body.length, `${label}: every byte came back`);
    t.equal(digest(got), digest(body), `${label}: in order`);
  }
  t.ok(up.seen.every((s) => s.httpVersion === '2.0'));
});

t.test('an early answer while the body uploads, and a client that leaves mid-response', async (t) => {
  const up = await h2Upstream(t, 'v1');
  const veer = await runVeer(configWith(upstreamYaml(up.url)));
  t.teardown(() => veer.stop());
  const early = await request(`${veer.url}/early`, { method: 'POST', body: Buffer.alloc(4 * 1024 * 1024) });
  t.equal(early.statusCode, 413, "the upstream's early answer reaches the client");
  t.equal(await early.body.text(), 'too large');

  const controller = new AbortController();
  const forever = await request(`${veer.url}/forever`, { signal: controller.signal });
  t.equal(forever.statusCode, 200);
  forever.body.on('error', () => {});
  await new Promise((r) => setTimeout(r, 50));
  controller.abort();
  t.ok(await until(() => up.counts.cancelled === 1, 3000), 'veer resets the upstream stream (CANCEL) when its client goes');
  t.equal((await request(`${veer.url}/`)).statusCode, 200, 'and the session goes on');
  t.equal(up.opened(), 1);
});

t.test('concurrent requests share one session, opened once', async (t) => {
  const up = await h2Upstream(t, 'v1');
  const veer = await runVeer(configWith(upstreamYaml(up.url)));
  t.teardown(() => veer.stop());
  const started = performance.now();
  const answers = await Promise.all(Array.from({ length: 30 }, () => request(`${veer.url}/slow`).then(async (r) => `${r.statusCode} ${await r.body.text()}`)));
  t.same(new Set(answers), new Set(['200 v1 slow']), 'every request answered');
  t.ok(performance.now() - started < 2000, 'at the same time, not one after another');
  t.equal(up.opened(), 1, 'one HTTP/2 session for all of them, even while it connected');
  t.equal(new Set(up.seen.map((s) => s.session)).size, 1);
});

t.test('an upstream that restarts, gracefully (GOAWAY) or killed, is survived', async (t) => {
  const up = await h2Upstream(t, 'v1');
  // Retries on reset: a request sent on a session the upstream has just dropped is repeated.
  const veer = await runVeer(configWith(upstreamYaml(up.url), '    resilience: { retries: { attempts: 2, on: [connect, reset] } }\n'));
  t.teardown(() => veer.stop());
  const get = async (path = '/') => {
    const res = await request(`${veer.url}${path}`);
    return `${res.statusCode} ${await res.body.text()}`;
  };
  t.equal(await get(), '200 v1 over HTTP/2.0');

  // Graceful: a request in flight when the GOAWAY comes still gets its answer.
  const inFlight = get('/slow');
  await until(() => up.seen.some((s) => s.path === '/slow'), 2000);
  const restarting = up.restart();
  t.equal(await inFlight, '200 v1 slow', 'the running stream finished after GOAWAY');
  await restarting;
  t.equal(await get(), '200 v1 over HTTP/2.0', 'a new session after the restart');
  t.equal(up.opened(), 2);

  // Killed: the sockets dropped without GOAWAY.
  await up.restart(true);
  for (let i = 0; i < 5; i++) t.equal(await get(), '200 v1 over HTTP/2.0', `after the kill, request ${i + 1}`);
  t.equal(up.opened(), 3);
});

t.test('h2: HTTPS with ALPN h2, verified against the configured CA', { skip: skipTls ?? false }, async (t) => {
  const up = await h2Upstream(t, 'secure', { cert: readFileSync(pki!.serverCert), key: readFileSync(pki!.serverKey) });
  const veer = await runVeer(configWith(`{ urls: ["${up.url}"], tls: { ca: "${pki!.ca}" }, protocol: h2 }`));
  t.teardown(() => veer.stop());
  const res = await request(`${veer.url}/`);
  t.equal(res.statusCode, 200);
  t.equal(await res.body.text(), 'secure over HTTP/2.0');
  const big = Buffer.alloc(3 * 1024 * 1024, 7);
  const echo = await request(`${veer.url}/echo`, { method: 'POST', body: big });
  t.ok(Buffer.from(await echo.body.arrayBuffer()).equals(big), 'a 3 MB body both ways over TLS');

  const untrusted = await runVeer(configWith(`{ urls: ["${up.url}"], protocol: h2 }`));
  t.teardown(() => untrusted.stop());
  const refused = await request(`${untrusted.url}/`);
  t.equal(refused.statusCode, 502, 'the system CAs do not know the test CA');
  t.match(await refused.body.text(), /upstream_tls_error/);
});

t.test('h2 to an HTTPS upstream without HTTP/2 fails its handshake (ALPN): 502 upstream_tls_error', { skip: skipTls ?? false }, async (t) => {
  const server = createHttpsServer({ cert: readFileSync(pki!.serverCert), key: readFileSync(pki!.serverKey) }, (_req, res) => res.end('http/1.1 only'));
  const port = await listenOnLoopback(server);
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const veer = await runVeer(configWith(`{ urls: ["https://127.0.0.1:${port}"], tls: { ca: "${pki!.ca}" }, protocol: h2 }`));
  t.teardown(() => veer.stop());
  const res = await request(`${veer.url}/`);
  t.equal(res.statusCode, 502);
  t.match(await res.body.text(), /upstream_tls_error/);
});

t.test('h2c to an HTTP/1.1-only upstream is a 502, not a hang', async (t) => {
  const up = await startUpstream('old');
  t.teardown(() => up.close());
  const veer = await runVeer(configWith(upstreamYaml(up.url), "    timeouts: { response: 3s }\n"));
  t.teardown(() => veer.stop());
  const res = await request(`${veer.url}/`);
  t.equal(res.statusCode, 502);
  await res.body.text();
});

t.test('health checks speak HTTP/2 to an h2c upstream', async (t) => {
  const up = await h2Upstream(t, 'v1');
  const veer = await runVeer(configWith(upstreamYaml(up.url, ', health: { path: /healthz, interval: 100ms, timeout: 500ms }')));
  t.teardown(() => veer.stop());
  t.equal((await request(`${veer.url}/`)).statusCode, 200);
  t.ok(await until(() => up.seen.filter((s) => s.path === '/healthz').length >= 2, 3000), 'checks run');
  t.ok(
    up.seen.filter((s) => s.path === '/healthz').every((s) => s.httpVersion === '2.0'),
    'over HTTP/2',
  );
  t.equal(up.opened(), 1, 'on the same session as the traffic');
});

t.test('a reload keeps the pool (and the session) when the spec is unchanged', async (t) => {
  const up = await h2Upstream(t, 'v1');
  const yaml = configWith(upstreamYaml(up.url));
  const veer = await runVeer(yaml);
  t.teardown(() => veer.stop());
  t.equal((await request(`${veer.url}/`)).statusCode, 200);
  const pools = veer.veer.dataPlane.upstreams.size;
  writeFileSync(veer.configPath, `${yaml}    exposeVersionHeader: true\n`);
  t.equal(await veer.veer.reloader.reload('test'), 'success');
  const after = await request(`${veer.url}/`);
  t.equal(after.headers['x-veer-version'], 'v1', 'the new table is serving');
  await after.body.text();
  t.equal(veer.veer.dataPlane.upstreams.size, pools, 'no new pool');
  t.equal(up.opened(), 1, 'the same session');

  // Another spec (another connect timeout) is another pool: a new session.
  writeFileSync(veer.configPath, `${yaml}    timeouts: { connect: 3s }\n`);
  t.equal(await veer.veer.reloader.reload('test'), 'success');
  t.equal((await request(`${veer.url}/`)).statusCode, 200);
  t.equal(up.opened(), 2);
});

t.test('the protocol is part of the spec: its key, and its pool', async (t) => {
  const spec = (protocol: string) => tableFromYaml(`services:\n  - name: s\n    versions: [{ name: v1, upstream: { urls: "http://127.0.0.1:1"${protocol} } }]\n`).services[0]!.versions[0]!.upstream;
  t.equal(spec('').protocol, 'http1', 'http1 by default');
  t.equal(spec(', protocol: http1').key, spec('').key, 'http1 written out is the default');
  t.equal(spec(', protocol: h2c').protocol, 'h2c');
  t.not(spec(', protocol: h2c').key, spec('').key, 'h2c is another spec');
  t.equal(spec(', protocol: h2c').key, spec(', protocol: h2c').key);
});

t.test('a protocol its URLs cannot speak is a config error', async (t) => {
  const refused = async (upstream: string) => runVeer(configWith(upstream)).then(() => t.fail('started'), (e: unknown) => e);
  t.match(await refused('{ urls: ["https://127.0.0.1:1"], protocol: h2c }'), {
    issues: [{ code: 'invalid_upstream', path: 'services[0].versions[0].upstream.urls[0]', message: /https:\/\/, but protocol h2c is cleartext HTTP\/2 and needs http:\/\// }],
  });
  t.match(await refused('{ urls: ["http://127.0.0.1:1", "http://127.0.0.1:2"], protocol: h2 }'), {
    issues: [
      { code: 'invalid_upstream', path: 'services[0].versions[0].upstream.urls[0]', message: /http:\/\/, but protocol h2 is HTTP\/2 over TLS and needs https:\/\// },
      { code: 'invalid_upstream', path: 'services[0].versions[0].upstream.urls[1]' },
    ],
  });
  t.match(await refused('{ urls: "http://127.0.0.1:1", protocol: h3 }'), { issues: [{ code: 'schema' }] });
});

// The dispatcher on its own, as forward.ts and the health checks drive it.

interface Outcome {
  status: number;
  body: Buffer;
  trailers: Record<string, unknown> | null;
  error: (Error & { code?: string }) | null;
}

function send(dispatcher: Http2Upstream, opts: Partial<Dispatcher.DispatchOptions>, onData?: (controller: Dispatcher.DispatchController, received: number) => void): Promise<Outcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const out: Outcome = { status: 0, body: Buffer.alloc(0), trailers: null, error: null };
    dispatcher.dispatch(
      { method: 'GET', path: '/', headers: [], ...opts },
      {
        onResponseStart(_c, status) {
          out.status = status;
        },
        onResponseData(c, chunk) {
          chunks.push(chunk);
          received += chunk.length;
          onData?.(c, received);
        },
        onResponseEnd(_c, trailers) {
          out.trailers = trailers as Record<string, unknown>;
          out.body = Buffer.concat(chunks);
          resolve(out);
        },
        onResponseError(_c, err) {
          out.error = err;
          out.body = Buffer.concat(chunks);
          resolve(out);
        },
      },
    );
  });
}

async function rawH2(t: Test, onRequest: (req: Http2ServerRequest, res: Http2ServerResponse) => void): Promise<{ url: string; sessions: Set<Http2Session> }> {
  const sessions = new Set<Http2Session>();
  const server = createServer(onRequest);
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  const port = await listenOnLoopback(server);
  t.teardown(() => {
    for (const s of sessions) s.destroy();
    server.close();
  });
  return { url: `http://127.0.0.1:${port}`, sessions };
}

const dispatcherFor = (t: Test, url: string, idleTimeoutMs = 4000) => {
  const d = new Http2Upstream(url, { connectTimeoutMs: 1000, idleTimeoutMs, maxSessions: 16, tls: {} });
  t.teardown(() => d.destroy());
  return d;
};

t.test('dispatcher: trailers arrive in onResponseEnd', async (t) => {
  const up = await h2Upstream(t, 'v1');
  const got = await send(dispatcherFor(t, up.url), { path: '/trailers' });
  t.equal(got.status, 200);
  t.equal(String(got.body), 'with trailers');
  t.match(got.trailers, { 'x-checksum': 'abc' });
});

t.test('dispatcher: pause() holds the upstream back (flow control), resume() lets it go on', async (t) => {
  let written = 0;
  const total = 16 * 1024 * 1024;
  const up = await rawH2(t, (_req, res) => {
    const chunk = Buffer.alloc(64 * 1024, 1);
    const pump = () => {
      while (written < total) {
        written += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  let controller: Dispatcher.DispatchController | null = null;
  const done = send(dispatcherFor(t, up.url), {}, (c, received) => {
    if (controller === null && received >= 1024 * 1024) {
      controller = c;
      c.pause();
    }
  });
  await until(() => controller !== null, 3000);
  await new Promise((r) => setTimeout(r, 300));
  t.ok(written < 4 * 1024 * 1024, `the upstream stopped early while paused (${written} bytes written of ${total})`);
  controller!.resume();
  const got = await done;
  t.equal(got.body.length, total, 'everything arrived after resume()');
});

t.test('dispatcher: a stream the upstream resets is an error classified reset, mid-body too', async (t) => {
  const up = await rawH2(t, (req, res) => {
    if (req.url === '/before') return void req.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    res.writeHead(200);
    res.write('partial');
    setTimeout(() => req.stream.close(req.url === '/cancel' ? constants.NGHTTP2_CANCEL : constants.NGHTTP2_INTERNAL_ERROR), 50);
  });
  const d = dispatcherFor(t, up.url);
  for (const path of ['/before', '/during', '/cancel']) {
    const got = await send(d, { path });
    t.ok(got.error, `${path}: an error, not a complete response`);
    t.equal(classifyUpstreamError(got.error).kind, 'reset', `${path}: kind reset`);
  }
  t.equal((await send(d, { path: '/before' })).error?.code, 'ECONNRESET');
  t.equal(up.sessions.size, 1, 'a reset stream leaves the session in use');
});

t.test('dispatcher: GOAWAY lets running streams finish and sends new ones on a new session', async (t) => {
  const up = await rawH2(t, (_req, res) => setTimeout(() => res.end('done'), 150));
  const d = dispatcherFor(t, up.url);
  const running = Array.from({ length: 5 }, () => send(d, {}));
  await until(() => up.sessions.size === 1, 2000);
  await new Promise((r) => setTimeout(r, 50));
  for (const s of up.sessions) s.close();
  const after = send(d, {});
  const outcomes = await Promise.all([...running, after]);
  t.same(
    outcomes.map((o) => `${o.status} ${o.body}`),
    Array(6).fill('200 done'),
    'every request answered',
  );
  t.equal(d.sessionCount, 1, 'the closed session is gone, one new one is open');
});

t.test('dispatcher: connect refused, headers and body timeouts, and idle sessions closed', async (t) => {
  const refused = await send(dispatcherFor(t, 'http://127.0.0.1:1'), {});
  t.equal(classifyUpstreamError(refused.error).kind, 'connect');

  const up = await rawH2(t, (req, res) => {
    if (req.url === '/stall') {
      res.writeHead(200);
      res.write('a');
      return;
    }
    if (req.url === '/never') return;
    res.end('ok');
  });
  const d = dispatcherFor(t, up.url, 200);
  const noHead = await send(d, { path: '/never', headersTimeout: 100 });
  t.equal(classifyUpstreamError(noHead.error).code, 'upstream_timeout');
  t.match(noHead.error?.code, 'UND_ERR_HEADERS_TIMEOUT');
  const stalled = await send(d, { path: '/stall', bodyTimeout: 100 });
  t.match(stalled.error?.code, 'UND_ERR_BODY_TIMEOUT');
  t.equal((await send(d, {})).status, 200);
  t.ok(await until(() => d.sessionCount === 0, 3000), 'the idle session is closed');
  t.equal((await send(d, {})).status, 200, 'and a new one opened when needed');
});

t.test('dispatcher: close() waits for running streams; then it takes no more', async (t) => {
  const up = await rawH2(t, (_req, res) => setTimeout(() => res.end('late'), 100));
  const d = dispatcherFor(t, up.url);
  const running = send(d, {});
  await until(() => up.sessions.size === 1, 2000);
  await new Promise((r) => setTimeout(r, 20));
  await d.close();
  t.equal(String((await running).body), 'late');
  t.equal(d.closed, true);
  const afterClose = await send(d, {});
  t.equal(afterClose.error?.code, 'UND_ERR_CLOSED');
});
