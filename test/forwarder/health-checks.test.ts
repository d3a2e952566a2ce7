// Active health checks (`upstream: { urls, health }`) against real
// upstreams whose /healthz the test turns bad and good again: an endpoint
// that fails its checks leaves rotation after `unhealthyAfter` of them and
// comes back after `healthyAfter` passes, without a single request of
// traffic failing; with every endpoint out, the answer is 503
// no_healthy_upstream.

import { createServer, type Server } from 'node:http';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { admin, until } from '../helpers/admin.ts';
import { listenOnLoopback } from '../helpers/upstreams.ts';
import { runVeer, serviceConfig } from '../helpers/veer.ts';

/** A pod whose health the test sets; it counts its checks and its traffic. */
async function pod(t: Test, name: string) {
  const state = { healthy: true, checks: 0, traffic: 0, checkAgents: new Set<string>() };
  const server: Server = createServer((req, res) => {
    if (req.url === '/ready') {
      state.checks++;
      state.checkAgents.add(String(req.headers['user-agent']));
      res.statusCode = state.healthy ? 200 : 503;
      res.end();
      return;
    }
    state.traffic++;
    res.end(name);
  });
  const port = await listenOnLoopback(server);
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${port}`, port, state };
}

const HEALTH = '{ path: /ready, interval: 100ms, timeout: 500ms, unhealthyAfter: 2, healthyAfter: 2 }';

async function send(url: string, n: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const res = await request(url);
    const text = await res.body.text();
    const key = res.statusCode === 200 ? text : String(res.statusCode);
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return seen;
}

t.test('an endpoint failing its checks leaves rotation, and returns when they pass', async (t) => {
  const a = await pod(t, 'a');
  const b = await pod(t, 'b');
  const veer = await runVeer(serviceConfig({ versions: { v1: '__UP__' } }).replace('upstream: __UP__', `upstream: { urls: ["${a.url}", "${b.url}"], health: ${HEALTH} }`));
  t.teardown(() => veer.stop());
  t.same(Object.fromEntries(await send(`${veer.url}/`, 10)), { a: 5, b: 5 }, 'both in rotation');
  t.ok(await until(() => a.state.checks >= 2 && b.state.checks >= 2, 3000), 'checks run on an interval');
  t.same([...b.state.checkAgents], ['veer-health-check'], 'as GET /ready from veer');

  b.state.healthy = false;
  const up = async (port: number) => (await admin<string>(veer.adminUrl, 'GET', '/metrics')).body.includes(`veer_endpoint_up{service="svc",version="v1",endpoint="127.0.0.1:${port}"} 1`);
  t.ok(await until(async () => !(await up(b.port)), 3000), 'b is out after two failed checks');
  const trafficBefore = b.state.traffic;
  t.same(Object.fromEntries(await send(`${veer.url}/`, 10)), { a: 10 }, 'all traffic on a, no error');
  t.equal(b.state.traffic, trafficBefore);

  b.state.healthy = true;
  t.ok(await until(() => up(b.port), 3000), 'b is back after two passed checks');
  t.same(Object.fromEntries(await send(`${veer.url}/`, 10)), { a: 5, b: 5 });
});

t.test('every endpoint failing its checks, no resilience: 503 no_healthy_upstream', async (t) => {
  const a = await pod(t, 'a');
  const veer = await runVeer(serviceConfig({ versions: { v1: '__UP__' } }).replace('upstream: __UP__', `upstream: { urls: "${a.url}", health: ${HEALTH} }`));
  t.teardown(() => veer.stop());
  t.same(Object.fromEntries(await send(`${veer.url}/`, 2)), { a: 2 });
  a.state.healthy = false;
  t.ok(await until(async () => (await send(`${veer.url}/`, 1)).has('503'), 3000), 'answered 503 once the checks fail');
  const res = await request(`${veer.url}/`);
  t.match(await res.body.text(), /no_healthy_upstream/);
});

t.test('the long form: defaults for what it leaves out, and validated like the short one', async (t) => {
  const a = await pod(t, 'a');
  const defaults = await runVeer(serviceConfig({ versions: { v1: '__UP__' } }).replace('upstream: __UP__', `upstream: { urls: "${a.url}", health: { path: /ready } }`));
  t.teardown(() => defaults.stop());
  t.equal(a.state.checks, 0, 'no check before the version has traffic');
  t.same(Object.fromEntries(await send(`${defaults.url}/`, 1)), { a: 1 });
  t.ok(await until(() => a.state.checks >= 1, 3000), 'checks with the default interval, timeout and thresholds');

  const refused = await runVeer(serviceConfig({ versions: { v1: '__UP__' } }).replace('upstream: __UP__', 'upstream: { urls: ["ftp://x"], health: { path: nope } }')).catch((e: unknown) => e);
  t.match(refused, { issues: [{ code: 'schema', path: 'services[0].versions[0].upstream.health.path' }] });
  const badUrl = await runVeer(serviceConfig({ versions: { v1: '__UP__' } }).replace('upstream: __UP__', 'upstream: { urls: ["http://127.0.0.1:1", "ftp://x"] }')).catch((e: unknown) => e);
  t.match(badUrl, { issues: [{ code: 'invalid_upstream', path: 'services[0].versions[0].upstream.urls[1]' }] });
});
