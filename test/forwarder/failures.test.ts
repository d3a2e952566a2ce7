// Upstream failures (refused, silent, cut mid-body, reset) and clients that
// go away, through real sockets. Every wait is bounded.

import type { IncomingMessage, ServerResponse } from 'node:http';
import t, { type Test } from 'tap';
import { createDataPlane } from '../../src/dataplane/index.ts';
import type { ExchangeObserver, FinishedExchange } from '../../src/forwarder/index.ts';
import {
  formatRequest,
  onRequestHeads,
  RawHttpConnection,
  rawRequest,
  startRawUpstream,
  waitFor,
  type RawResponse,
  type TestScope,
} from '../helpers/http.ts';
import { freePort, startUpstream, type TestUpstream } from '../helpers/upstreams.ts';
import { runVeerIn, serviceConfig } from '../helpers/veer.ts';

const GET = formatRequest('GET', '/', [['Host', 'a.test'], ['Connection', 'close']]);

async function upstream(t: TestScope, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestUpstream> {
  const up = await startUpstream('v1', handler);
  t.teardown(() => up.close());
  return up;
}

/** Checks a veer error response: status, JSON content type, {"error":{"code","message"}}. */
function checkError(t: Test, res: RawResponse, status: number, code: string): void {
  t.equal(res.status, status, `status ${status}`);
  t.match(res.headers['content-type']?.[0], /^application\/json/, 'JSON content type');
  const body = JSON.parse(res.body.toString()) as { error?: { code?: unknown; message?: unknown } };
  t.equal(body.error?.code, code, `error code ${code}`);
  t.type(body.error?.message, 'string', 'error message is a string');
  t.same(Object.keys(body), ['error'], 'only an error member');
  t.same(Object.keys(body.error ?? {}).sort(), ['code', 'message', 'requestId'], 'error has code, message and the request id');
}

t.test('connection refused -> 502 upstream_connect_error', async (t) => {
  const port = await freePort();
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: `http://127.0.0.1:${port}` } }));
  const res = await rawRequest(veer.veer.dataAddress.port, GET);
  checkError(t, res, 502, 'upstream_connect_error');
  t.same(res.headers['x-veer-version'], ['v1'], 'the error names the version that failed');
});

t.test('an upstream that never answers -> 504 upstream_timeout after the response timeout', async (t) => {
  const silent = await startRawUpstream(() => {});
  t.teardown(() => silent.close());
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: silent.url }, timeouts: '{ connect: 1s, response: 500ms }' }));
  const started = performance.now();
  const res = await rawRequest(veer.veer.dataAddress.port, GET, { timeoutMs: 5000 });
  const ms = performance.now() - started;
  checkError(t, res, 504, 'upstream_timeout');
  t.ok(ms >= 450 && ms < 2500, `answered after the 500 ms response timeout (${ms.toFixed(0)} ms)`);
});

t.test('an upstream that stops sending mid-body for longer than the response timeout -> the client connection ends', async (t) => {
  const up = await upstream(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '100000' });
    res.write(Buffer.alloc(1000, 97));
  });
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url }, timeouts: '{ connect: 1s, response: 500ms }' }));
  const conn = await RawHttpConnection.open(veer.veer.dataAddress.port);
  t.teardown(() => conn.close());
  conn.write(GET);
  await t.rejects(conn.readResponse({ timeoutMs: 3000 }), /connection ended before a whole response/, 'the truncated response ends the connection');
});

t.test('an upstream that sends headers and part of the body, then drops the socket -> the client sees the connection end', async (t) => {
  for (const framing of ['content-length', 'chunked'] as const) {
    const up = await upstream(t, (req, res) => {
      res.writeHead(200, framing === 'content-length' ? { 'content-length': '100000' } : {});
      res.write(Buffer.alloc(5000, 97));
      setTimeout(() => req.socket.destroy(), 50);
    });
    const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
    const conn = await RawHttpConnection.open(veer.veer.dataAddress.port);
    t.teardown(() => conn.close());
    conn.write(GET);
    const started = performance.now();
    await t.rejects(conn.readResponse({ timeoutMs: 3000 }), /connection ended before a whole response/, `${framing}: the client connection ends`);
    t.ok(performance.now() - started < 2000, `${framing}: promptly, not after a timeout`);
  }
});

t.test('an upstream that closes or resets before sending headers -> 502 upstream_reset', async (t) => {
  for (const how of ['close', 'reset'] as const) {
    const up = await startRawUpstream((socket) =>
      onRequestHeads(socket, () => {
        if (how === 'reset') socket.resetAndDestroy();
        else socket.destroy();
      }),
    );
    t.teardown(() => up.close());
    const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
    const res = await rawRequest(veer.veer.dataAddress.port, GET);
    t.comment(`upstream ${how} before headers`);
    checkError(t, res, 502, 'upstream_reset');
  }
});

t.test('an upstream that sends garbage -> 502 upstream_protocol_error', async (t) => {
  const up = await startRawUpstream((socket) => onRequestHeads(socket, () => socket.end('this is not HTTP\r\n\r\n')));
  t.teardown(() => up.close());
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
  const res = await rawRequest(veer.veer.dataAddress.port, GET);
  checkError(t, res, 502, 'upstream_protocol_error');
});

t.test('an unsolicited 100 Continue from the upstream -> 502 upstream_protocol_error, never a reset that is retried', async (t) => {
  // RFC 9110 15.2 wants it ignored or passed on; undici, veer's HTTP client, drops the connection on
  // it (veer never sends Expect, so it is always unsolicited). Named for what it is, and not retried.
  let requests = 0;
  const up = await startRawUpstream((socket) =>
    onRequestHeads(socket, () => {
      requests++;
      socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    }),
  );
  t.teardown(() => up.close());
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url }, extra: '    resilience: { retries: { attempts: 2 } }\n' }));
  const res = await rawRequest(veer.veer.dataAddress.port, GET);
  checkError(t, res, 502, 'upstream_protocol_error');
  t.equal(requests, 1, 'not retried');
});

/** An upstream whose responses never finish; records when each request/response closes and whether it finished. */
async function hangingUpstream(t: TestScope, opts: { sendHead: boolean }) {
  const closes: { at: number; finished: boolean; complete: boolean }[] = [];
  const up = await upstream(t, (req, res) => {
    req.resume();
    res.on('close', () => closes.push({ at: performance.now(), finished: res.writableFinished, complete: req.complete }));
    if (opts.sendHead) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(Buffer.alloc(1000, 98));
    }
  });
  return { up, closes };
}

t.test('a client that goes away mid-response aborts the upstream request', async (t) => {
  const { up, closes } = await hangingUpstream(t, { sendHead: true });
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
  const conn = await RawHttpConnection.open(veer.veer.dataAddress.port);
  conn.write(formatRequest('GET', '/stream', [['Host', 'a.test']]));
  const gotBody = await waitFor(() => up.seen.length === 1 && conn.socket.bytesRead > 1000, 3000);
  t.ok(gotBody, 'the client got the head and part of the body');
  const abortedAt = performance.now();
  conn.close();
  t.ok(await waitFor(() => closes.length === 1, 2000), 'the upstream response closed');
  t.equal(closes[0]?.finished, false, 'with the response unfinished');
  t.ok(closes[0]!.at - abortedAt < 1000, `within a second of the client leaving (${(closes[0]!.at - abortedAt).toFixed(0)} ms)`);
});

t.test('a client that goes away while the upstream is still thinking aborts the upstream request', async (t) => {
  const { up, closes } = await hangingUpstream(t, { sendHead: false });
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
  const conn = await RawHttpConnection.open(veer.veer.dataAddress.port);
  conn.write(formatRequest('GET', '/slow', [['Host', 'a.test']]));
  t.ok(await waitFor(() => up.seen.length === 1, 3000), 'the upstream got the request');
  const abortedAt = performance.now();
  conn.close();
  t.ok(await waitFor(() => closes.length === 1, 2000), 'the upstream request closed');
  t.equal(closes[0]?.finished, false, 'without a response');
  t.ok(closes[0]!.at - abortedAt < 1000, `within a second (${(closes[0]!.at - abortedAt).toFixed(0)} ms)`);
});

t.test('a client that goes away mid-upload aborts the upstream request', async (t) => {
  const { up, closes } = await hangingUpstream(t, { sendHead: false });
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
  const conn = await RawHttpConnection.open(veer.veer.dataAddress.port);
  conn.write(formatRequest('POST', '/upload', [['Host', 'a.test'], ['Content-Length', String(10 * 1024 * 1024)]]));
  conn.write(Buffer.alloc(100_000, 99));
  t.ok(await waitFor(() => up.seen.length === 1, 3000), 'the upstream got the request');
  const abortedAt = performance.now();
  conn.close();
  t.ok(await waitFor(() => closes.length === 1, 2000), 'the upstream request closed');
  t.equal(closes[0]?.complete, false, 'with the request body incomplete');
  t.ok(closes[0]!.at - abortedAt < 1000, `within a second (${(closes[0]!.at - abortedAt).toFixed(0)} ms)`);
});

t.test('each exchange is reported once; a client abort is a 499, not an upstream failure', async (t) => {
  const streaming = await hangingUpstream(t, { sendHead: true });
  const thinking = await hangingUpstream(t, { sendHead: false });
  const normal = await upstream(t, (_req, res) => res.end('ok'));
  const refused = await freePort();
  const routes = `    routes:
      - match: { header: { name: x-to, value: v2 } }
        to: v2
      - match: { header: { name: x-to, value: v3 } }
        to: v3
      - match: { header: { name: x-to, value: v4 } }
        to: v4
`;
  const veer = await runVeerIn(
    t,
    serviceConfig({ versions: { v1: streaming.up.url, v2: thinking.up.url, v3: normal.url, v4: `http://127.0.0.1:${refused}` }, extra: routes }),
  );
  const ended: { version: string; status: number; failure: string | null }[] = [];
  const observer: ExchangeObserver = {
    onExchangeEnd({ version, status, failure }: FinishedExchange) {
      ended.push({ version: version.name, status, failure: failure?.code ?? null });
    },
  };
  // A second data plane over the same live table, with an observer the test can read.
  const plane = createDataPlane({ table: () => veer.veer.state.table, log: veer.veer.log, observer });
  const { port } = await plane.listen('127.0.0.1', 0);
  t.teardown(() => plane.drain(0));

  const aborts = [
    { what: 'mid-response', head: formatRequest('GET', '/a', [['Host', 'a.test']]), body: null, ready: () => streaming.up.seen.length === 1 },
    { what: 'waiting for headers', head: formatRequest('GET', '/b', [['Host', 'a.test'], ['x-to', 'v2']]), body: null, ready: () => thinking.up.seen.length === 1 },
    {
      what: 'mid-upload',
      head: formatRequest('POST', '/c', [['Host', 'a.test'], ['x-to', 'v2'], ['Content-Length', '1000000']]),
      body: Buffer.alloc(50_000, 1),
      ready: () => thinking.up.seen.length === 2,
    },
  ];
  for (const [i, a] of aborts.entries()) {
    const conn = await RawHttpConnection.open(port);
    conn.write(a.head);
    if (a.body) conn.write(a.body);
    t.ok(await waitFor(a.ready, 3000), `${a.what}: the request reached its upstream`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    conn.close();
    t.ok(await waitFor(() => ended.length === i + 1, 2000), `${a.what}: the exchange was reported`);
  }
  const ok = await rawRequest(port, formatRequest('GET', '/', [['Host', 'a.test'], ['x-to', 'v3'], ['Connection', 'close']]));
  t.equal(ok.status, 200);
  const bad = await rawRequest(port, formatRequest('GET', '/', [['Host', 'a.test'], ['x-to', 'v4'], ['Connection', 'close']]));
  t.equal(bad.status, 502);
  t.ok(await waitFor(() => ended.length >= 5, 2000), 'every exchange was reported');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.same(
    ended,
    [
      { version: 'v1', status: 499, failure: null },
      { version: 'v2', status: 499, failure: null },
      { version: 'v2', status: 499, failure: null },
      { version: 'v3', status: 200, failure: null },
      { version: 'v4', status: 502, failure: 'upstream_connect_error' },
    ],
    'each exchange reported exactly once; client aborts are 499 without an upstream failure',
  );
});

t.test('a keep-alive client that pipelines two requests and leaves: both upstream requests are aborted and reported once as 499', async (t) => {
  const thinking = await hangingUpstream(t, { sendHead: false });
  const normal = await upstream(t, (_req, res) => res.end('ok'));
  const routes = `    routes:
      - match: { header: { name: x-to, value: v2 } }
        to: v2
`;
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: normal.url, v2: thinking.up.url }, extra: routes }));
  const ended: { version: string; status: number }[] = [];
  const plane = createDataPlane({
    table: () => veer.veer.state.table,
    log: veer.veer.log,
    observer: { onExchangeEnd: ({ version, status }: FinishedExchange) => void ended.push({ version: version.name, status }) },
  });
  const { port } = await plane.listen('127.0.0.1', 0);
  t.teardown(() => plane.drain(0));

  const conn = await RawHttpConnection.open(port);
  conn.write(formatRequest('GET', '/first', [['Host', 'a.test']]));
  t.equal((await conn.readResponse()).status, 200, 'a first exchange ends normally on the connection');
  conn.write(formatRequest('GET', '/second', [['Host', 'a.test'], ['x-to', 'v2']]) + formatRequest('GET', '/third', [['Host', 'a.test'], ['x-to', 'v2']]));
  t.ok(await waitFor(() => thinking.up.seen.length === 2, 3000), 'both pipelined requests reached the upstream');
  conn.close();
  t.ok(await waitFor(() => thinking.closes.length === 2, 2000), 'both upstream requests were closed');
  t.same(
    thinking.closes.map((c) => c.finished),
    [false, false],
    'neither with a response',
  );
  t.ok(await waitFor(() => ended.length === 3, 2000), 'every exchange was reported');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.same(
    ended,
    [
      { version: 'v1', status: 200 },
      { version: 'v2', status: 499 },
      { version: 'v2', status: 499 },
    ],
    'the finished exchange once as 200, the two abandoned ones once each as 499',
  );
  t.equal(plane.inFlight, 0, 'nothing left in flight');
});
