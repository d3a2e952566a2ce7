// Metric checks against a real Prometheus that scrapes veer and a small
// exporter of business counters (visits and orders per version, counted by
// the upstreams as they answer). A canary that keeps answering 200 but
// stops converting is aborted by the conversion check alone; a query with
// no data is inconclusive and never promotes. Needs /usr/bin/prometheus
// (Debian package `prometheus`); under CI a missing binary fails the file.

import { createServer } from 'node:http';
import t from 'tap';
import { admin, startLoad, until } from '../helpers/admin.ts';
import { runCli } from '../helpers/cli.ts';
import type { TestScope } from '../helpers/http.ts';
import { prometheusMissing, startPrometheus, type TestPrometheus } from '../helpers/prometheus.ts';
import { freePort, listenOnLoopback, startUpstream, type TestUpstream } from '../helpers/upstreams.ts';
import { runVeer } from '../helpers/veer.ts';

interface MetricResult {
  name: string;
  verdict: string;
  value: number | null;
  query: string;
  reason: string;
}
interface Analysis {
  verdict: string;
  at: string;
  reasons: string[];
  metrics?: MetricResult[];
}
interface Rollout {
  phase: string;
  pausedBy: string | null;
  step: number;
  reason: string;
  lastAnalysis: Analysis | null;
  consecutiveInconclusive: number;
}
interface HistoryEntry {
  action: string;
  details?: { analysis?: Analysis };
}

const missing = prometheusMissing() ?? false;

/** Orders per visit while the canary is healthy: every 10th visit orders. */
const HEALTHY_EVERY = 10;

/** Business counters the upstreams keep, served in the Prometheus text format by a small exporter. */
async function businessExporter(t: TestScope) {
  const visits: Record<string, number> = { v1: 0, v2: 0 };
  const orders: Record<string, number> = { v1: 0, v2: 0 };
  const canary = { converts: true };
  const shop = (version: string) => async () =>
    startUpstream(version, (_req, res) => {
      visits[version]!++;
      if ((version !== 'v2' || canary.converts) && visits[version]! % HEALTHY_EVERY === 0) orders[version]!++;
      res.end(`${version} ok`);
    });
  const v1 = await shop('v1')();
  const v2 = await shop('v2')();
  const exporter = createServer((_req, res) => {
    const lines = ['# TYPE shop_visits_total counter', ...Object.entries(visits).map(([v, n]) => `shop_visits_total{version="${v}"} ${n}`)];
    lines.push('# TYPE shop_orders_total counter', ...Object.entries(orders).map(([v, n]) => `shop_orders_total{version="${v}"} ${n}`));
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(`${lines.join('\n')}\n`);
  });
  const exporterPort = await listenOnLoopback(exporter);
  t.teardown(async () => {
    exporter.closeAllConnections();
    await new Promise<void>((resolve) => exporter.close(() => resolve()));
    await v1.close();
    await v2.close();
  });
  return { v1, v2, canary, exporterPort };
}

function configFor(v1: TestUpstream, v2: TestUpstream, adminPort: number, rollout: string): string {
  return [
    'listen: 127.0.0.1:0',
    `admin: { listen: 127.0.0.1:${adminPort} }`,
    'log: { level: silent }',
    'drainTimeout: 2s',
    'services:',
    '  - name: shop',
    '    versions:',
    `      - { name: v1, upstream: "${v1.url}" }`,
    `      - { name: v2, upstream: "${v2.url}" }`,
    '    split: { weights: { v1: 100, v2: 0 } }',
    '    rollout:',
    ...rollout.split('\n').map((l) => `      ${l}`),
    '',
  ].join('\n');
}

const CONVERSION = 'sum(rate(shop_orders_total{version="{{canary}}"}[{{interval}}])) / sum(rate(shop_visits_total{version="{{canary}}"}[{{interval}}]))';
const CANARY_5XX =
  '(sum(rate(veer_requests_total{service="{{service}}", version="{{canary}}", code=~"5.."}[{{interval}}])) or vector(0)) / sum(rate(veer_requests_total{service="{{service}}", version="{{canary}}"}[{{interval}}]))';

t.test('metric checks from a real Prometheus', { skip: missing, timeout: 90_000 }, async (t) => {
  const { v1, v2, canary, exporterPort } = await businessExporter(t);
  const promPort = await freePort();
  const adminPort = await freePort();
  const intervalMs = 1000;
  const bad = await runVeer(
    configFor(
      v1,
      v2,
      adminPort,
      [
        'canary: v2',
        'steps: [{ weight: 50, pause: 1m }, { weight: 100 }]',
        'analysis:',
        `  interval: ${intervalMs}ms`,
        '  minRequests: 10',
        '  maxErrorRate: 0.05',
        '  failureLimit: 2',
        `  prometheus: { address: "http://127.0.0.1:${promPort}" }`,
        '  metrics:',
        `    - { name: conversion, query: '${CONVERSION}', min: 0.05 }`,
        `    - { name: canary-5xx, query: '${CANARY_5XX}', max: 0.05 }`,
      ].join('\n'),
    ),
  );
  t.teardown(() => bad.stop());
  // Teardowns run last-registered first: Prometheus stops before veer and the upstreams.
  const prom: TestPrometheus = await startPrometheus({ veer: `127.0.0.1:${adminPort}`, business: `127.0.0.1:${exporterPort}` }, { port: promPort, scrapeMs: 200 });
  t.teardown(() => prom.stop());
  t.ok(await prom.waitForTargets(), 'Prometheus scrapes veer and the exporter', { log: prom.output() });

  t.test('a canary whose conversion drops is aborted; the status names the metric and its value', async (t) => {
    const load = startLoad(bad.url, 6);
    t.teardown(() => load.stop());
    t.equal((await admin(bad.adminUrl, 'POST', '/api/v1/services/shop/rollout')).status, 201);
    const rolloutOf = async () => (await admin<Rollout>(bad.adminUrl, 'GET', '/api/v1/services/shop/rollout')).body;
    // Healthy: both metric checks pass with their values, beside veer's own numbers.
    t.ok(
      await until(async () => {
        const a = (await rolloutOf()).lastAnalysis;
        return a?.verdict === 'pass' && a.metrics?.length === 2;
      }, 15_000, 50),
      'the healthy canary passes its metric checks',
    );
    const healthy = (await rolloutOf()).lastAnalysis!;
    const conversion = healthy.metrics!.find((m) => m.name === 'conversion')!;
    t.ok(Math.abs(conversion.value! - 1 / HEALTHY_EVERY) < 0.03, `conversion while healthy: ${conversion.value} ~ ${1 / HEALTHY_EVERY}`);
    t.match(conversion.query, 'shop_orders_total{version="v2"}[1s]', 'placeholders filled: canary and interval');
    t.match(healthy.metrics!.find((m) => m.name === 'canary-5xx'), { verdict: 'pass', value: 0 });
    t.match(healthy.metrics!.find((m) => m.name === 'canary-5xx')!.query, 'service="shop", version="v2"');

    // The canary keeps answering 200 (veer's own numbers stay clean) but nobody orders any more.
    canary.converts = false;
    const wentBad = performance.now();
    t.ok(await until(() => bad.veer.state.table.servicesByName.get('shop')!.split.weights.v2 === 0, 8 * intervalMs, 10), 'aborted: everything back on v1');
    const abortMs = Math.round(performance.now() - wentBad);
    const intervals = Math.round((abortMs / intervalMs) * 10) / 10;
    t.comment(`conversion went to 0 -> abort in ${abortMs} ms = ${intervals} analysis intervals (interval ${intervalMs} ms, failureLimit 2, scrape every 200 ms, rate over [{{interval}}])`);
    t.ok(abortMs <= 4 * intervalMs, `aborted within four intervals: ${intervals}`);
    await load.stop();

    const rollout = await rolloutOf();
    t.equal(rollout.phase, 'aborted');
    t.match(rollout.reason, /aborted: analysis failed 2 checks in a row: conversion = [0-9.e-]+ is outside \[0\.05, \+inf\]/);
    const failed = rollout.lastAnalysis!.metrics!.find((m) => m.name === 'conversion')!;
    t.equal(failed.verdict, 'fail');
    t.ok(failed.value !== null && failed.value < 0.05, `the value that failed it: ${failed.value}`);
    t.ok(rollout.lastAnalysis!.reasons.every((r) => !/error ratio/.test(r)), "veer's own numbers did not fail it: the business metric did");
    const history = (await admin<{ history: HistoryEntry[] }>(bad.adminUrl, 'GET', '/api/v1/history')).body.history;
    const abortLine = history.findLast((h) => h.action === 'rollout.abort')!;
    t.match(abortLine.details?.analysis?.metrics?.find((m) => m.name === 'conversion'), { verdict: 'fail', value: failed.value }, 'the history names the metric and its value');
    const cli = await runCli(['rollout', 'status', 'shop'], { VEER_ADMIN_URL: bad.adminUrl });
    t.equal(cli.code, 0, cli.stderr);
    t.match(cli.stdout, /metric conversion = [0-9.e-]+: FAIL/, 'veer rollout status names the metric and its value');
    t.match(cli.stdout, /metrics conversion in \[0\.05, \+inf\], canary-5xx in \[-inf, 0\.05\]/);
  });

  t.test('a query with no data is inconclusive and never promotes', async (t) => {
    const noData = await runVeer(
      configFor(
        v1,
        v2,
        0,
        [
          'canary: v2',
          'steps: [{ weight: 50, pause: 300ms }, { weight: 100 }]',
          'analysis:',
          '  interval: 300ms',
          '  minRequests: 5',
          `  prometheus: { address: "${prom.url}" }`,
          '  metrics:',
          '    - { name: refunds, query: \'sum(rate(shop_refunds_total{version="{{canary}}"}[{{interval}}]))\', max: 5 }',
        ].join('\n'),
      ),
    );
    t.teardown(() => noData.stop());
    const load = startLoad(noData.url, 4);
    t.teardown(() => load.stop());
    t.equal((await admin(noData.adminUrl, 'POST', '/api/v1/services/shop/rollout')).status, 201);
    const seen = new Set<string>();
    const rolloutOf = async () => {
      const r = (await admin<Rollout>(noData.adminUrl, 'GET', '/api/v1/services/shop/rollout')).body;
      seen.add(r.phase);
      return r;
    };
    // 10 inconclusive checks in a row pause it for a person; it never moves on meanwhile.
    t.ok(await until(async () => (await rolloutOf()).phase === 'paused', 10_000, 50), 'paused by the analysis after inconclusive checks');
    await load.stop();
    t.notOk(seen.has('promoted'), 'never promoted');
    const rollout = await rolloutOf();
    t.match(rollout, { pausedBy: 'analysis', step: 0, reason: /10 inconclusive checks in a row \(refunds: no data: the query answered an empty vector \(query: sum\(rate\(shop_refunds_total\{version="v2"\}\[300ms\]\)\)\)\)/ });
    t.match(rollout.lastAnalysis!.metrics, [{ name: 'refunds', verdict: 'inconclusive', value: null, query: 'sum(rate(shop_refunds_total{version="v2"}[300ms]))' }]);
    t.same(noData.veer.state.table.servicesByName.get('shop')!.split.weights, { v1: 50, v2: 50 }, 'the step did not move on without evidence');
    const cli = await runCli(['rollout', 'status', 'shop'], { VEER_ADMIN_URL: noData.adminUrl });
    t.match(cli.stdout, /metric refunds = n\/a: INCONCLUSIVE \(query: sum\(rate\(shop_refunds_total\{version="v2"\}\[300ms\]\)\)\)/, 'the status shows the query of an inconclusive check');
  });
});

