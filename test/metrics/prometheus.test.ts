// End to end with a real Prometheus: it scrapes a running veer's /metrics
// while known traffic goes to two versions (one failing 20%), and its query
// API must see what was sent. The PromQL and alert rules of README.md
// run against it too. Needs /usr/bin/prometheus (Debian package `prometheus`).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { missingBinary } from '../helpers/system-packages.ts';
import { freePort, startUpstream } from '../helpers/upstreams.ts';
import { ROOT, runVeer } from '../helpers/veer.ts';

/** The Prometheus binary (VEER_TEST_PROMETHEUS overrides, e.g. for a downloaded release). */
const PROMETHEUS = process.env.VEER_TEST_PROMETHEUS ?? '/usr/bin/prometheus';
const TRAFFIC_MS = 7000;

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const missing = missingBinary(PROMETHEUS, 'prometheus') ?? false;

t.test('Prometheus scraping veer sees the per-version traffic that was sent', { skip: missing, timeout: 60_000 }, async (t) => {
  // --- the system: two upstreams, veer, Prometheus scraping veer every second ---
  let canaryCalls = 0;
  const v1 = await startUpstream('v1');
  t.teardown(() => v1.close());
  const v2 = await startUpstream('v2', (_req, res) => {
    canaryCalls += 1;
    // Every fifth request fails: exactly 20% 500s.
    res.writeHead(canaryCalls % 5 === 0 ? 500 : 200, { 'content-type': 'text/plain' });
    res.end('v2');
  });
  t.teardown(() => v2.close());
  const veer = await runVeer(
    [
      'listen: 127.0.0.1:0',
      'admin: { listen: 127.0.0.1:0 }',
      'log: { level: silent }',
      'drainTimeout: 2s',
      'services:',
      '  - name: shop',
      '    versions:',
      `      - { name: v1, upstream: "${v1.url}" }`,
      `      - { name: v2, upstream: "${v2.url}" }`,
      '    split: { weights: { v1: 50, v2: 50 } }',
      '',
    ].join('\n'),
  );
  t.teardown(() => veer.stop());
  const dir = mkdtempSync(join(tmpdir(), 'veer-prometheus-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'rules.yml'), alertRulesFromDocs());
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s }',
      `rule_files: [${JSON.stringify(join(dir, 'rules.yml'))}]`,
      'scrape_configs:',
      '  - job_name: veer',
      `    static_configs: [{ targets: ["127.0.0.1:${veer.veer.adminAddress.port}"] }]`,
      '',
    ].join('\n'),
  );
  const promPort = await freePort();
  const prom = spawn(
    PROMETHEUS,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  // Teardowns run last-registered first: Prometheus stops before veer and the upstreams.
  t.teardown(() => stopProcess(prom));
  let promLog = '';
  prom.stdout!.on('data', (c: Buffer) => (promLog += c.toString()));
  prom.stderr!.on('data', (c: Buffer) => (promLog += c.toString()));
  const api = `http://127.0.0.1:${promPort}`;

  const query = async (promql: string, time?: number): Promise<Sample[]> => {
    const params = new URLSearchParams({ query: promql });
    if (time !== undefined) params.set('time', String(time / 1000));
    const res = await fetch(`${api}/api/v1/query?${params}`);
    const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: Sample[] } };
    if (body.status !== 'success') throw new Error(`query failed (${body.error}): ${promql}`);
    return body.data!.result;
  };
  const byVersion = (samples: Sample[]) => Object.fromEntries(samples.map((s) => [s.metric.version ?? '', Number(s.value[1])]));

  // Prometheus is up and has scraped veer once.
  let up = false;
  for (let i = 0; i < 100 && !up; i++) {
    await sleep(100);
    if (prom.exitCode !== null) break;
    try {
      up = (await query('up{job="veer"}')).some((s) => s.value[1] === '1');
    } catch {
      // not listening yet
    }
  }
  t.ok(up, 'Prometheus started and scrapes veer', { log: promLog });
  if (!up) return;

  // --- known traffic for ~7 s: two sequential keep-alive clients (fetch), split 50/50 ---
  const sent: { at: number; version: string; status: number }[] = [];
  const started = Date.now();
  const worker = async () => {
    while (Date.now() - started < TRAFFIC_MS) {
      const res = await fetch(`${veer.url}/p`);
      await res.arrayBuffer();
      sent.push({ at: Date.now(), version: res.headers.get('x-veer-version') ?? '?', status: res.status });
      await sleep(5);
    }
  };
  await Promise.all([worker(), worker()]);
  const ended = Date.now();
  const count = (v: string, from = 0, errorsOnly = false) => sent.filter((s) => s.version === v && s.at > from && (!errorsOnly || s.status >= 500)).length;
  t.ok(count('v1') > 50 && count('v2') > 50, `traffic reached both versions (v1 ${count('v1')}, v2 ${count('v2')})`);
  t.equal(count('v2', 0, true), Math.floor(count('v2') / 5), 'the canary failed exactly every fifth request');

  // --- totals: once the last scrape after the traffic has landed, exactly what was sent ---
  let totals: Record<string, number> = {};
  for (let i = 0; i < 40; i++) {
    totals = byVersion(await query('sum by (version) (veer_requests_total{service="shop"})'));
    if (totals.v1 === count('v1') && totals.v2 === count('v2')) break;
    await sleep(200);
  }
  t.equal(totals.v1, count('v1'), 'Prometheus: v1 requests = sent');
  t.equal(totals.v2, count('v2'), 'Prometheus: v2 requests = sent');
  const histogramCounts = byVersion(await query('sum by (version) (veer_request_duration_seconds_count{service="shop"})'));
  t.same(histogramCounts, { v1: count('v1'), v2: count('v2') }, 'Prometheus: histogram _count = sent');
  const errors5xx = byVersion(await query('sum by (version) (veer_requests_total{service="shop", code="500"})'));
  t.equal(errors5xx.v2, count('v2', 0, true), 'Prometheus: v2 500s = sent');

  // --- rates and error ratio over the last 5 s of traffic, against the client's own numbers ---
  const windowMs = 5000;
  const rates = byVersion(await query('sum by (version) (rate(veer_requests_total{service="shop"}[5s]))', ended));
  for (const v of ['v1', 'v2']) {
    const expected = count(v, ended - windowMs) / (windowMs / 1000);
    const got = rates[v] ?? 0;
    t.ok(Math.abs(got - expected) <= expected * 0.25, `${v}: request rate ${got.toFixed(1)}/s ~ sent ${expected.toFixed(1)}/s (±25%)`);
  }
  const ratio = byVersion(
    await query(
      '(sum by (version) (rate(veer_requests_total{service="shop", code=~"5.."}[6s])) or sum by (version) (rate(veer_requests_total{service="shop"}[6s])) * 0)' +
        ' / sum by (version) (rate(veer_requests_total{service="shop"}[6s]))',
      ended,
    ),
  );
  t.ok(Math.abs((ratio.v2 ?? -1) - 0.2) <= 0.05, `v2 error ratio ${ratio.v2?.toFixed(3)} ~ 0.2 (±0.05)`);
  t.equal(ratio.v1, 0, 'v1 error ratio 0');
  const weights = byVersion(await query('veer_version_weight{service="shop"}'));
  t.same(weights, { v1: 50, v2: 50 }, 'weights as configured');

  // --- the documented PromQL runs and answers ---
  for (const promql of promqlFromDocs()) {
    const result = await query(promql, ended);
    t.ok(result.length > 0, `docs query answers: ${promql.replace(/\s+/g, ' ').slice(0, 90)}...`);
  }
  const canaryVsStable = promqlFromDocs().find((q) => q.includes('version="v2", code=~"5.."') && !q.includes('histogram_quantile'))!;
  const diff = Number((await query(canaryVsStable, ended))[0]?.value[1]);
  t.ok(Math.abs(diff - 0.2) <= 0.05, `docs "canary error ratio vs stable" = ${diff.toFixed(3)} ~ 0.2 - 0`);
  const p99Ratio = promqlFromDocs().find((q) => q.includes('histogram_quantile(0.99, sum by (le)'))!;
  t.ok(Number.isFinite(Number((await query(p99Ratio, ended))[0]?.value[1])), 'docs "canary p99 vs stable" is a number');

  // --- every query of the Grafana dashboard is valid PromQL that answers (variables filled in) ---
  for (const { title, expr } of dashboardQueries()) {
    const promql = expr.replaceAll('$service', 'shop').replaceAll('$__rate_interval', '5s').replaceAll('$__range', '1m');
    const result = await query(promql, ended);
    if (title === 'Rollout phase') t.same(result, [], `dashboard "${title}": valid, empty until a rollout runs`);
    else t.ok(result.length > 0, `dashboard "${title}": answers`);
  }

  // --- the documented alert rules load, evaluate, and the canary alert is triggered by this traffic ---
  let alerts: { name: string; health: string; state: string; lastError?: string }[] = [];
  for (let i = 0; i < 30; i++) {
    const res = (await (await fetch(`${api}/api/v1/rules`)).json()) as { data: { groups: { rules: typeof alerts }[] } };
    alerts = res.data.groups.flatMap((g) => g.rules);
    if (alerts.length > 0 && alerts.every((a) => a.health === 'ok') && alerts.some((a) => a.state !== 'inactive')) break;
    await sleep(200);
  }
  t.same(alerts.map((a) => a.name).sort(), ['VeerCanaryErrorRatioAboveStable', 'VeerCanaryP99AboveStable', 'VeerConfigReloadFailed']);
  for (const a of alerts) t.equal(a.health, 'ok', `rule ${a.name} evaluates${a.lastError ? `: ${a.lastError}` : ''}`);
  t.match(alerts.find((a) => a.name === 'VeerCanaryErrorRatioAboveStable')?.state, /^(pending|firing)$/, 'the canary error alert is triggered (pending its `for`)');
  t.equal(alerts.find((a) => a.name === 'VeerConfigReloadFailed')?.state, 'inactive', 'no reload failed');
});

/** The ```promql blocks of README.md. */
function promqlFromDocs(): string[] {
  const doc = readFileSync(join(ROOT, 'README.md'), 'utf8');
  return [...doc.matchAll(/```promql\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());
}

/** Panel titles and PromQL of deploy/grafana/veer.json. */
function dashboardQueries(): { title: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana', 'veer.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
  return dashboard.panels.flatMap((p) => p.targets.map((x) => ({ title: p.title, expr: x.expr })));
}

/** The alert rules block (```yaml starting with `groups:`) of README.md. */
function alertRulesFromDocs(): string {
  const doc = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.startsWith('groups:'));
  if (block === undefined) throw new Error('README.md has no alert rules block');
  return block;
}

/** SIGTERM, then SIGKILL after 5 s; resolves when the process has exited. */
async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
