// Regression: a request head that never finished was cut off about 30 s after
// the 20 s headers timeout (Node checks it only every
// connectionsCheckingInterval, 30 s by default), and answered 400. It is now
// answered 408 request_timeout, with a JSON body and `connection: close`, at
// most 0.5 s after it (a quarter of the timeout when that is shorter).

import t from 'tap';
import { createDataPlane } from '../../src/dataplane/index.ts';
import { RawHttpConnection } from '../helpers/http.ts';
import { startUpstream } from '../helpers/upstreams.ts';
import { runVeerIn, serviceConfig } from '../helpers/veer.ts';

const TIMEOUT_MS = 300;

t.test('a request head that does not arrive in time is answered 408 on time, and closed', async (t) => {
  const up = await startUpstream('v1');
  t.teardown(() => up.close());
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
  // A second data plane over the same live table, with a short headers timeout.
  const plane = createDataPlane({ table: () => veer.veer.state.table, log: veer.veer.log, headersTimeoutMs: TIMEOUT_MS });
  const { port } = await plane.listen('127.0.0.1', 0);
  t.teardown(() => plane.drain(0));

  for (const [what, bytes] of [
    ['half a head', 'GET /slow HTTP/1.1\r\nHost: shop\r\nX-A: 1\r\n'],
    ['nothing at all', ''],
  ] as const) {
    const conn = await RawHttpConnection.open(port);
    t.teardown(() => conn.close());
    const started = performance.now();
    conn.write(bytes);
    const res = await conn.readResponse({ timeoutMs: 5000 });
    const elapsed = performance.now() - started;
    t.equal(res.status, 408, `${what}: 408`);
    t.equal((JSON.parse(res.body.toString()) as { error: { code: string } }).error.code, 'request_timeout', `${what}: code request_timeout`);
    t.match(res.headers['content-type']?.[0], /^application\/json/, `${what}: JSON`);
    t.same(res.headers.connection, ['close'], `${what}: connection: close`);
    t.ok(elapsed >= TIMEOUT_MS - 20, `${what}: not before the timeout (${Math.round(elapsed)} ms)`);
    t.ok(elapsed < TIMEOUT_MS * 2 + 100, `${what}: soon after it (${Math.round(elapsed)} ms, timeout ${TIMEOUT_MS} ms)`);
    t.ok(await conn.waitEnd(1000), `${what}: and the connection is closed`);
  }
  t.equal(up.seen.length, 0, 'nothing reached the upstream');

  // A head that trickles in but completes in time is served.
  const conn = await RawHttpConnection.open(port);
  t.teardown(() => conn.close());
  conn.write('GET /ok HTTP/1.1\r\n');
  await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS / 2));
  conn.write('Host: shop\r\n\r\n');
  t.equal((await conn.readResponse()).status, 200, 'a head that completes in time is served');
  t.equal(up.seen.at(-1)?.url, '/ok', 'and forwarded');
});

t.test('by default the headers timeout is 20 s', async (t) => {
  const up = await startUpstream('v1');
  t.teardown(() => up.close());
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
  t.equal(veer.veer.dataPlane.server.headersTimeout, 20_000);
});
