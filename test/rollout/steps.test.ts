// Steps that wait for a person (`pause: forever`) and steps with their own
// analysis (as Argo's), the plan they resolve to, the transitions with a
// confirm-promotion gate, hook deliveries that retry, and every bad input
// of the rollout section and the start body: a clear code, nothing changed.

import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createLogger } from '../../src/log/index.ts';
import { checkConfigFile } from '../../src/main.ts';
import { HookDeliveries, MAX_QUEUED_DELIVERIES, resolvePlan, type HookBody } from '../../src/rollout/index.ts';
import { advance, enterStep, newRollout, promote, resume } from '../../src/rollout/transitions.ts';
import type { HookCall } from '../../src/state/index.ts';
import { admin, startLoad, until } from '../helpers/admin.ts';
import { runCli } from '../helpers/cli.ts';
import { checkConfigText } from '../helpers/fixtures.ts';
import type { TestScope } from '../helpers/http.ts';
import { listenOnLoopback, startUpstream } from '../helpers/upstreams.ts';
import { ROOT, runVeer, serviceConfig, type RunningVeer } from '../helpers/veer.ts';
import { tableFromYaml } from '../helpers/tables.ts';
import { weightsOf, rolloutOf as readRollout } from '../helpers/rollouts.ts';

interface Rollout {
  phase: string;
  pausedBy: string | null;
  step: number;
  canaryWeight: number;
  reason: string;
  nextStepAt: string | null;
  currentAnalysis: { intervalMs: number; maxErrorRate: number | null; maxP99Ms: number | null; failureLimit: number } | null;
}

const log = createLogger('silent', { pretty: false });

function serviceYaml(rollout: string): string {
  return `services:
  - name: shop
    versions:
      - { name: v1, upstream: "http://127.0.0.1:3001" }
      - { name: v2, upstream: "http://127.0.0.1:3002" }
    split: { weights: { v1: 100, v2: 0 } }
    rollout:
${rollout.replace(/^/gm, '      ')}
`;
}

const issuesOf = (rollout: string) => {
  const r = checkConfigText(serviceYaml(rollout));
  return r.ok ? [] : r.issues.map((i) => `${i.path} ${i.code}: ${i.message}`);
};

t.test('the rollout section: every problem with its path and code at validate time', async (t) => {
  const prom = 'prometheus: { address: "http://prom:9090" }';
  const ok = `canary: v2
steps:
  - { weight: 10, pause: forever }
  - { weight: 50, pause: 1m, analysis: { maxErrorRate: 0.01, metrics: [{ name: p99, query: 'x{s="{{service}}",c="{{ canary }}",o=~"{{stable}}"}[{{interval}}]', max: 0.5 }] } }
  - { weight: 100 }
analysis: { interval: 30s, ${prom}, metrics: [{ name: conversion, query: "sum(rate(orders[{{interval}}]))", min: 0.02 }] }
hooks:
  - { type: pre-rollout, url: "http://loadtester/smoke", timeout: 2m }
  - { type: rollout, url: "https://loadtester/check", headers: { x-token: abc } }
  - { type: confirm-promotion, url: "http://gate/approve" }
  - { type: post-rollout, url: "http://loadtester/cleanup" }
  - { type: event, url: "https://hooks.example/veer", headers: { authorization: "Bearer x" } }`;
  t.same(issuesOf(ok), [], 'a section with every feature is valid');
  const cases: [string, string, RegExp][] = [
    [`canary: v2\nsteps: [{ weight: 10 }]\nanalysis: { ${prom}, metrics: [{ name: a, query: "x{v=\\"{{version}}\\"}", min: 1 }] }`, 'services[0].rollout.analysis.metrics[0].query invalid_analysis', /unknown placeholder \{\{version\}\}; the placeholders are \{\{service\}\}, \{\{canary\}\}, \{\{stable\}\}, \{\{interval\}\}/],
    [`canary: v2\nsteps: [{ weight: 10 }]\nanalysis: { ${prom}, metrics: [{ name: a, query: "x[{{interval}]", min: 1 }] }`, 'services[0].rollout.analysis.metrics[0].query invalid_analysis', /unterminated/],
    [`canary: v2\nsteps: [{ weight: 10 }]\nanalysis: { ${prom}, metrics: [{ name: a, query: x }] }`, 'services[0].rollout.analysis.metrics[0] invalid_analysis', /neither min nor max/],
    [`canary: v2\nsteps: [{ weight: 10 }]\nanalysis: { ${prom}, metrics: [{ name: a, query: x, min: 2, max: 1 }] }`, 'services[0].rollout.analysis.metrics[0] invalid_analysis', /min 2 is over max 1/],
    [`canary: v2\nsteps: [{ weight: 10 }]\nanalysis: { metrics: [{ name: a, query: x, min: 1 }] }`, 'services[0].rollout.analysis.metrics invalid_analysis', /need analysis\.prometheus/],
    [`canary: v2\nsteps: [{ weight: 10 }]\nanalysis: { prometheus: { address: "prom:9090" } }`, 'services[0].rollout.analysis.prometheus.address invalid_analysis', /not an http:\/\/ or https:\/\/ URL/],
    [`canary: v2\nsteps: [{ weight: 10 }]\nanalysis: { prometheus: { address: "http://p", bearerToken: t, basicAuth: { username: u, password: p } } }`, 'services[0].rollout.analysis.prometheus invalid_analysis', /bearerToken or basicAuth, not both/],
    [`canary: v2\nsteps: [{ weight: 10, analysis: { metrics: [{ name: a, query: x, min: 1 }] } }]\nanalysis: { ${prom}, metrics: [{ name: a, query: y, max: 1 }] }`, 'services[0].rollout.steps[0].analysis.metrics[0].name invalid_analysis', /metric a is checked twice/],
    [`canary: v2\nsteps: [{ weight: 10, analysis: { metrics: [{ name: a, query: "{{nope}}", min: 1 }] } }]\nanalysis: { ${prom} }`, 'services[0].rollout.steps[0].analysis.metrics[0].query invalid_analysis', /unknown placeholder \{\{nope\}\}/],
    [`canary: v2\nsteps: [{ weight: 10 }]\nhooks: [{ type: event, url: "ftp://x/y" }]`, 'services[0].rollout.hooks[0].url invalid_hook', /not an http:\/\/ or https:\/\/ URL/],
    [`canary: v2\nsteps: [{ weight: 10 }]\nhooks: [{ type: event, url: "not a url" }]`, 'services[0].rollout.hooks[0].url invalid_hook', /not an http/],
    [`canary: v2\nsteps: [{ weight: 10 }]\nhooks: [{ type: event, url: "http://x", timeout: 11m }]`, 'services[0].rollout.hooks[0].timeout invalid_hook', /over the longest a hook may take \(10m\)/],
    [`canary: v2\nsteps: [{ weight: 10 }]\nhooks: [{ type: event, url: "http://x", headers: { Content-Type: text/plain } }]`, 'services[0].rollout.hooks[0].headers.Content-Type invalid_hook', /veer sets content-type itself/],
    [`canary: v2\nsteps: [{ weight: 10 }]\nhooks: [{ type: webhook, url: "http://x" }]`, 'services[0].rollout.hooks[0].type schema', /one of pre-rollout, rollout, confirm-promotion, post-rollout, event/],
    [`canary: v2\nsteps: [{ weight: 10, pause: never }]`, 'services[0].rollout.steps[0].pause schema', /a duration such as 30s or 1m, or forever/],
  ];
  for (const [rollout, where, message] of cases) {
    const issues = issuesOf(rollout);
    t.equal(issues.length, 1, `${where}: one issue (${issues.join(' | ')})`);
    t.match(issues[0], `${where}: `, where);
    t.match(issues[0], message, where);
  }
  // Header values take ${VAR} like every config value: an unset one is refused at validate time.
  const env = checkConfigText(serviceYaml('canary: v2\nsteps: [{ weight: 10 }]\nhooks: [{ type: event, url: "http://x", headers: { authorization: "Bearer ${VEER_TEST_UNSET_HOOK_TOKEN}" } }]'));
  t.match(env.ok ? null : env.issues, [{ code: 'env_unset', path: 'services[0].rollout.hooks[0].headers.authorization' }]);

  const dir = mkdtempSync(join(tmpdir(), 'veer-rollout-ca-'));
  const file = join(dir, 'veer.yaml');
  writeFileSync(file, `listen: 127.0.0.1:0\n${serviceYaml(`canary: v2\nsteps: [{ weight: 10 }]\nanalysis: { prometheus: { address: "https://p:9090", ca: missing-ca.pem } }`)}`);
  const checked = await checkConfigFile(file);
  t.match(checked.ok ? null : checked.issues, [{ code: 'config_unreadable', path: 'services[0].rollout.analysis.prometheus.ca', message: /missing-ca\.pem: ENOENT/ }], 'the CA file is read at validate time');
});

t.test("the README's rollout example with metric checks and hooks is valid", async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Rollout metric checks and hooks'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
  const yaml = `services:\n  - name: shop\n    versions:\n      - { name: v1, upstream: "http://127.0.0.1:3001" }\n      - { name: v2, upstream: "http://127.0.0.1:3002" }\n${block}`;
  const result = checkConfigText(yaml, { PROMETHEUS_TOKEN: 'p', HOOK_TOKEN: 'h' });
  t.ok(result.ok, result.ok ? 'valid' : JSON.stringify(result.issues));
  const plan = result.ok ? resolvePlan(result.compiled.table.servicesByName.get('shop')!) : null;
  t.match(plan?.steps.map((s) => s.pause), ['5m', 'forever', '10m', undefined]);
  t.match(plan?.steps[2]?.analysis?.metrics?.map((m) => m.name), ['conversion', 'checkout-p99']);
});

t.test("a step's analysis: its fields over the rollout's, its metrics after the rollout's", async (t) => {
  const table = tableFromYaml(
    serviceYaml(`canary: v2
steps:
  - { weight: 10, pause: 1m }
  - { weight: 50, pause: forever, analysis: { interval: 5s, maxErrorRate: 0.001, metrics: [{ name: b, query: y, max: 1 }] } }
analysis: { interval: 30s, minRequests: 20, maxP99Ms: 300, prometheus: { address: "http://p" }, metrics: [{ name: a, query: x, min: 1 }] }`),
  );
  const plan = resolvePlan(table.servicesByName.get('shop')!);
  t.same(plan.analysis, { intervalMs: 30_000, minRequests: 20, maxErrorRate: null, maxP99Ms: 300, failureLimit: 2, metrics: [{ name: 'a', query: 'x', min: 1, max: null }] });
  t.same(plan.steps[0], { weight: 10, pause: '1m' }, 'a step without analysis runs the rollout\'s');
  t.same(plan.steps[1], {
    weight: 50,
    pause: 'forever',
    analysis: { intervalMs: 5000, minRequests: 20, maxErrorRate: 0.001, maxP99Ms: 300, failureLimit: 2, metrics: [{ name: 'a', query: 'x', min: 1, max: null }, { name: 'b', query: 'y', min: null, max: 1 }] },
  });
  const body = resolvePlan(table.servicesByName.get('shop')!, { analysis: { interval: '1s' } });
  t.same(body.analysis?.metrics, [{ name: 'a', query: 'x', min: 1, max: null }], "a body's analysis replaces the thresholds and keeps the config's metric checks");
  t.equal(resolvePlan(table.servicesByName.get('shop')!, { analysis: null }).analysis, null);
});

t.test('transitions: pause forever waits for resume; a confirm-promotion hook holds the promotions the plan makes', async (t) => {
  const yaml = (hooks: string) =>
    tableFromYaml(serviceYaml(`canary: v2\nsteps: [{ weight: 10, pause: forever }, { weight: 40, pause: 1m }, { weight: 100 }]${hooks}`)).servicesByName.get('shop')!;
  const open = yaml('');
  const gated = yaml('\nhooks: [{ type: confirm-promotion, url: "http://gate/ok" }]');
  const plan = resolvePlan(open);
  const T = Date.parse('2024-05-01T00:00:00Z');
  const first = enterStep(open, newRollout(open, plan, T), 0, T, 'rollout.start', 'started', null);
  t.match(first.rollout, { phase: 'paused', pausedBy: 'plan', step: 0, reason: 'step 1/3: v2 at 10%; pause: forever: waiting for resume' });
  const second = resume(open, first.rollout!, T + 1000, 'resume', null);
  t.match(second.rollout, { phase: 'progressing', step: 1 });
  t.match(advance(open, second.rollout!, T + 61_000, 'step 2 done', null), { action: 'rollout.promote', rollout: { phase: 'promoted' }, weights: { v1: 0, v2: 100 } });

  const held = advance(gated, second.rollout!, T + 61_000, 'step 2 done', null);
  t.match(held, { action: 'rollout.pause', rollout: { phase: 'paused', pausedBy: 'confirm-promotion', step: 1, reason: /^waiting for confirm-promotion: step 2 done; the last step gives v2 100%/ } });
  t.equal(held.weights, undefined, 'the weights stay at the step before 100%');
  t.throws(() => resume(gated, held.rollout!, T + 62_000, 'resume', null), { code: 'rollout_conflict', message: /waits for its confirm-promotion hook/ });
  t.match(promote(gated, held.rollout!, T + 62_000, 'promote by api', null), { rollout: { phase: 'promoted' }, weights: { v1: 0, v2: 100 } }, 'promote overrides the gate');
  const lastForever = tableFromYaml(serviceYaml('canary: v2\nsteps: [{ weight: 100, pause: forever }]\nhooks: [{ type: confirm-promotion, url: "http://gate/ok" }]')).servicesByName.get('shop')!;
  const atHundred = enterStep(lastForever, newRollout(lastForever, resolvePlan(lastForever), T), 0, T, 'rollout.start', 'started', null);
  t.match(atHundred, { rollout: { phase: 'paused', pausedBy: 'plan' }, weights: { v1: 0, v2: 100 } }, 'a last step at 100% with pause: forever waits for resume');
  t.match(resume(lastForever, atHundred.rollout!, T + 1, 'resume', null), { rollout: { pausedBy: 'confirm-promotion' } }, 'then resume asks the gate');
});

/** v1 answers at once; v2 after `v2DelayMs`. */
async function upstreams(t: TestScope, v2DelayMs = 0) {
  const v1 = await startUpstream('v1');
  const v2 = await startUpstream('v2', (_req, res) => {
    if (v2DelayMs === 0) res.end('ok');
    else setTimeout(() => res.end('ok'), v2DelayMs);
  });
  t.teardown(async () => {
    await v1.close();
    await v2.close();
  });
  return { v1, v2 };
}

async function veer(t: TestScope, yaml: string): Promise<RunningVeer> {
  const running = await runVeer(yaml);
  t.teardown(() => running.stop());
  return running;
}

const rolloutOf = (running: RunningVeer) => readRollout<Rollout>(running);

t.test('pause: forever holds until `veer rollout resume`, also at 100%', async (t) => {
  const { v1, v2 } = await upstreams(t);
  const running = await veer(t, serviceConfig({ versions: { v1: v1.url, v2: v2.url }, extra: '    rollout: { canary: v2, steps: [{ weight: 20, pause: forever }, { weight: 50, pause: 200ms }, { weight: 100, pause: forever }] }\n' }));
  const env = { VEER_ADMIN_URL: running.adminUrl };
  const start = await runCli(['rollout', 'start', 'svc'], env);
  t.equal(start.code, 0, start.stderr);
  t.match(start.stdout, /paused \(by plan\), canary v2 at 20%/);
  t.match(start.stdout, /steps: +\[20%\/forever\] -> 50%\/200ms -> 100%\/forever/);
  t.match(start.stdout, /reason: +step 1\/3: v2 at 20%; pause: forever: waiting for resume/);
  await new Promise((r) => setTimeout(r, 500));
  t.match(await rolloutOf(running), { phase: 'paused', step: 0, nextStepAt: null }, 'still waiting');
  t.equal((await runCli(['rollout', 'resume', 'svc'], env)).code, 0);
  t.ok(await until(async () => (await rolloutOf(running)).step === 2, 3000), 'the timed step moved on by itself');
  t.match(await rolloutOf(running), { phase: 'paused', pausedBy: 'plan', canaryWeight: 100 }, 'waits at 100% too');
  t.same(weightsOf(running), { v1: 0, v2: 100 });
  await new Promise((r) => setTimeout(r, 300));
  t.equal((await rolloutOf(running)).phase, 'paused', 'not promoted without resume');
  const resumed = await runCli(['rollout', 'resume', 'svc'], env);
  t.match(resumed.stdout, /rollout of svc: promoted/);

  // The same from the CLI's --steps.
  const again = await runCli(['rollout', 'start', 'svc', '--steps', '30:forever,100'], env);
  t.equal(again.code, 0, again.stderr);
  t.match(again.stdout, /paused \(by plan\), canary v2 at 30%/);
});

t.test("a step's own analysis runs during that step only", async (t) => {
  // The canary is 30 ms slower than stable: under the relative latency check's 50 ms margin, over step 2's own maxP99Ms.
  const { v1, v2 } = await upstreams(t, 30);
  const rollout = [
    '    rollout:',
    '      canary: v2',
    '      steps:',
    '        - { weight: 50, pause: 600ms }',
    '        - { weight: 50, pause: 1m, analysis: { interval: 100ms, maxP99Ms: 20, failureLimit: 2 } }',
    '        - { weight: 100 }',
    // failureLimit 1000 outside step 2: latency noise of a loaded machine must not abort step 1.
    '      analysis: { interval: 150ms, minRequests: 5, maxErrorRate: 0.05, failureLimit: 1000 }',
    '',
  ].join('\n');
  const running = await veer(t, serviceConfig({ versions: { v1: v1.url, v2: v2.url }, weights: { v1: 100, v2: 0 }, extra: rollout }));
  const load = startLoad(running.url, 6);
  t.teardown(() => load.stop());
  const start = await admin<Rollout>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout');
  t.match(start.body.currentAnalysis, { intervalMs: 150, maxErrorRate: 0.05, maxP99Ms: null, failureLimit: 1000 }, "step 1 runs the rollout's analysis, without a latency bound");
  const steps = new Set<number>();
  const phases = new Set<string>();
  t.ok(
    await until(async () => {
      const r = await rolloutOf(running);
      steps.add(r.step);
      phases.add(r.phase);
      if (r.step === 1 && r.phase === 'progressing') t.match(r.currentAnalysis, { intervalMs: 100, maxErrorRate: 0.05, maxP99Ms: 20, failureLimit: 2 }, 'step 2 runs its own');
      return r.phase === 'aborted';
    }, 10_000, 20),
    'aborted',
  );
  t.ok(steps.has(1), 'the slow canary passed step 1 and reached step 2');
  const r = await rolloutOf(running);
  t.match(r, { step: 1, reason: /analysis failed 2 checks in a row: canary p99 .* is over maxP99Ms 20ms/ });
  t.same(weightsOf(running), { v1: 100, v2: 0 });
});

t.test('bad start bodies for the new fields get 400 and start nothing', async (t) => {
  const { v1, v2 } = await upstreams(t);
  const running = await veer(t, serviceConfig({ versions: { v1: v1.url, v2: v2.url }, extra: '    rollout: { canary: v2, steps: [{ weight: 10, pause: 1m }] }\n' }));
  const bad: [unknown, string][] = [
    [{ steps: [{ weight: 10, pause: 'never' }] }, 'invalid_body'],
    [{ steps: [{ weight: 10, analysis: { metrics: [{ name: 'a', query: 'x', min: 1 }] } }] }, 'invalid_body'],
    [{ analysis: { metrics: [] } }, 'invalid_body'],
    [{ analysis: { prometheus: { address: 'http://p' } } }, 'invalid_body'],
    [{ hooks: [{ type: 'event', url: 'http://x' }] }, 'invalid_body'],
    [{ steps: [{ weight: 10, analysis: { interval: '10ms' } }] }, 'invalid_rollout'],
  ];
  for (const [body, code] of bad) {
    const res = await admin<{ error: { code: string } }>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout', { body });
    t.equal(res.status, 400, JSON.stringify(body));
    t.equal(res.body.error.code, code, JSON.stringify(body));
  }
  t.equal((await admin(running.adminUrl, 'GET', '/api/v1/services/svc/rollout')).status, 404, 'no rollout was started');
  const ok = await admin<Rollout>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout', { body: { steps: [{ weight: 10, pause: 'forever', analysis: { maxErrorRate: 0.01 } }, { weight: 100 }] } });
  t.equal(ok.status, 201);
  t.match(ok.body, { phase: 'paused', pausedBy: 'plan', currentAnalysis: { maxErrorRate: 0.01 } });
});

t.test('event deliveries retry with backoff, in order per URL, bounded, and stop cleanly', async (t) => {
  let failuresLeft = 2;
  const got: string[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const phase = (JSON.parse(text) as HookBody).phase;
      if (failuresLeft > 0) {
        failuresLeft--;
        res.writeHead(503).end();
        return;
      }
      got.push(phase);
      res.end();
    });
  });
  const port = await listenOnLoopback(server);
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const deliveries = new HookDeliveries(log, { attempts: 5, baseDelayMs: 20 });
  t.teardown(() => deliveries.stop());
  const body = (phase: string): HookBody => ({ service: 's', canary: 'v2', stable: ['v1'], phase, step: { index: 0, count: 1, weight: 10 }, weights: {}, analysis: null, metadata: {} });
  const hook = { type: 'event' as const, url: `http://127.0.0.1:${port}/e` };
  const calls: HookCall[] = [];
  for (const phase of ['one', 'two', 'three']) deliveries.send(hook, body(phase), (c) => calls.push(c));
  t.ok(await until(() => calls.length === 3, 3000), 'all delivered');
  t.same(got, ['one', 'two', 'three'], 'in order');
  t.match(calls[0], { ok: true, status: 200, attempts: 3 }, 'the first needed three calls (two 503s, backoff 20 ms then 40 ms)');
  t.equal(calls[1]!.attempts, undefined, 'the next went through at once');

  // Given up after its attempts; a URL that is down never grows without bound.
  const down = { type: 'event' as const, url: 'http://127.0.0.1:1/down' };
  const failed: HookCall[] = [];
  const slow = new HookDeliveries(log, { attempts: 2, baseDelayMs: 10_000 });
  for (let i = 0; i < MAX_QUEUED_DELIVERIES + 10; i++) slow.send(down, body(String(i)), (c) => failed.push(c));
  slow.stop();
  await new Promise((r) => setTimeout(r, 100));
  t.same(failed, [], 'stop drops what waits and records nothing more');
  const once = new HookDeliveries(log, { attempts: 2, baseDelayMs: 10 });
  t.teardown(() => once.stop());
  once.send(down, body('x'), (c) => failed.push(c));
  t.ok(await until(() => failed.length === 1, 2000));
  t.match(failed[0], { ok: false, status: null, attempts: 2, error: /unreachable/ });
});
