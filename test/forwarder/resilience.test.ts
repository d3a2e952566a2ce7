// Safety nets (`resilience`), against real upstreams on 127.0.0.1 that fail
// in the ways pods do: refused connections (a dead pod), resets, 5xx storms
// and slow answers. Each test reads what the upstreams received and what the
// client got, and the metrics veer exported for it.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { admin, until } from '../helpers/admin.ts';
import { freePort, REFUSED_PORT, listenOnLoopback } from '../helpers/upstreams.ts';
import { runVeer, serviceConfig, type RunningVeer } from '../helpers/veer.ts';

/** An upstream whose behaviour per request the test sets; it records every request it received (method, url, body). */
async function upstream(
  t: Test,
  name: string,
  handle: (req: IncomingMessage, res: ServerResponse, n: number) => void = (_req, res) => res.end(name),
  port = 0,
): Promise<{ url: string; port: number; seen: { method: string; url: string; body: string }[]; server: Server }> {
  const seen: { method: string; url: string; body: string }[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', body });
      handle(req, res, seen.length);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const bound = port === 0 ? await listenOnLoopback(server) : await new Promise<number>((r) => server.listen(port, '127.0.0.1', () => r(port)));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { url: `http://127.0.0.1:${bound}`, port: bound, seen, server };
}

async function start(t: Test, yaml: string): Promise<RunningVeer> {
  const veer = await runVeer(yaml);
  t.teardown(() => veer.stop());
  return veer;
}

async function get(url: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) {
  const res = await request(url, { method: (init.method ?? 'GET') as 'GET', body: init.body, headers: init.headers });
  const text = await res.body.text();
  return { status: res.statusCode, version: res.headers['x-veer-version'], text };
}

/** The value of one sample of /metrics (0 when absent). */
async function metric(veer: RunningVeer, name: string, labels: Record<string, string>): Promise<number> {
  const text = (await admin<string>(veer.adminUrl, 'GET', '/metrics')).body;
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) || !want.every((w) => line.includes(w))) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

t.test('a version whose pods are down: its requests fail over, its users see no error, it counts the errors', async (t) => {
  const v1 = await upstream(t, 'v1');
  const dead = `http://127.0.0.1:${REFUSED_PORT}`;
  const veer = await start(t, serviceConfig({ versions: { v1: v1.url, v2: dead }, weights: { v1: 50, v2: 50 }, extra: '    resilience: {}\n' }));
  const answers = await Promise.all(Array.from({ length: 40 }, () => get(`${veer.url}/x`)));
  t.same(new Set(answers.map((a) => a.status)), new Set([200]), 'every request answered 200');
  t.same(new Set(answers.map((a) => a.version)), new Set(['v1']), 'x-veer-version names the version that served');
  const failovers = await metric(veer, 'veer_failovers_total', { service: 'svc', from: 'v2', to: 'v1' });
  t.ok(failovers > 5 && failovers < 40, `v2's share failed over (${failovers} of 40)`);
  t.equal(await metric(veer, 'veer_upstream_errors_total', { version: 'v2', kind: 'connect' }), failovers, "and counted as v2's connect errors");
  t.equal(v1.seen.length, 40, 'v1 served every request once');

  // A POST fails over too (nothing was sent to v2), its body intact.
  let posted = 0;
  for (let i = 0; i < 10; i++) {
    const res = await get(`${veer.url}/order`, { method: 'POST', body: `order-${i}`, headers: { 'content-type': 'text/plain' } });
    t.equal(res.status, 200);
    posted++;
  }
  t.equal(posted, 10);
  const bodies = v1.seen.filter((s) => s.method === 'POST').map((s) => s.body);
  t.same(bodies, Array.from({ length: 10 }, (_, i) => `order-${i}`), 'each POST reached v1 once, with its body');
});

t.test('without resilience a dead version is still a 502, as before', async (t) => {
  const v1 = await upstream(t, 'v1');
  const dead = `http://127.0.0.1:${REFUSED_PORT}`;
  const veer = await start(t, serviceConfig({ versions: { v1: v1.url, v2: dead }, weights: { v1: 0, v2: 100 } }));
  const res = await get(`${veer.url}/x`);
  t.equal(res.status, 502);
  t.match(res.text, /upstream_connect_error/);
});

t.test('failover: none, or a named version; an unknown one is a config error', async (t) => {
  const v1 = await upstream(t, 'v1');
  const v3 = await upstream(t, 'v3');
  const dead = `http://127.0.0.1:${REFUSED_PORT}`;
  const none = await start(t, serviceConfig({ versions: { v1: v1.url, v2: dead }, weights: { v1: 0, v2: 100 }, extra: '    resilience: { failover: none }\n' }));
  t.equal((await get(`${none.url}/x`)).status, 502, 'none: the error reaches the client');
  const named = await start(t, serviceConfig({ versions: { v1: v1.url, v2: dead, v3: v3.url }, weights: { v1: 90, v2: 10, v3: 0 }, extra: '    resilience: { failover: v3 }\n' }));
  await admin(named.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights: { v1: 0, v2: 100, v3: 0 } } });
  const res = await get(`${named.url}/x`);
  t.equal(res.status, 200);
  t.equal(res.version, 'v3', 'goes to the named version, even at weight 0');
  const text = (await admin<string>(named.adminUrl, 'GET', '/metrics')).body;
  t.match(text, /veer_endpoint_up\{service="svc",version="v3",endpoint="[^"]+"\} 1/, 'an endpoint series for a version with traffic');
  t.notMatch(text, /veer_endpoint_up\{service="svc",version="v1"/, 'none for a version without any');
  const refused = await runVeer(serviceConfig({ versions: { v1: v1.url }, extra: '    resilience: { failover: v9 }\n' })).catch((err: unknown) => err);
  t.match(refused, { issues: [{ code: 'unknown_version', path: 'services[0].resilience.failover' }] }, 'an unknown failover version does not start');
});

t.test('retries: an idempotent request is retried on a 503, a POST never is', async (t) => {
  const flaky = await upstream(t, 'v1', (_req, res, n) => {
    res.statusCode = n % 2 === 1 ? 503 : 200;
    res.end(`answer ${n}`);
  });
  const veer = await start(t, serviceConfig({ versions: { v1: flaky.url }, extra: '    resilience: { retries: { attempts: 2 } }\n' }));
  const res = await get(`${veer.url}/a`);
  t.equal(res.status, 200, 'the client gets the second try');
  t.equal(res.text, 'answer 2');
  t.equal(flaky.seen.length, 2, 'the upstream saw two tries');
  const post = await get(`${veer.url}/b`, { method: 'POST', body: 'once' });
  t.equal(post.status, 503, 'the POST gets the upstream 503 as it was');
  t.equal(flaky.seen.filter((s) => s.method === 'POST').length, 1, 'and was sent once');
  t.equal(await metric(veer, 'veer_upstream_retries_total', { version: 'v1', reason: '503' }), 1);
});

t.test('retries go to another endpoint first; a reset is retried', async (t) => {
  const resetting = await upstream(t, 'bad', (req) => req.socket.destroy());
  const good = await upstream(t, 'good');
  const veer = await start(
    t,
    serviceConfig({ versions: { v1: '__URLS__' }, extra: '    resilience: { retries: { attempts: 1 } }\n' }).replace('upstream: __URLS__', `upstream: ["${resetting.url}", "${good.url}"]`),
  );
  const answers = await Promise.all(Array.from({ length: 6 }, () => get(`${veer.url}/r`)));
  t.same(
    answers.map((a) => a.status),
    [200, 200, 200, 200, 200, 200],
    'every request answered',
  );
  t.equal(good.seen.length, 6, 'the good endpoint served each request once');
  t.equal(resetting.seen.length, 3, 'the resetting one got its round-robin half, each retried elsewhere');
  t.equal(await metric(veer, 'veer_upstream_retries_total', { version: 'v1', reason: 'reset' }), 3);
});

t.test('perTryTimeout: a try whose head is slow is abandoned and retried on another endpoint', async (t) => {
  const stuck = await upstream(t, 'stuck', () => {}); // never answers
  const quick = await upstream(t, 'quick');
  const veer = await start(
    t,
    serviceConfig({ versions: { v1: '__URLS__' }, extra: '    resilience: { retries: { attempts: 1, on: [timeout], perTryTimeout: 200ms }, outlier: { maxEjectedPercent: 0 } }\n' }).replace(
      'upstream: __URLS__',
      `upstream: ["${stuck.url}", "${quick.url}"]`,
    ),
  );
  const started = performance.now();
  const answers = await Promise.all([get(`${veer.url}/a`), get(`${veer.url}/b`)]);
  const ms = performance.now() - started;
  t.same(
    answers.map((a) => [a.status, a.text]),
    [
      [200, 'quick'],
      [200, 'quick'],
    ],
    'both answered by the quick endpoint',
  );
  t.ok(ms < 2000, `within the per-try timeout plus a try, not the 30 s response timeout (${Math.round(ms)} ms)`);
  t.equal(await metric(veer, 'veer_upstream_retries_total', { version: 'v1', reason: 'timeout' }), 1, 'the stuck try was retried once');
});

t.test('the retry budget: an upstream that fails everything gets at most 1 + budget times its traffic', async (t) => {
  const down = await upstream(t, 'v1', (_req, res) => {
    res.statusCode = 503;
    res.end('no');
  });
  const veer = await start(t, serviceConfig({ versions: { v1: down.url }, extra: '    resilience: { retries: { attempts: 3, budget: 0.2 }, outlier: { maxEjectedPercent: 0 } }\n' }));
  for (let i = 0; i < 100; i++) t.equal((await get(`${veer.url}/x`)).status, 503, '', { diagnostic: false });
  // 100 requests; retries at most max(10, 0.2 x requests in the window) = 20 (not 300).
  t.ok(down.seen.length >= 110 && down.seen.length <= 121, `upstream saw ${down.seen.length} tries for 100 requests`);
});

t.test('outlier ejection: a failing endpoint leaves rotation, and comes back when it recovers', async (t) => {
  const good = await upstream(t, 'good');
  const badPort = await freePort();
  const veer = await start(
    t,
    serviceConfig({
      versions: { v1: '__URLS__' },
      extra: '    resilience: { failover: none, retries: { attempts: 1 }, outlier: { consecutiveErrors: 2, baseEjection: 2s, maxEjectedPercent: 50 } }\n',
    }).replace('upstream: __URLS__', `upstream: ["${good.url}", "http://127.0.0.1:${badPort}"]`),
  );
  for (let i = 0; i < 8; i++) t.equal((await get(`${veer.url}/x`)).status, 200, '', { diagnostic: false });
  t.equal(await metric(veer, 'veer_endpoint_up', { endpoint: `127.0.0.1:${badPort}` }), 0, 'the refusing endpoint is out');
  t.equal(await metric(veer, 'veer_endpoint_up', { endpoint: `127.0.0.1:${good.port}` }), 1, 'the other one stays (50% cap)');
  const service = await admin<{ endpoints: { version: string; endpoint: string; up: boolean }[] }>(veer.adminUrl, 'GET', '/api/v1/services/svc');
  t.same(
    service.body.endpoints,
    [
      { version: 'v1', endpoint: `127.0.0.1:${good.port}`, up: true },
      { version: 'v1', endpoint: `127.0.0.1:${badPort}`, up: false },
    ],
    'the admin API shows each endpoint and whether it is in rotation',
  );
  // Within the 2 s ejection (long enough for a loaded CI machine), none of these tries it.
  const retriesBefore = await metric(veer, 'veer_upstream_retries_total', { version: 'v1', reason: 'connect' });
  for (let i = 0; i < 10; i++) await get(`${veer.url}/x`);
  t.equal(await metric(veer, 'veer_upstream_retries_total', { version: 'v1', reason: 'connect' }), retriesBefore, 'no request tries it while it is out');

  // The pod comes back: after the ejection time it is in rotation again and gets its share.
  const back = await upstream(t, 'back', undefined, badPort);
  t.ok(await until(async () => (await metric(veer, 'veer_endpoint_up', { endpoint: `127.0.0.1:${badPort}` })) === 1, 8000), 'back in rotation');
  for (let i = 0; i < 6; i++) await get(`${veer.url}/x`);
  t.equal(back.seen.length, 3, 'and takes its round-robin half');
});

t.test('every endpoint ejected and no failover: 503 no_healthy_upstream at once', async (t) => {
  const badPort = await freePort();
  const veer = await start(
    t,
    serviceConfig({ versions: { v1: `http://127.0.0.1:${badPort}` }, extra: '    resilience: { failover: none, retries: { attempts: 0 }, outlier: { consecutiveErrors: 1, baseEjection: 30s } }\n' }),
  );
  t.equal((await get(`${veer.url}/x`)).status, 502, 'the first try fails to connect');
  const res = await get(`${veer.url}/x`);
  t.equal(res.status, 503);
  t.match(res.text, /no_healthy_upstream/);
});

t.test('maxInFlight: beyond it, 503 overloaded at once; the held requests finish', async (t) => {
  const held: ServerResponse[] = [];
  const slow = await upstream(t, 'v1', (_req, res) => held.push(res));
  const veer = await start(t, serviceConfig({ versions: { v1: slow.url }, extra: '    resilience: { maxInFlight: 2 }\n' }));
  const first = [get(`${veer.url}/1`), get(`${veer.url}/2`)];
  t.ok(await until(() => held.length === 2, 5000), 'two requests reach the upstream');
  const shed = await Promise.all([get(`${veer.url}/3`), get(`${veer.url}/4`), get(`${veer.url}/5`)]);
  t.same(
    shed.map((r) => r.status),
    [503, 503, 503],
    'the rest are shed without waiting',
  );
  t.match(shed[0]!.text, /overloaded/);
  t.equal(slow.seen.length, 2, 'nothing shed reached the upstream');
  t.equal(await metric(veer, 'veer_upstream_errors_total', { version: 'v1', kind: 'overload' }), 3, 'each shed request counted as an overload');
  for (const res of held) res.end('done');
  t.same(
    (await Promise.all(first)).map((r) => r.status),
    [200, 200],
  );
  // The slots are free again: the next request reaches the upstream.
  const next = get(`${veer.url}/6`);
  t.ok(await until(() => held.length === 3, 5000), 'a slot freed when a request ended');
  held[2]!.end('done');
  t.equal((await next).status, 200);
});

t.test('a dead canary under a rollout: its users never see an error, and the rollout aborts', async (t) => {
  const v1 = await upstream(t, 'v1');
  const dead = `http://127.0.0.1:${REFUSED_PORT}`;
  const veer = await start(
    t,
    serviceConfig({
      versions: { v1: v1.url, v2: dead },
      weights: { v1: 100, v2: 0 },
      extra: `    resilience: {}
    rollout: { canary: v2, steps: [{ weight: 50, pause: 1m }, { weight: 100 }], analysis: { interval: 200ms, minRequests: 5, maxErrorRate: 0.05, failureLimit: 2 } }
`,
    }),
  );
  t.equal((await admin(veer.adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201);
  const statuses = new Map<number, number>();
  let phase = '';
  const aborted = await until(async () => {
    const batch = await Promise.all(Array.from({ length: 10 }, () => get(`${veer.url}/x`)));
    for (const r of batch) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    phase = String((await admin<{ phase: string }>(veer.adminUrl, 'GET', '/api/v1/services/svc/rollout')).body.phase);
    return phase === 'aborted';
  }, 10_000);
  t.ok(aborted, `the rollout aborted (phase ${phase})`);
  t.same([...statuses.keys()], [200], `every user got 200 (${JSON.stringify(Object.fromEntries(statuses))})`);
  t.ok((await metric(veer, 'veer_failovers_total', { from: 'v2', to: 'v1' })) >= 5, "the canary's requests failed over");
});
