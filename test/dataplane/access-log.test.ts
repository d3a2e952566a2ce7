// log.access: one JSON line per exchange on veer's stdout, read from a real
// `veer serve` child in front of real upstreams on 127.0.0.1; and the
// writer alone (whole lines, in order, flushed).

import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import t, { type Test } from 'tap';
import { AccessLog } from '../../src/dataplane/access-log.ts';
import { formatRequest, rawRequest, RawHttpConnection, waitFor, type TestScope } from '../helpers/http.ts';
import { freePort, REFUSED_PORT, startUpstream, type TestUpstream } from '../helpers/upstreams.ts';
import { serveInChild, writeConfig, type VeerProcess } from '../helpers/veer.ts';

type Line = Record<string, unknown>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ACCESS_KEYS = ['time', 'msg', 'method', 'host', 'path', 'status', 'service', 'version', 'failover', 'retries', 'upstream', 'error', 'durationMs', 'bytesIn', 'bytesOut', 'requestId', 'userAgent'];

/** An upstream that reads the whole request body, then answers `size` bytes (in 16 KiB writes). */
async function sizedUpstream(t: TestScope, size: number): Promise<TestUpstream & { bodies: number[] }> {
  const bodies: number[] = [];
  const up = await startUpstream('sized', (req: IncomingMessage, res: ServerResponse) => {
    let read = 0;
    req.on('data', (chunk: Buffer) => (read += chunk.length));
    req.on('end', () => {
      bodies.push(read);
      res.writeHead(200, { 'content-type': 'text/plain' });
      const piece = Buffer.alloc(16 * 1024, 'x');
      for (let left = size; left > 0; left -= piece.length) res.write(left >= piece.length ? piece : piece.subarray(0, left));
      res.end();
    });
  });
  t.teardown(() => up.close());
  return Object.assign(up, { bodies });
}

/** An upstream that never answers (the client gives up first). */
async function silentUpstream(t: TestScope): Promise<TestUpstream> {
  const up = await startUpstream('silent', () => {});
  t.teardown(() => up.close());
  return up;
}

function accessConfig(opts: { access: boolean; app: string; down: string; slow: string; workers?: number }): string {
  const service = (name: string, prefix: string, upstream: string) => `  - name: ${name}
    match: { hosts: [app.test], pathPrefix: ${prefix} }
    versions:
      - name: v1
        upstream: ${upstream}
`;
  return `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
workers: ${opts.workers ?? 1}
log: { level: info, access: ${opts.access} }
drainTimeout: 5s
services:
${service('app', '/', opts.app)}${service('down', '/down', opts.down)}${service('slow', '/slow', opts.slow)}`;
}

/** Starts `veer serve` on `yaml` (stopped when the test ends) and returns it with its data-plane port. */
async function serve(t: TestScope, yaml: string): Promise<{ veer: VeerProcess; port: number; configPath: string }> {
  const configPath = writeConfig(yaml);
  const { veer, serving } = await serveInChild(t, configPath);
  const listen = String(serving.listen);
  return { veer, port: Number(listen.slice(listen.lastIndexOf(':') + 1)), configPath };
}

/** The next access line, checked to have exactly the documented fields. */
async function nextAccess(t: Test, veer: VeerProcess): Promise<Line> {
  const line = await veer.waitForLog('access', 5000);
  t.same(Object.keys(line), ACCESS_KEYS, 'the access line has the documented fields, in order');
  return line;
}

t.test('log.access: every field of a GET, a POST with a body, a 404, a 502 and a client abort', async (t) => {
  const app = await sizedUpstream(t, 100_000);
  const down = await freePort();
  const slow = await silentUpstream(t);
  const { veer, port } = await serve(t, accessConfig({ access: true, app: app.url, down: `http://127.0.0.1:${down}`, slow: slow.url }));
  const before = Date.now();

  // First, so the pool has no connection yet: the body must wait, not flow, while undici connects.
  await t.test('POST bodies: bytes in as read from the client, Content-Length or chunked', async (t) => {
    const body = Buffer.alloc(300_000, 'b');
    const conn = await RawHttpConnection.open(port);
    t.teardown(() => conn.close());
    conn.write(formatRequest('POST', '/upload', [['Host', 'app.test'], ['Content-Length', String(body.length)], ['User-Agent', 'probe/1.0']]));
    conn.write(body);
    const res = await conn.readResponse();
    t.equal(res.status, 200);
    t.equal(app.bodies.at(-1), body.length, 'the upstream got the whole body');
    t.match(await nextAccess(t, veer), { method: 'POST', path: '/upload', status: 200, bytesIn: 300_000, bytesOut: 100_000 });

    // Chunked, on the same keep-alive connection: the body bytes, not the chunk framing.
    conn.write(formatRequest('PUT', '/upload', [['Host', 'app.test'], ['Transfer-Encoding', 'chunked']]));
    for (const size of [1000, 70_000, 5]) conn.write(`${size.toString(16)}\r\n${'c'.repeat(size)}\r\n`);
    conn.write('0\r\n\r\n');
    t.equal((await conn.readResponse()).status, 200);
    t.equal(app.bodies.at(-1), 71_005);
    t.match(await nextAccess(t, veer), { method: 'PUT', status: 200, bytesIn: 71_005, bytesOut: 100_000 });
  });

  await t.test('a GET with x-request-id', async (t) => {
    const res = await rawRequest(port, formatRequest('GET', '/items?page=2', [['Host', 'app.test'], ['User-Agent', 'probe/1.0'], ['X-Request-Id', 'req-42'], ['Connection', 'close']]));
    t.equal(res.status, 200);
    t.equal(res.body.length, 100_000, 'a body in several chunks');
    const line = await nextAccess(t, veer);
    const time = Date.parse(String(line.time));
    t.ok(time >= before - 1000 && time <= Date.now() + 1000, `time is an ISO date of now (${String(line.time)})`);
    t.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    t.match(line, {
      msg: 'access',
      method: 'GET',
      host: 'app.test',
      path: '/items?page=2',
      status: 200,
      service: 'app',
      version: 'v1',
      upstream: app.url,
      error: null,
      bytesIn: 0,
      bytesOut: 100_000,
      requestId: 'req-42',
      userAgent: 'probe/1.0',
    });
    t.type(line.durationMs, 'number');
    t.ok((line.durationMs as number) >= 0 && (line.durationMs as number) < 5000, `durationMs ${String(line.durationMs)}`);
  });

  await t.test('requests without x-request-id get a fresh UUID each; no user agent is null', async (t) => {
    const ids: unknown[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await rawRequest(port, formatRequest('GET', '/', [['Host', 'app.test'], ['Connection', 'close']]));
      t.equal(res.status, 200);
      const line = await nextAccess(t, veer);
      t.match(line.requestId, UUID, 'a generated request id is a v4 UUID');
      t.equal(line.userAgent, null);
      ids.push(line.requestId);
    }
    t.not(ids[0], ids[1], 'one id per request');
  });

  await t.test('no service matches: 404 with no service, version or upstream', async (t) => {
    const res = await rawRequest(port, formatRequest('GET', '/x', [['Host', 'other.test'], ['Connection', 'close']]));
    t.equal(res.status, 404);
    t.match(await nextAccess(t, veer), { method: 'GET', host: 'other.test', path: '/x', status: 404, service: null, version: null, upstream: null, error: 'no_route', bytesIn: 0, bytesOut: res.body.length });
  });

  await t.test('an upstream that refuses: 502 with the endpoint and the error code', async (t) => {
    const res = await rawRequest(port, formatRequest('GET', '/down/a', [['Host', 'app.test'], ['X-Request-Id', 'r-502'], ['Connection', 'close']]));
    t.equal(res.status, 502);
    t.ok(res.body.length > 0);
    t.match(await nextAccess(t, veer), {
      path: '/down/a',
      status: 502,
      service: 'down',
      version: 'v1',
      upstream: `http://127.0.0.1:${down}`,
      error: 'upstream_connect_error',
      bytesOut: res.body.length,
      requestId: 'r-502',
    });
  });

  await t.test('a client that goes away before the answer: 499', async (t) => {
    const conn = await RawHttpConnection.open(port);
    conn.write(formatRequest('GET', '/slow/wait', [['Host', 'app.test'], ['X-Request-Id', 'r-499']]));
    t.ok(await waitFor(() => slow.seen.length === 1), 'the upstream has the request');
    conn.close();
    t.match(await nextAccess(t, veer), { path: '/slow/wait', status: 499, service: 'slow', upstream: slow.url, error: null, bytesOut: 0, requestId: 'r-499' });
  });
});

t.test('log.access off (the default): no access line', async (t) => {
  const app = await sizedUpstream(t, 10);
  const down = await freePort();
  const { veer, port } = await serve(t, accessConfig({ access: false, app: app.url, down: `http://127.0.0.1:${down}`, slow: app.url }));
  for (const [target, host] of [['/', 'app.test'], ['/down', 'app.test'], ['/', 'other.test']] as const) {
    await rawRequest(port, formatRequest('GET', target, [['Host', host], ['Connection', 'close']]));
  }
  veer.child.kill('SIGTERM');
  t.equal(await veer.exited, 0);
  const lines = veer.output().split('\n').filter((l) => l.startsWith('{'));
  t.ok(lines.some((l) => l.includes('"stopped"')), 'veer stopped cleanly (its log is read whole)');
  t.same(lines.filter((l) => l.includes('"msg":"access"')), [], 'no access line');
});

t.test('a reload that flips log.access warns that it needs a restart, and changes nothing', async (t) => {
  const app = await sizedUpstream(t, 10);
  const yaml = (access: boolean) => accessConfig({ access, app: app.url, down: app.url, slow: app.url });
  const { veer, port, configPath } = await serve(t, yaml(false));
  writeFileSync(configPath, yaml(true));
  veer.child.kill('SIGHUP');
  const warning = await veer.waitForLog('log.access changed in the config; it applies at the next restart (the rest of the config is applied)');
  t.equal(warning.key, 'log.access');
  await rawRequest(port, formatRequest('GET', '/', [['Host', 'app.test'], ['Connection', 'close']]));
  veer.child.kill('SIGTERM');
  await veer.exited;
  t.notOk(veer.output().includes('"msg":"access"'), 'still no access line until a restart');
});

t.test('workers: 2 with log.access: each worker writes whole lines; a drain writes the last ones', async (t) => {
  const app = await sizedUpstream(t, 10);
  const { veer, port } = await serve(t, accessConfig({ access: true, app: app.url, down: app.url, slow: app.url, workers: 2 }));
  const n = 40;
  await Promise.all(Array.from({ length: n }, (_, i) => rawRequest(port, formatRequest('GET', `/w/${i}`, [['Host', 'app.test'], ['Connection', 'close']]))));
  veer.child.kill('SIGTERM');
  t.equal(await veer.exited, 0);
  const access = veer
    .output()
    .split('\n')
    .filter((l) => l.includes('"msg":"access"'))
    .map((l) => JSON.parse(l) as Line);
  t.equal(access.length, n, 'one line per request, each whole JSON');
  t.same(new Set(access.map((l) => l.path)).size, n);
});

t.test('the writer: lines in order, whole lines per write, flush waits for the last', async (t) => {
  const writes: Buffer[] = [];
  const log = new AccessLog({
    write(chunk, done) {
      writes.push(Buffer.from(chunk));
      setTimeout(() => done(null), 1);
    },
  });
  const req = { method: 'GET', url: '/', headers: { host: 'h', 'x-request-id': 'x' } } as unknown as IncomingMessage;
  const started = performance.now();
  for (let i = 0; i < 2000; i++) log.logUnrouted(req, 404, started, i);
  await log.flush(5000);
  t.ok(writes.length > 1, `several writes (${writes.length})`);
  for (const chunk of writes) t.equal(chunk.at(-1), 10, 'each write ends a line');
  const lines = Buffer.concat(writes).toString().trim().split('\n').map((l) => JSON.parse(l) as Line);
  t.same(lines.map((l) => l.bytesOut), Array.from({ length: 2000 }, (_, i) => i), 'every line, in order');
  t.equal(log.dropped, 0);
});

t.test('the writer: a destination that fails loses those lines, counts them, and says so once it works again', async (t) => {
  let fail = true;
  const writes: string[] = [];
  const log = new AccessLog({
    write(chunk, done) {
      if (fail) done(Object.assign(new Error('broken pipe'), { code: 'EPIPE' }));
      else {
        writes.push(chunk.toString());
        done(null);
      }
    },
  });
  const req = { method: 'GET', url: '/', headers: {} } as unknown as IncomingMessage;
  log.logUnrouted(req, 404, performance.now(), 1);
  await log.flush(1000);
  t.equal(log.dropped, 1);
  fail = false;
  log.logUnrouted(req, 404, performance.now(), 2);
  await log.flush(1000);
  const lines = writes.join('').trim().split('\n').map((l) => JSON.parse(l) as Line);
  t.match(lines, [{ msg: 'access', bytesOut: 2 }, { msg: 'access log lines dropped', dropped: 1 }]);
});

t.test('the writer into a pipe that nobody reads yet: the event loop never waits; every line arrives, in order', async (t) => {
  const fifo = join(mkdtempSync(join(tmpdir(), 'veer-access-')), 'stdout');
  execFileSync('mkfifo', [fifo]);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(fifo, constants.O_WRONLY); // blocking, like a process's stdout
  t.teardown(() => {
    closeSync(writer);
    closeSync(reader);
  });
  const log = new AccessLog(writer);
  const req = { method: 'GET', url: '/', headers: { 'x-request-id': 'x' } } as unknown as IncomingMessage;
  const n = 3000; // ~700 KB: ten times what a pipe holds
  const started = performance.now();
  for (let i = 0; i < n; i++) log.logUnrouted(req, 404, started, i);
  const before = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.ok(performance.now() - before < 400, 'timers still fire on time while the pipe is full');
  t.ok(performance.now() - started < 1000, 'logging did not wait for the reader');

  let text = '';
  const buf = Buffer.alloc(64 * 1024);
  const done = await waitFor(() => {
    for (;;) {
      try {
        const read = readSync(reader, buf, 0, buf.length, null);
        if (read === 0) break;
        text += buf.toString('utf8', 0, read);
      } catch {
        break; // EAGAIN: nothing yet
      }
    }
    return text.split('\n').length > n;
  }, 10_000);
  t.ok(done, 'all lines came through');
  const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Line);
  t.same(lines.map((l) => l.bytesOut), Array.from({ length: n }, (_, i) => i), 'every line once, whole, in order');
  t.equal(log.dropped, 0);
});

t.test('log.access: a request that failed over names the version that answered; a retried one counts its retries', async (t) => {
  const app = await sizedUpstream(t, 10);
  const dead = REFUSED_PORT;
  let tries = 0;
  const flaky = await startUpstream('flaky', (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    res.statusCode = ++tries === 1 ? 503 : 200;
    res.end('x');
  });
  t.teardown(() => flaky.close());
  const configPath = writeConfig(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: true }
services:
  - name: canary
    match: { hosts: [canary.test] }
    versions:
      - { name: v1, upstream: "${app.url}" }
      - { name: v2, upstream: "http://127.0.0.1:${dead}" }
    split: { weights: { v1: 0, v2: 100 } }
    resilience: { failover: v1, retries: { attempts: 0 } }
  - name: flaky
    match: { hosts: [flaky.test] }
    versions: [{ name: v1, upstream: "${flaky.url}" }]
    resilience: { retries: { attempts: 1 } }
`);
  const { veer, serving } = await serveInChild(t, configPath);
  const listen = String(serving.listen);
  const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  const first = await rawRequest(port, formatRequest('GET', '/x', [['Host', 'canary.test'], ['Connection', 'close']]));
  t.equal(first.status, 200);
  t.match(await nextAccess(t, veer), { service: 'canary', version: 'v2', failover: 'v1', retries: 0, status: 200, error: 'upstream_connect_error', upstream: app.url });
  const second = await rawRequest(port, formatRequest('GET', '/y', [['Host', 'flaky.test'], ['Connection', 'close']]));
  t.equal(second.status, 200);
  t.match(await nextAccess(t, veer), { service: 'flaky', version: 'v1', failover: null, retries: 1, status: 200, error: null });
});
