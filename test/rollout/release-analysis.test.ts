// A release's analysis is a rollout's, for each member: its Prometheus
// metric checks (a real Prometheus scraping a small exporter) and its hooks
// (a real HTTP server on 127.0.0.1). A member whose metric leaves its range
// aborts the whole release; a pre-rollout hook that says no starts nothing;
// a rollout hook is called for each member before each check, and one that
// fails fails that member's check. Prometheus tests need /usr/bin/prometheus
// (Debian package `prometheus`); under CI a missing binary fails the file.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { releasePlan } from '../../src/rollout/release.ts';
import { admin, until } from '../helpers/admin.ts';
import { checkConfigText } from '../helpers/fixtures.ts';
import type { TestScope } from '../helpers/http.ts';
import { prometheusMissing, startPrometheus } from '../helpers/prometheus.ts';
import { historyLinesOf, loadMembers, releaseConfig, releaseStatusOf } from '../helpers/releases.ts';
import { weightsOf } from '../helpers/rollouts.ts';
import { freePort, listenForTest, listenOnLoopback, startUpstream, type TestUpstream } from '../helpers/upstreams.ts';
import { ROOT, runVeerIn, type RunningVeer } from '../helpers/veer.ts';

interface MetricResult {
  name: string;
  verdict: string;
  value: number | null;
  query: string;
}
interface Analysis {
  verdict: string;
  reasons: string[];
  metrics?: MetricResult[];
  hooks?: { type: string; status: number | null; ok: boolean }[];
}
interface Release {
  phase: string;
  step: number | null;
  reason: string | null;
  members: Record<string, { lastAnalysis: Analysis | null }>;
}
interface HistoryEntry {
  service: string;
  action: string;
  details?: { hooks?: { type: string; status: number | null }[] };
}
interface HookBody {
  service: string;
  canary: string;
  stable: string[];
  phase: string;
  step: { index: number; count: number; weight: number };
  metadata: Record<string, string>;
}

const missing = prometheusMissing() ?? false;

async function upstreams(t: TestScope): Promise<string[]> {
  const list: TestUpstream[] = await Promise.all(['front-v1', 'front-v2', 'cart-v4', 'cart-v5'].map((name) => startUpstream(name)));
  t.teardown(() => Promise.all(list.map((u) => u.close())));
  return list.map((u) => u.url);
}

const veer = runVeerIn;

const statusOf = (running: RunningVeer) => releaseStatusOf<Release>(running);
const historyOf = (running: RunningVeer) => historyLinesOf<HistoryEntry>(running);

t.test("a release's metric checks query a real Prometheus for each member", { skip: missing, timeout: 90_000 }, async (t) => {
  // A health gauge per service and version, as a business exporter would serve it.
  const healthy: Record<string, number> = { 'frontend/v2': 1, 'cart/v5': 1 };
  const exporter = createServer((_req, res) => {
    const lines = ['# TYPE shop_healthy gauge', ...Object.entries(healthy).map(([key, v]) => `shop_healthy{service="${key.split('/')[0]}",version="${key.split('/')[1]}"} ${v}`)];
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(`${lines.join('\n')}\n`);
  });
  const exporterPort = await listenOnLoopback(exporter);
  t.teardown(async () => {
    exporter.closeAllConnections();
    await new Promise<void>((resolve) => exporter.close(() => resolve()));
  });
  const promPort = await freePort();
  const urls = await upstreams(t);
  const running = await veer(
    t,
    releaseConfig(
      urls,
      [
        '    steps: [{ weight: 50, pause: 1m }, { weight: 100 }]',
        '    analysis:',
        '      interval: 500ms',
        '      minRequests: 3',
        '      failureLimit: 2',
        `      prometheus: { address: "http://127.0.0.1:${promPort}" }`,
        '      metrics:',
        `        - { name: healthy, query: 'max(shop_healthy{service="{{service}}", version="{{canary}}"})', min: 1 }`,
        '',
      ].join('\n'),
    ),
  );
  const prom = await startPrometheus({ business: `127.0.0.1:${exporterPort}` }, { port: promPort, scrapeMs: 100 });
  t.teardown(() => prom.stop());
  t.ok(await prom.waitForTargets(), 'Prometheus scrapes the exporter', { log: prom.output() });
  const { stop } = loadMembers(t, running);
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/start')).status, 201);

  t.ok(
    await until(async () => Object.values((await statusOf(running)).members).every((m) => m.lastAnalysis?.verdict === 'pass' && m.lastAnalysis.metrics?.length === 1), 15_000, 50),
    "every member's check passes with its metric",
  );
  const passing = await statusOf(running);
  t.match(passing.members.frontend!.lastAnalysis!.metrics![0], { name: 'healthy', verdict: 'pass', value: 1, query: 'max(shop_healthy{service="frontend", version="v2"})' }, "the frontend's query names its service and canary");
  t.match(passing.members.cart!.lastAnalysis!.metrics![0], { name: 'healthy', verdict: 'pass', value: 1, query: 'max(shop_healthy{service="cart", version="v5"})' });

  // The cart's canary still answers 200 (veer's own numbers stay clean), but its health metric drops.
  healthy['cart/v5'] = 0;
  t.ok(await until(async () => (await statusOf(running)).phase === 'aborted', 15_000, 50), 'the release is aborted');
  await stop();
  t.same(weightsOf(running, 'frontend'), { v1: 100, v2: 0 }, 'the healthy member went back too');
  t.same(weightsOf(running, 'cart'), { v4: 100, v5: 0 });
  const aborted = await statusOf(running);
  t.match(aborted.reason, /analysis failed 2 time\(s\) in a row: cart: healthy = 0 is outside \[1, \+inf\]/);
  t.notMatch(aborted.reason, /frontend/, 'only the cart failed');
  t.match(aborted.members.cart!.lastAnalysis!.metrics, [{ name: 'healthy', verdict: 'fail', value: 0 }]);
});

t.test("a release calls its hooks for each member: pre-rollout before the start, rollout before each check", async (t) => {
  const received: { path: string; body: HookBody }[] = [];
  const answers: Record<string, number> = { '/pre': 503, '/check': 200 };
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, body: JSON.parse(text) as HookBody });
      res.writeHead(answers[path] ?? 404).end(answers[path] === 200 ? 'ok' : 'not now');
    });
  });
  const hookPort = await listenForTest(t, server);
  const urls = await upstreams(t);
  const running = await veer(
    t,
    releaseConfig(
      urls,
      [
        '    steps: [{ weight: 50, pause: 1m }, { weight: 100 }]',
        '    analysis: { interval: 200ms, minRequests: 3, failureLimit: 2 }',
        '    hooks:',
        `      - { type: pre-rollout, url: "http://127.0.0.1:${hookPort}/pre" }`,
        `      - { type: rollout, url: "http://127.0.0.1:${hookPort}/check" }`,
        '',
      ].join('\n'),
    ),
  );

  // A pre-rollout hook that says no: nothing starts, nothing changes.
  const refused = await admin<{ error: { code: string; message: string } }>(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/start');
  t.equal(refused.status, 424);
  t.equal(refused.body.error.code, 'hook_failed');
  t.match(refused.body.error.message, /pre-rollout hook http:\/\/127\.0\.0\.1:\d+\/pre answered 503.*the release checkout-2\.3 did not start/);
  t.equal((await statusOf(running)).phase, 'idle');
  t.same(weightsOf(running, 'cart'), { v4: 100, v5: 0 });
  t.same(
    received.map((r) => [r.path, r.body.service, r.body.canary, r.body.phase]),
    [['/pre', 'frontend', 'v2', 'starting']],
    'the first member was asked, and its no stopped the start',
  );

  answers['/pre'] = 200;
  received.length = 0;
  const { stop } = loadMembers(t, running);
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/start')).status, 201);
  const pre = received.filter((r) => r.path === '/pre');
  t.same(pre.map((r) => [r.body.service, r.body.canary, r.body.stable]), [['frontend', 'v2', ['v1']], ['cart', 'v5', ['v4']]], 'each member was asked before the start');
  t.match(pre[0]!.body.metadata, { hook: 'pre-rollout', release: /^checkout-2\.3@/ });
  const start = (await historyOf(running)).find((e) => e.action === 'release.start')!;
  t.same(start.details?.hooks?.map((h) => [h.type, h.status]), [['pre-rollout', 200], ['pre-rollout', 200]], "the start's history line has the pre-rollout calls");

  t.ok(
    await until(async () => Object.values((await statusOf(running)).members).every((m) => m.lastAnalysis?.verdict === 'pass' && m.lastAnalysis.hooks?.length === 1), 10_000, 50),
    "every member's check passes with its rollout hook's call",
  );
  const checks = received.filter((r) => r.path === '/check');
  t.ok(checks.some((r) => r.body.service === 'frontend') && checks.some((r) => r.body.service === 'cart'), 'the rollout hook is called for each member');
  t.match(checks.find((r) => r.body.service === 'cart')!.body, { canary: 'v5', stable: ['v4'], phase: 'progressing', step: { index: 0, count: 2, weight: 50 }, metadata: { hook: 'rollout', release: /^checkout-2\.3@/ } });

  // The rollout hook says no: every member's check fails, and the release is aborted.
  answers['/check'] = 500;
  t.ok(await until(async () => (await statusOf(running)).phase === 'aborted', 10_000, 50), 'the release is aborted');
  await stop();
  t.same(weightsOf(running, 'frontend'), { v1: 100, v2: 0 });
  t.same(weightsOf(running, 'cart'), { v4: 100, v5: 0 });
  const aborted = await statusOf(running);
  t.match(aborted.reason, /analysis failed 2 time\(s\) in a row: frontend: rollout hook http:\/\/127\.0\.0\.1:\d+\/check answered 500/);
  t.match(aborted.members.cart!.lastAnalysis, { verdict: 'fail', hooks: [{ type: 'rollout', status: 500, ok: false }] });
});

t.test("the README's release example with metric checks and hooks is valid; a release takes pre-rollout and rollout hooks only", async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('- **Metric checks and hooks** work as a rollout'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section)![1]!.replace(/^ {2}/gm, '');
  const services = releaseConfig(['http://127.0.0.1:3001', 'http://127.0.0.1:3002', 'http://127.0.0.1:3003', 'http://127.0.0.1:3004'], '').replace(/releases:[\s\S]*$/, '');
  const result = checkConfigText(`${services}${block}`);
  t.ok(result.ok, result.ok ? 'valid' : JSON.stringify(result.issues));
  if (result.ok) {
    const release = result.compiled.table.config.releases![0]!;
    const plan = releasePlan(release, result.compiled.table.servicesByName.get('frontend')!);
    t.match(plan.analysis?.metrics, [{ name: 'errors', max: 1, min: null }], "the release's plan keeps its metric checks");
  }
  const gated = checkConfigText(releaseConfig(['http://127.0.0.1:3001', 'http://127.0.0.1:3002', 'http://127.0.0.1:3003', 'http://127.0.0.1:3004'], '    steps: [{ weight: 100 }]\n    hooks: [{ type: confirm-promotion, url: "http://127.0.0.1:1/" }]\n'));
  t.notOk(gated.ok, 'a confirm-promotion hook in a release is refused');
  t.match(gated.ok ? null : gated.issues, [{ path: /^releases\[0\]\.hooks\[0\]/ }]);
});
