// /metrics of a running veer against real upstreams on 127.0.0.1.

import { request } from 'node:http';
import { writeFileSync } from 'node:fs';
import t from 'tap';
import { REFUSED_PORT, startUpstream } from '../helpers/upstreams.ts';
import { runVeer, serviceConfig } from '../helpers/veer.ts';
import { samplesOf, scrape, sumOf } from './prom-text.ts';

/** Polls `check` every 20 ms until it returns true, for at most `ms`. */
async function waitFor(check: () => Promise<boolean> | boolean, ms = 3000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

t.test('per-version counts and histogram counts equal the requests sent', async (t) => {
  const v1 = await startUpstream('v1');
  const v2 = await startUpstream('v2');
  const veer = await runVeer(serviceConfig({ versions: { v1: v1.url, v2: v2.url }, weights: { v1: 50, v2: 50 } }));
  t.teardown(async () => {
    await veer.stop();
    await v1.close();
    await v2.close();
  });

  const sent: Record<string, Record<string, number>> = { v1: {}, v2: {} };
  for (let i = 0; i < 60; i++) {
    const method = i % 3 === 0 ? 'POST' : 'GET';
    const res = await fetch(`${veer.url}/item/${i}`, { method, body: method === 'POST' ? 'x' : undefined });
    await res.arrayBuffer();
    t.equal(res.status, 200);
    const version = res.headers.get('x-veer-version')!;
    sent[version]![method] = (sent[version]![method] ?? 0) + 1;
  }
  const total = (v: string) => Object.values(sent[v]!).reduce((a, b) => a + b, 0);
  t.ok(total('v1') > 0 && total('v2') > 0, `both versions got traffic (${total('v1')}/${total('v2')})`);

  const m = await scrape(veer.adminUrl);
  t.match(m.contentType, /^text\/plain; version=0\.0\.4/, 'Prometheus text content type');
  for (const v of ['v1', 'v2']) {
    t.equal(sumOf(m, 'veer_requests_total', { service: 'svc', version: v }), total(v), `${v}: veer_requests_total = requests sent`);
    t.equal(sumOf(m, 'veer_requests_total', { service: 'svc', version: v, code: '200' }), total(v), `${v}: all 200`);
    t.equal(sumOf(m, 'veer_request_duration_seconds_count', { service: 'svc', version: v }), total(v), `${v}: histogram _count = requests`);
    t.equal(sumOf(m, 'veer_request_duration_seconds_bucket', { service: 'svc', version: v, le: '+Inf' }), total(v), `${v}: +Inf bucket = requests`);
    t.ok(sumOf(m, 'veer_request_duration_seconds_sum', { service: 'svc', version: v }) > 0);
    t.equal(veer.veer.metrics.recorder.readWindow('svc', v, 60_000)?.requests, total(v), `${v}: the analysis window saw the same requests`);
  }
  for (const v of ['v1', 'v2']) {
    for (const [method, n] of Object.entries(sent[v]!)) {
      t.equal(sumOf(m, 'veer_requests_total', { version: v, method }), n, `${v} ${method}: ${n}`);
    }
  }
  t.equal(sumOf(m, 'veer_requests_in_flight', { service: 'svc' }), 0, 'nothing in flight after the responses');
  t.equal(sumOf(m, 'veer_upstream_errors_total', { service: 'svc' }), 0, 'no upstream errors');
});

t.test('upstream failures are counted with their kind: refused -> connect, slow -> timeout', async (t) => {
  const refused = `http://127.0.0.1:${REFUSED_PORT}`;
  const timers = new Set<NodeJS.Timeout>();
  const slow = await startUpstream('slow', (_req, res) => {
    const timer = setTimeout(() => res.end('late'), 2000);
    timers.add(timer);
    res.on('close', () => clearTimeout(timer));
  });
  const veer = await runVeer(
    serviceConfig({
      versions: { v1: refused, v2: slow.url },
      weights: { v1: 100, v2: 0 },
      timeouts: '{ connect: 1s, response: 300ms }',
      extra: '    routes:\n      - match: { header: { name: x-to, value: v2 } }\n        to: v2\n',
    }),
  );
  t.teardown(async () => {
    for (const timer of timers) clearTimeout(timer);
    await veer.stop();
    await slow.close();
  });

  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${veer.url}/`);
    await res.arrayBuffer();
    t.equal(res.status, 502, 'refused upstream -> 502');
  }
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`${veer.url}/`, { headers: { 'x-to': 'v2' } });
    await res.arrayBuffer();
    t.equal(res.status, 504, 'slow upstream -> 504');
  }

  const m = await scrape(veer.adminUrl);
  t.equal(sumOf(m, 'veer_upstream_errors_total', { version: 'v1', kind: 'connect' }), 3, 'v1: 3 connect errors');
  t.equal(sumOf(m, 'veer_upstream_errors_total', { version: 'v1' }), 3, 'v1: no other kind');
  t.equal(sumOf(m, 'veer_upstream_errors_total', { version: 'v2', kind: 'timeout' }), 2, 'v2: 2 timeouts');
  t.equal(sumOf(m, 'veer_upstream_errors_total', { version: 'v2' }), 2, 'v2: no other kind');
  t.equal(sumOf(m, 'veer_requests_total', { version: 'v1', code: '502' }), 3);
  t.equal(sumOf(m, 'veer_requests_total', { version: 'v2', code: '504' }), 2);
  t.ok(sumOf(m, 'veer_request_duration_seconds_sum', { version: 'v2' }) >= 0.55, 'timeouts are timed too (2 x ~300 ms)');
  const window = veer.veer.metrics.recorder.readWindow('svc', 'v2', 60_000)!;
  t.equal(window.errors, 2, 'the analysis window counts the timeouts as errors');
});

t.test('a client abort is counted as 499; in-flight follows the exchange', async (t) => {
  let release: (() => void) | null = null;
  const held = await startUpstream('held', (_req, res) => {
    release = () => res.end('finally');
  });
  const veer = await runVeer(serviceConfig({ versions: { v1: held.url } }));
  t.teardown(async () => {
    await veer.stop();
    await held.close();
  });

  // Held request: its exchange is in flight until the client gives up.
  const req = request(`${veer.url}/hold`);
  req.on('error', () => {});
  req.end();
  t.ok(await waitFor(() => held.seen.length === 1), 'the upstream has the request');

  let m = await scrape(veer.adminUrl);
  t.equal(sumOf(m, 'veer_requests_in_flight', { version: 'v1' }), 1, 'one request in flight');

  req.destroy();
  t.ok(
    await waitFor(async () => sumOf(await scrape(veer.adminUrl), 'veer_requests_total', { version: 'v1', code: '499' }) === 1),
    'the aborted request is counted with code 499',
  );
  m = await scrape(veer.adminUrl);
  t.equal(sumOf(m, 'veer_requests_in_flight', { version: 'v1' }), 0, 'in flight back to 0');
  t.equal(sumOf(m, 'veer_request_duration_seconds_count', { version: 'v1' }), 1, 'the abort is timed');
  t.equal(sumOf(m, 'veer_upstream_errors_total', { version: 'v1' }), 0, 'a client abort is not an upstream error');
  t.equal(veer.veer.metrics.recorder.readWindow('svc', 'v1', 60_000)?.errors, 0, 'nor an error for the analysis');
  (release as (() => void) | null)?.();
});

t.test('weights and reload counters follow config reloads', async (t) => {
  const v1 = await startUpstream('v1');
  const v2 = await startUpstream('v2');
  const versions = { v1: v1.url, v2: v2.url };
  const veer = await runVeer(serviceConfig({ versions, weights: { v1: 100, v2: 0 } }));
  t.teardown(async () => {
    await veer.stop();
    await v1.close();
    await v2.close();
  });

  let m = await scrape(veer.adminUrl);
  t.equal(sumOf(m, 'veer_version_weight', { service: 'svc', version: 'v1' }), 100);
  t.equal(sumOf(m, 'veer_version_weight', { service: 'svc', version: 'v2' }), 0);
  t.equal(samplesOf(m, 'veer_config_reloads_total').length, 2, 'success and failure exported from the start');
  t.equal(sumOf(m, 'veer_config_reloads_total'), 0);

  writeFileSync(veer.configPath, serviceConfig({ versions, weights: { v1: 3, v2: 1 } }));
  t.equal(await veer.veer.reloader.reload('test'), 'success');
  m = await scrape(veer.adminUrl);
  t.equal(sumOf(m, 'veer_version_weight', { version: 'v1' }), 75, 'weights are published as percents');
  t.equal(sumOf(m, 'veer_version_weight', { version: 'v2' }), 25);
  t.equal(sumOf(m, 'veer_config_reloads_total', { result: 'success' }), 1);

  writeFileSync(veer.configPath, 'services: [\n');
  t.equal(await veer.veer.reloader.reload('test'), 'failure');
  m = await scrape(veer.adminUrl);
  t.equal(sumOf(m, 'veer_config_reloads_total', { result: 'failure' }), 1, 'a rejected reload is counted');
  t.equal(sumOf(m, 'veer_config_reloads_total', { result: 'success' }), 1);
  t.equal(sumOf(m, 'veer_version_weight', { version: 'v2' }), 25, 'the last good weights stay');

  writeFileSync(veer.configPath, serviceConfig({ versions: { v1: v1.url } }));
  t.equal(await veer.veer.reloader.reload('test'), 'success');
  m = await scrape(veer.adminUrl);
  t.equal(sumOf(m, 'veer_version_weight', { version: 'v1' }), 100);
  t.equal(samplesOf(m, 'veer_version_weight', { version: 'v2' }).length, 0, 'a removed version has no weight series');
  t.equal(sumOf(m, 'veer_config_reloads_total', { result: 'success' }), 2);
});
