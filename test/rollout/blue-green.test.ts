// Blue-green rollouts (strategy: blueGreen) against real upstreams: the
// preview rule reaches the new version while everyone else stays on the old
// one, the analysis runs on the preview traffic, promote (or autoPromote)
// switches 100% in one change, abort takes the preview users back too; and
// every bad blue-green section refused with its path and code.

import { createServer } from 'node:http';
import t from 'tap';
import { request } from 'undici';
import { admin, until } from '../helpers/admin.ts';
import { checkConfigText } from '../helpers/fixtures.ts';
import type { TestScope } from '../helpers/http.ts';
import { historyOf as readHistory, rolloutOf as readRollout, weightsOf } from '../helpers/rollouts.ts';
import { listenForTest, startTwoUpstreams } from '../helpers/upstreams.ts';
import { runVeerIn, serveInChild, serviceConfig, startVeerOn, writeConfig, type RunningVeer } from '../helpers/veer.ts';

interface Rollout {
  phase: string;
  strategy?: string;
  canaryWeight: number;
  reason: string;
  lastAnalysis: { verdict: string; canary: { requests: number } } | null;
}

interface HistoryEntry {
  action: string;
  actor: string;
  reason: string;
  after: Record<string, number>;
}

const rolloutOf = (running: RunningVeer) => readRollout<Rollout>(running);
const historyOf = (running: RunningVeer) => readHistory<HistoryEntry>(running);

function blueGreenConfig(v1: string, v2: string, extra = ''): string {
  return serviceConfig({
    versions: { v1, v2 },
    weights: { v1: 100, v2: 0 },
    extra: `    rollout:
      strategy: blueGreen
      canary: v2
      preview: { header: { name: x-preview, value: "1" } }
      analysis: { interval: 150ms, minRequests: 5, maxErrorRate: 0.05, failureLimit: 2 }
${extra}`,
  });
}

/** The versions that answered `count` requests, with or without the preview header. */
async function versionsSeen(running: RunningVeer, count: number, preview: boolean): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const res = await request(`${running.url}/x`, { headers: preview ? { 'x-preview': '1' } : {} });
    await res.body.text();
    const key = `${String(res.headers['x-veer-version'])} ${res.statusCode}`;
    seen[key] = (seen[key] ?? 0) + 1;
  }
  return seen;
}

/** Preview requests in a loop until stopped (bounded), counted by version and status. */
function previewLoad(running: RunningVeer): { stop(): Promise<void>; counts: Record<string, number> } {
  let on = true;
  const counts: Record<string, number> = {};
  const loop = async () => {
    for (let i = 0; on && i < 50_000; i++) {
      const res = await request(`${running.url}/p`, { headers: { 'x-preview': '1' } });
      await res.body.text();
      const key = `${String(res.headers['x-veer-version'])} ${res.statusCode}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
  };
  const loops = [loop(), loop(), loop()];
  return {
    counts,
    stop: async () => {
      on = false;
      await Promise.all(loops);
    },
  };
}

async function failingV2(t: TestScope): Promise<string> {
  const server = createServer((_req, res) => {
    res.statusCode = 500;
    res.end('v2 broken');
  });
  return `http://127.0.0.1:${await listenForTest(t, server)}`;
}

t.test('bad blue-green sections: refused with the path and code', async (t) => {
  const issuesOf = (rollout: string) => {
    const r = checkConfigText(`services:
  - name: shop
    versions:
      - { name: v1, upstream: "http://127.0.0.1:3001" }
      - { name: v2, upstream: "http://127.0.0.1:3002" }
    rollout:
${rollout.replace(/^/gm, '      ')}
`);
    return r.ok ? [] : r.issues.map((i) => `${i.path} ${i.code}: ${i.message}`);
  };
  t.same(issuesOf('strategy: blueGreen\ncanary: v2\npreview: { cookie: { name: beta, present: true } }\nautoPromote: true\nrollbackWindow: 30m'), [], 'a complete section is valid');
  const cases: [string, RegExp][] = [
    ['strategy: blueGreen\ncanary: v2', /^services\[0\]\.rollout\.preview invalid_rollout: a blueGreen rollout needs a preview rule/],
    ['strategy: blueGreen\ncanary: v2\npreview: { header: { name: x-p, value: "1" }, cookie: { name: p, value: "1" } }', /^services\[0\]\.rollout\.preview invalid_rollout: takes one of header, cookie or query, not header and cookie/],
    ['strategy: blueGreen\ncanary: v2\npreview: {}', /^services\[0\]\.rollout\.preview invalid_rollout: needs one of header, cookie or query/],
    ['strategy: blueGreen\ncanary: v2\npreview: { query: { name: p } }', /^services\[0\]\.rollout\.preview\.query invalid_matcher: needs one of value, regex or present/],
    ['strategy: blueGreen\ncanary: v2\npreview: { header: { name: x-p, regex: "(a" } }', /^services\[0\]\.rollout\.preview\.header\.regex invalid_regex/],
    ['strategy: blueGreen\ncanary: v2\npreview: { header: { name: x-p, value: "1" } }\nsteps: [{ weight: 10 }]', /^services\[0\]\.rollout\.steps invalid_rollout: a blueGreen rollout has no steps/],
    ['canary: v2', /^services\[0\]\.rollout\.steps invalid_rollout: a canary rollout needs steps/],
    ['canary: v2\nsteps: [{ weight: 10 }]\npreview: { header: { name: x-p, value: "1" } }', /^services\[0\]\.rollout\.preview invalid_rollout: preview belongs to strategy: blueGreen/],
    ['canary: v2\nsteps: [{ weight: 10 }]\nautoPromote: true', /^services\[0\]\.rollout\.autoPromote invalid_rollout/],
    ['strategy: blueGreen\ncanary: v3\npreview: { header: { name: x-p, value: "1" } }', /^services\[0\]\.rollout\.canary unknown_version/],
    ['strategy: redBlack\ncanary: v2\npreview: { header: { name: x-p, value: "1" } }', /^services\[0\]\.rollout\.strategy /],
    ['canary: v2\nsteps: [{ weight: 10 }]\nrollbackWindow: 30d', /^services\[0\]\.rollout\.rollbackWindow /],
  ];
  for (const [section, want] of cases) {
    const issues = issuesOf(section);
    t.ok(issues.some((i) => want.test(i)), `${section.replace(/\n/g, ' | ')} -> ${want}; got ${issues.join(' || ')}`);
  }
});

t.test('preview users reach v2 while everyone else stays on v1; abort takes them back at once', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const running = await runVeerIn(t, blueGreenConfig(v1.url, v2.url));
  t.same(await versionsSeen(running, 5, true), { 'v1 200': 5 }, 'before the start the preview header means nothing');

  const start = await admin<Rollout>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout');
  t.equal(start.status, 201);
  t.match(start.body, { phase: 'progressing', strategy: 'blueGreen', canaryWeight: 0 });
  t.match(start.body.reason, /requests with header x-preview = "1" reach v2; everyone else stays on v1/);
  t.same(weightsOf(running), { v1: 100, v2: 0 }, 'no split traffic moves');
  t.same(await versionsSeen(running, 20, true), { 'v2 200': 20 }, 'every preview request reaches v2');
  t.same(await versionsSeen(running, 40, false), { 'v1 200': 40 }, 'every other request stays on v1');
  const explained = await admin<{ version: string; reason: string }>(running.adminUrl, 'POST', '/api/v1/services/svc/explain', { body: { headers: { 'x-preview': '1' } } });
  t.equal(explained.body.version, 'v2');
  t.match(explained.body.reason, /preview/);

  const aborted = await admin<Rollout>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout/abort');
  t.equal(aborted.status, 200);
  t.equal(aborted.body.phase, 'aborted');
  t.same(await versionsSeen(running, 20, true), { 'v1 200': 20 }, 'preview users are back on v1 too');
  t.same(weightsOf(running), { v1: 100, v2: 0 });
  t.equal(v1.seen.length + v2.seen.length, 5 + 20 + 40 + 20, 'every request reached an upstream');
  const last = (await historyOf(running)).at(-1)!;
  t.match(last, { action: 'rollout.abort', after: { v1: 100, v2: 0 } });
});

t.test('promote switches 100% in one change and closes the preview; the analysis reads the preview traffic', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const running = await runVeerIn(t, blueGreenConfig(v1.url, v2.url));
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201);
  const load = previewLoad(running);
  t.teardown(() => load.stop());
  t.ok(await until(async () => (await rolloutOf(running)).lastAnalysis?.verdict === 'pass', 5000), 'the preview traffic passes its checks');
  await load.stop();
  t.notOk(Object.keys(load.counts).some((k) => !k.startsWith('v2 ')), `preview traffic only on v2: ${JSON.stringify(load.counts)}`);
  const analysed = (await rolloutOf(running)).lastAnalysis!;
  t.ok(analysed.canary.requests >= 5, 'the check counted the preview requests as the canary');
  t.equal((await rolloutOf(running)).phase, 'progressing', 'without autoPromote a passing check does not switch');

  const promoted = await admin<Rollout>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout/promote');
  t.equal(promoted.body.phase, 'promoted');
  t.same(weightsOf(running), { v1: 0, v2: 100 });
  t.same(await versionsSeen(running, 20, false), { 'v2 200': 20 }, 'everyone is on v2');
  t.equal(running.veer.state.table.servicesByName.get('svc')!.rules.length, 0, 'the preview rule is gone');
  const changes = (await historyOf(running)).filter((e) => e.action !== 'rollout.hook');
  t.same(
    changes.map((e) => [e.action, e.after]),
    [
      ['rollout.start', { v1: 100, v2: 0 }],
      ['rollout.promote', { v1: 0, v2: 100 }],
    ],
    'one change starts it, one switches',
  );
});

t.test('autoPromote: promoted on the first passing check, never without preview traffic', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const running = await runVeerIn(t, blueGreenConfig(v1.url, v2.url, '      autoPromote: true\n'));
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201);
  await new Promise((r) => setTimeout(r, 700));
  const idle = await rolloutOf(running);
  t.equal(idle.phase, 'progressing', 'no preview traffic: inconclusive checks, no switch');
  t.equal(idle.lastAnalysis?.verdict, 'inconclusive');
  const load = previewLoad(running);
  t.teardown(() => load.stop());
  t.ok(await until(async () => (await rolloutOf(running)).phase === 'promoted', 5000), 'promoted once the preview traffic passed');
  await load.stop();
  t.same(weightsOf(running), { v1: 0, v2: 100 });
  const last = (await historyOf(running)).filter((e) => e.action === 'rollout.promote').at(-1)!;
  t.equal(last.actor, 'rollout');
  t.match(last.reason, /autoPromote: the analysis passed \(\d+ preview requests to v2\)/);
});

t.test('a failing new version behind the preview is aborted by its analysis; the preview closes', async (t) => {
  const [v1] = await startTwoUpstreams(t);
  const bad = await failingV2(t);
  const running = await runVeerIn(t, blueGreenConfig(v1.url, bad, '      autoPromote: true\n'));
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201);
  const load = previewLoad(running);
  t.teardown(() => load.stop());
  t.ok(await until(async () => (await rolloutOf(running)).phase === 'aborted', 5000), 'aborted');
  await load.stop();
  const rollout = await rolloutOf(running);
  t.match(rollout.reason, /analysis failed 2 checks in a row: canary error ratio/);
  t.same(weightsOf(running), { v1: 100, v2: 0 });
  t.same(await versionsSeen(running, 10, true), { 'v1 200': 10 }, 'preview users are served by v1 again');
  t.same(await versionsSeen(running, 10, false), { 'v1 200': 10 });
});

t.test('a blue-green start refuses steps in the body; the plan is one switch', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const running = await runVeerIn(t, blueGreenConfig(v1.url, v2.url));
  const res = await admin<{ error: { code: string; message: string } }>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout', { body: { steps: [{ weight: 50 }] } });
  t.equal(res.status, 400);
  t.equal(res.body.error.code, 'invalid_rollout');
  t.match(res.body.error.message, /blue-green/);
  t.equal((await admin<{ rollout: unknown }>(running.adminUrl, 'GET', '/api/v1/services/svc/rollout')).status, 404, 'nothing started');
  t.same(weightsOf(running), { v1: 100, v2: 0 });
});

t.test('the preview survives a restart (it is stored with the weights) and cannot be set through the weights API', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const running = await runVeerIn(t, blueGreenConfig(v1.url, v2.url));
  const refused = await admin<{ error: { code: string } }>(running.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights: { v1: 100, '@preview:v2': 1 } } });
  t.equal(refused.status, 400);
  t.equal(refused.body.error.code, 'unknown_version', 'the preview entry is no weight an operator can set');
  t.same(await versionsSeen(running, 5, true), { 'v1 200': 5 }, 'nothing opened');

  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201);
  await running.stop();
  const again = await startVeerOn(running.configPath);
  t.teardown(() => again.stop());
  const restarted = { ...running, veer: again, url: `http://127.0.0.1:${again.dataAddress.port}`, adminUrl: `http://127.0.0.1:${again.adminAddress.port}` };
  t.match(await rolloutOf(restarted), { phase: 'progressing', strategy: 'blueGreen' });
  t.same(weightsOf(restarted), { v1: 100, v2: 0 }, 'the weights shown hold versions only');
  t.same(await versionsSeen(restarted, 10, true), { 'v2 200': 10 }, 'preview users still reach v2 after the restart');
  t.same(await versionsSeen(restarted, 10, false), { 'v1 200': 10 });
  t.equal((await admin(restarted.adminUrl, 'POST', '/api/v1/services/svc/rollout/abort')).status, 200);
  t.same(await versionsSeen(restarted, 10, true), { 'v1 200': 10 });
});

t.test('with workers: 2, every worker opens and closes the preview with the weights', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const yaml = blueGreenConfig(v1.url, v2.url).replace('log: { level: silent }', 'log: { level: info }\nworkers: 2');
  const { serving } = await serveInChild(t, writeConfig(yaml), { workers: 2 });
  const url = `http://${String(serving.listen)}`;
  const adminUrl = `http://${String(serving.admin)}`;
  /** Versions of `count` requests, each on a fresh connection (so both workers answer). */
  const seen = async (count: number, preview: boolean) => {
    const out: Record<string, number> = {};
    for (let i = 0; i < count; i++) {
      const res = await request(url, { headers: { connection: 'close', ...(preview ? { 'x-preview': '1' } : {}) } });
      await res.body.text();
      const v = String(res.headers['x-veer-version']);
      out[v] = (out[v] ?? 0) + 1;
    }
    return out;
  };
  t.equal((await admin(adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201);
  t.ok(await until(async () => (await seen(6, true)).v2 === 6, 3000), 'preview requests reach v2 on every worker');
  t.same(await seen(10, false), { v1: 10 });
  t.equal((await admin(adminUrl, 'POST', '/api/v1/services/svc/rollout/abort')).status, 200);
  t.ok(await until(async () => (await seen(6, true)).v1 === 6, 3000), 'closed on every worker after abort');
});
