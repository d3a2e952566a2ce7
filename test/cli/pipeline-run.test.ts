// `veer pipeline run|status|abort` against three real veer processes
// standing for three clusters (dev, staging, prod: their own ports, tokens
// and state files), with real upstreams and traffic, short rollout steps and
// analysis intervals. Each test uses its own service, so the three veers
// are started once.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { request } from 'undici';
import { parsePlanText } from '../../src/cli/pipeline-plan.ts';
import { newPipelineState } from '../../src/cli/pipeline-state.ts';
import { admin } from '../helpers/admin.ts';
import { runCli } from '../helpers/cli.ts';
import { freePort, startUpstream } from '../helpers/upstreams.ts';
import { FROM_SOURCE, ROOT, VEER_BIN, serveInChild } from '../helpers/veer.ts';

interface Cluster {
  readonly name: string;
  readonly admin: string;
  readonly data: string;
  readonly token: string;
}

const QUICK = '{ canary: v2, steps: [{ weight: 50, pause: 300ms }, { weight: 100 }], analysis: { interval: 150ms, minRequests: 2, maxErrorRate: 0.2, failureLimit: 3 } }';
const SLOW = '{ canary: v2, steps: [{ weight: 50, pause: 3s }, { weight: 100 }], analysis: { interval: 150ms, minRequests: 2, maxErrorRate: 0.2, failureLimit: 3 } }';
const HELD = '{ canary: v2, steps: [{ weight: 50, pause: 1m }, { weight: 100 }], analysis: { interval: 150ms, minRequests: 2, maxErrorRate: 0.2, failureLimit: 3 } }';
/** Each test's service, and its rollout plan in each cluster (default QUICK). */
const SERVICES: Record<string, Partial<Record<'dev' | 'staging' | 'prod', string>>> = {
  clean: {},
  failing: {},
  resume: { staging: SLOW },
  unreach: {},
  par: {},
  halt: { staging: HELD },
  soak: {},
  untouched: {},
  crash: {},
  late: { dev: QUICK.replace(/ }$/, ', rollbackWindow: 1s }') },
};

const v1 = await startUpstream('v1');
const v2 = await startUpstream('v2');
const broken = await startUpstream('broken', (_req, res) => {
  res.writeHead(500, { 'content-type': 'application/json' });
  res.end('{"error":"boom"}');
});
/** The `soak` service's canary: healthy until a test turns it bad. */
const flaky = { failing: false };
const flakyV2 = await startUpstream('flaky', (_req, res) => {
  res.writeHead(flaky.failing ? 500 : 200, { 'content-type': 'application/json' });
  res.end('{}');
});
t.teardown(async () => {
  await v1.close();
  await v2.close();
  await broken.close();
  await flakyV2.close();
});

async function startCluster(name: 'dev' | 'staging' | 'prod'): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), `veer-pipeline-${name}-`));
  const token = `${name}-secret`;
  const services = Object.entries(SERVICES).map(([svc, plans]) => {
    // In staging, the `failing` service's canary answers 500: its analysis aborts the rollout.
    const canary = name === 'staging' && (svc === 'failing' || svc === 'late') ? broken.url : svc === 'soak' ? flakyV2.url : v2.url;
    return `  - name: ${svc}
    match: { pathPrefix: /${svc} }
    versions:
      - { name: v1, upstream: ${v1.url} }
      - { name: v2, upstream: ${canary} }
    split: { weights: { v1: 100, v2: 0 } }
    rollout: ${plans[name] ?? QUICK}
`;
  });
  const file = join(dir, 'veer.yaml');
  writeFileSync(file, `listen: 127.0.0.1:0\nadmin: { listen: 127.0.0.1:0, token: ${token} }\nlog: { level: info }\nstate: { path: state.json }\nservices:\n${services.join('')}`);
  const { serving } = await serveInChild(t, file);
  const port = (address: unknown) => Number(String(address).split(':').at(-1));
  return { name, token, admin: `http://127.0.0.1:${port(serving.admin)}`, data: `http://127.0.0.1:${port(serving.listen)}` };
}

const [dev, staging, prod] = await Promise.all([startCluster('dev'), startCluster('staging'), startCluster('prod')]);
const ENV = { DEV_TOKEN: dev!.token, STAGING_TOKEN: staging!.token, PROD_TOKEN: prod!.token, VEER_PIPELINE_RETRIES: '3', VEER_PIPELINE_RETRY_DELAY: '100ms' };

const stage = (c: Cluster, extra = '') => `{ name: ${c.name}, admin: "${c.admin}", token: "\${${c.name.toUpperCase()}_TOKEN}"${extra} }`;

/** A plan file in a fresh directory; its state file is beside it. */
function writePlan(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'veer-plan-')), 'PLAN.yaml');
  writeFileSync(file, text);
  return file;
}

/** Requests to `service` on every cluster, every few ms, until the test ends: the analysis needs numbers. */
function traffic(tt: { teardown(fn: () => unknown): void }, service: string): void {
  let running = true;
  const loops = [dev!, staging!, prod!].map(async (c) => {
    while (running) {
      try {
        const res = await request(`${c.data}/${service}`);
        await res.body.text();
      } catch {
        // a veer stopping at the end
      }
      await new Promise((r) => setTimeout(r, 15));
    }
  });
  tt.teardown(async () => {
    running = false;
    await Promise.all(loops);
  });
}

type Rollout = { id: string; phase: string; startedAt: string; endedAt: string | null; canaryWeight: number };
const rolloutOf = async (c: Cluster, service: string) => admin<Rollout>(c.admin, 'GET', `/api/v1/services/${service}/rollout`, { token: c.token });
const weightsOf = async (c: Cluster, service: string) => (await admin<{ weights: Record<string, number> }>(c.admin, 'GET', `/api/v1/services/${service}`, { token: c.token })).body.weights;
const startsOf = async (c: Cluster, service: string) =>
  (await admin<{ history: { action: string }[] }>(c.admin, 'GET', `/api/v1/history?service=${service}&limit=1000`, { token: c.token })).body.history.filter((h) => h.action === 'rollout.start').length;

t.test('a clean run promotes dev, then staging, then prod, each after the one before', async (t) => {
  traffic(t, 'clean');
  const plan = writePlan(`service: clean\ncanary: v2\nstages:\n  - ${stage(dev!)}\n  - ${stage(staging!, ', soak: 400ms')}\n  - ${stage(prod!)}\n`);
  const run = await runCli(['pipeline', 'run', plan, '--interval', '100'], ENV, 30_000);
  t.equal(run.code, 0, run.stderr + run.stdout);
  t.match(run.stdout, /pipeline of clean to v2: dev -> staging -> prod; onAbort: stop/);
  t.match(run.stdout, /staging: soaking: promoted; soaking until/);
  t.match(run.stdout, /pipeline of clean to v2: promoted in every stage \(dev, staging, prod\)/);
  const [d, s, p] = await Promise.all([rolloutOf(dev!, 'clean'), rolloutOf(staging!, 'clean'), rolloutOf(prod!, 'clean')]);
  for (const r of [d, s, p]) t.equal(r.body.phase, 'promoted');
  t.ok(Date.parse(d.body.endedAt!) <= Date.parse(s.body.startedAt), 'staging started after dev was promoted');
  t.ok(Date.parse(s.body.endedAt!) + 400 <= Date.parse(p.body.startedAt), 'prod started after staging was promoted and soaked 400ms');
  t.same(await weightsOf(prod!, 'clean'), { v1: 0, v2: 100 });

  const state = JSON.parse(readFileSync(`${plan}.state.json`, 'utf8')) as { phase: string; stages: { name: string; status: string; before: { weights: object } }[] };
  t.equal(state.phase, 'promoted');
  t.same(state.stages.map((x) => [x.name, x.status]), [['dev', 'promoted'], ['staging', 'promoted'], ['prod', 'promoted']]);
  t.same(state.stages[0]!.before.weights, { v1: 100, v2: 0 }, 'the weights before each stage are kept for a rollback');
  t.notOk(readFileSync(plan, 'utf8').includes('secret') || readFileSync(`${plan}.state.json`, 'utf8').includes('secret'), 'no token in the state file');

  const again = await runCli(['pipeline', 'run', plan], ENV);
  t.equal(again.code, 0, 'running an ended pipeline again starts nothing and reports how it ended');
  t.match(again.stdout, /promoted in every stage .*move .*PLAN\.yaml\.state\.json away to run it again/);
  t.equal(await startsOf(dev!, 'clean'), 1, 'one rollout in dev');

  writeFileSync(plan, readFileSync(plan, 'utf8').replace('soak: 400ms', 'soak: 1s'));
  const changed = await runCli(['pipeline', 'run', plan], ENV);
  t.equal(changed.code, 2, 'a changed plan does not run on the old state');
  t.match(changed.stderr, /belongs to another plan .*\[pipeline_changed\]/);
});

t.test('a failing staging stops the pipeline before prod and rolls dev back (onAbort: rollback)', async (t) => {
  traffic(t, 'failing');
  const plan = writePlan(`service: failing\ncanary: v2\nonAbort: rollback\nstages:\n  - ${stage(dev!)}\n  - ${stage(staging!)}\n  - ${stage(prod!)}\n`);
  const run = await runCli(['pipeline', 'run', plan, '--interval', '100'], ENV, 30_000);
  t.equal(run.code, 1, run.stderr + run.stdout);
  t.match(run.stdout, /staging: failed: aborted: analysis failed 3 checks in a row: canary error ratio 100\.00% \(\d+\/\d+\) is over maxErrorRate 20\.00%/);
  t.match(run.stdout, /onAbort: rollback: rolling back dev/);
  t.match(run.stdout, /dev: promoted: .*; rolled back: weights back to v1=100 v2=0 \(as before the stage: rolled back by dev's veer \(within its rollbackWindow\)\)/);
  t.match(run.stdout, /pipeline of failing to v2: failed: stage staging failed: .*; rolled back: dev/);
  t.equal((await rolloutOf(staging!, 'failing')).body.phase, 'aborted');
  t.equal((await rolloutOf(dev!, 'failing')).body.phase, 'rolledBack', "dev's veer rolled its rollout back");
  t.equal((await rolloutOf(prod!, 'failing')).status, 404, 'prod never started');
  t.same(await weightsOf(dev!, 'failing'), { v1: 100, v2: 0 }, 'dev is back on v1');
  t.same(await weightsOf(staging!, 'failing'), { v1: 100, v2: 0 });

  const status = await runCli(['pipeline', 'status', plan], ENV);
  t.equal(status.code, 0);
  t.match(status.stdout, /pipeline of failing to v2: failed/);
  t.match(status.stdout, /dev: promoted: .*; rolled back: weights back to v1=100 v2=0/);
  t.match(status.stdout, /prod: pending: not started/);
});

t.test('a stage promoted longer ago than its rollbackWindow is rolled back by setting its weights', async (t) => {
  traffic(t, 'late');
  const plan = writePlan(`service: late\ncanary: v2\nonAbort: rollback\nstages:\n  - ${stage(dev!, ', soak: 1500ms')}\n  - ${stage(staging!)}\n`);
  const run = await runCli(['pipeline', 'run', plan, '--interval', '100'], ENV, 30_000);
  t.equal(run.code, 1, run.stderr + run.stdout);
  t.match(run.stdout, /dev: promoted: .*; rolled back: weights back to v1=100 v2=0 \(as before the stage: set back, past its rollbackWindow\)/);
  t.equal((await rolloutOf(dev!, 'late')).body.phase, 'promoted', 'the rollout itself stays promoted: its veer refused to roll it back');
  t.same(await weightsOf(dev!, 'late'), { v1: 100, v2: 0 }, 'dev is back on v1');
});

/** `veer pipeline run` as a child we can kill, with its output so far. */
function spawnRun(args: string[]) {
  const child = spawn(process.execPath, [VEER_BIN, 'pipeline', 'run', ...args], { cwd: ROOT, env: { ...process.env, ...FROM_SOURCE, ...ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const waitFor = async (re: RegExp, ms = 15_000) => {
    const end = Date.now() + ms;
    while (!re.test(out)) {
      if (Date.now() > end) throw new Error(`no ${re} within ${ms} ms; output:\n${out}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  return { child, exited, waitFor, output: () => out };
}

t.test('a pipeline killed mid-stage resumes: the promoted stage is not run again, the running rollout is followed', async (t) => {
  traffic(t, 'resume');
  const plan = writePlan(`service: resume\ncanary: v2\nstages:\n  - ${stage(dev!)}\n  - ${stage(staging!)}\n  - ${stage(prod!)}\n`);
  const first = spawnRun([plan, '--interval', '100']);
  await first.waitFor(/staging: running: progressing step 1\/2/);
  process.kill(first.child.pid!, 'SIGKILL');
  await first.exited;
  const killedAt = await rolloutOf(staging!, 'resume');
  t.equal(killedAt.body.phase, 'progressing', 'the staging rollout goes on without the command');
  t.ok(existsSync(`${plan}.state.json.lock`), 'the dead run left its lock');

  const status = await runCli(['pipeline', 'status', plan], ENV);
  t.match(status.stdout, /pipeline of resume to v2: running/);
  t.match(status.stdout, /dev: promoted/);
  t.match(status.stdout, /staging: running: progressing step 1\/2/);
  t.match(status.stdout, /no `veer pipeline run` drives it now: run it again to resume/);

  const second = await runCli(['pipeline', 'run', plan, '--interval', '100'], ENV, 30_000);
  t.equal(second.code, 0, second.stderr + second.stdout);
  t.match(second.stdout, /resuming the pipeline of resume to v2 from .*: dev promoted, staging running, prod pending/);
  t.notMatch(second.stdout, /dev: (starting|running)/, 'dev is not run again');
  t.match(second.stdout, /promoted in every stage/);
  t.equal(await startsOf(dev!, 'resume'), 1, 'dev: one rollout');
  t.equal(await startsOf(staging!, 'resume'), 1, 'staging: the rollout started before the kill was followed, not started again');
  t.equal((await rolloutOf(staging!, 'resume')).body.id, killedAt.body.id);
  t.equal((await rolloutOf(prod!, 'resume')).body.phase, 'promoted');
  t.notOk(existsSync(`${plan}.state.json.lock`), 'the lock is released at the end');
});

t.test('a stage whose command died between starting its rollout and saving that adopts the rollout', async (t) => {
  traffic(t, 'crash');
  const text = `service: crash\ncanary: v2\nstages:\n  - ${stage(dev!)}\n  - ${stage(prod!)}\n`;
  const plan = writePlan(text);
  const parsed = parsePlanText(text, ENV);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  // What the state says when the command dies right after POST .../rollout: starting, the weights and the rollout seen before.
  const state = newPipelineState(parsed.plan, new Date());
  const at = new Date().toISOString();
  Object.assign(state.stages[0]!, { status: 'starting', before: { weights: { v1: 100, v2: 0 }, rolloutId: null, at }, startedAt: at, detail: 'starting the rollout of v2' });
  writeFileSync(`${plan}.state.json`, JSON.stringify(state));
  const started = await admin<Rollout>(dev!.admin, 'POST', '/api/v1/services/crash/rollout', { token: dev!.token, body: { canary: 'v2' } });
  t.equal(started.status, 201);

  const run = await runCli(['pipeline', 'run', plan, '--interval', '100'], ENV, 30_000);
  t.equal(run.code, 0, run.stderr + run.stdout);
  t.match(run.stdout, /resuming .*: dev starting, prod pending/);
  t.equal(await startsOf(dev!, 'crash'), 1, 'the rollout that went through is followed, not started again');
  t.equal((await rolloutOf(dev!, 'crash')).body.id, started.body.id);
  t.equal((await rolloutOf(prod!, 'crash')).body.phase, 'promoted');
});

t.test('an unreachable stage is tried with backoff, then fails the pipeline (onAbort: stop leaves dev promoted)', async (t) => {
  traffic(t, 'unreach');
  const port = await freePort();
  const plan = writePlan(`service: unreach\ncanary: v2\nonAbort: stop\nstages:\n  - ${stage(dev!)}\n  - { name: staging, admin: "http://127.0.0.1:${port}" }\n  - ${stage(prod!)}\n`);
  const started = Date.now();
  const run = await runCli(['pipeline', 'run', plan, '--interval', '100'], ENV, 30_000);
  t.equal(run.code, 1, run.stderr + run.stdout);
  t.match(run.stdout, /staging: pending: no answer: cannot reach the admin API of staging at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\); try 2\/3 in 100ms/);
  t.match(run.stdout, /try 3\/3 in 200ms/);
  t.match(run.stdout, /staging: failed: cannot reach .*\[unreachable\]/);
  t.match(run.stdout, /pipeline of unreach to v2: failed: stage staging failed/);
  t.ok(Date.now() - started < 15_000);
  t.equal((await rolloutOf(prod!, 'unreach')).status, 404, 'prod never started');
  t.same(await weightsOf(dev!, 'unreach'), { v1: 0, v2: 100 }, 'onAbort: stop leaves dev promoted');
});

t.test('a parallel group runs its stages at once', async (t) => {
  traffic(t, 'par');
  const plan = writePlan(`service: par\ncanary: v2\nstages:\n  - ${stage(dev!)}\n  - parallel:\n      - ${stage(staging!)}\n      - ${stage(prod!)}\n`);
  const run = await runCli(['pipeline', 'run', plan, '--interval', '100'], ENV, 30_000);
  t.equal(run.code, 0, run.stderr + run.stdout);
  t.match(run.stdout, /dev -> \(staging \+ prod\)/);
  const [d, s, p] = await Promise.all([rolloutOf(dev!, 'par'), rolloutOf(staging!, 'par'), rolloutOf(prod!, 'par')]);
  t.ok(Date.parse(d.body.endedAt!) <= Math.min(Date.parse(s.body.startedAt), Date.parse(p.body.startedAt)), 'the group starts after dev');
  t.ok(Date.parse(s.body.startedAt) < Date.parse(p.body.endedAt!) && Date.parse(p.body.startedAt) < Date.parse(s.body.endedAt!), 'staging and prod overlap');
});

t.test('veer pipeline abort stops a running pipeline: the running rollout is aborted, the promoted stage rolled back', async (t) => {
  traffic(t, 'halt');
  const plan = writePlan(`service: halt\ncanary: v2\nonAbort: rollback\nstages:\n  - ${stage(dev!)}\n  - ${stage(staging!)}\n  - ${stage(prod!)}\n`);
  const run = spawnRun([plan, '--interval', '100']);
  await run.waitFor(/staging: running: progressing step 1\/2/);
  const second = await runCli(['pipeline', 'run', plan], ENV);
  t.equal(second.code, 2, 'a second run of the same pipeline is refused');
  t.match(second.stderr, /already being run by process \d+ .*\[pipeline_locked\]/);

  const abort = await runCli(['pipeline', 'abort', plan, '--reason', 'bad release'], ENV);
  t.equal(abort.code, 0, abort.stderr + abort.stdout);
  t.match(abort.stdout, /staging: stopped: its rollout was aborted: pipeline of halt stopped: aborted by \S+ \(bad release\)/);
  t.match(abort.stdout, /dev: promoted: .*; rolled back: weights back to v1=100 v2=0/);
  t.match(abort.stdout, /pipeline of halt to v2: aborted: aborted by \S+ \(bad release\); rolled back: dev/);
  t.equal(await run.exited, 1, 'the run exits 1');
  t.match(run.output(), /the pipeline was taken over/);
  t.equal((await rolloutOf(staging!, 'halt')).body.phase, 'aborted');
  t.same(await weightsOf(dev!, 'halt'), { v1: 100, v2: 0 });
  t.equal((await rolloutOf(prod!, 'halt')).status, 404);
  const again = await runCli(['pipeline', 'abort', plan], ENV);
  t.equal(again.code, 1, 'an ended pipeline cannot be aborted again');
  t.match(again.stderr, /already ended/);
});

t.test('a stage that turns unhealthy while it soaks fails the pipeline and is rolled back', async (t) => {
  traffic(t, 'soak');
  const plan = writePlan(`service: soak\ncanary: v2\nonAbort: rollback\nstages:\n  - ${stage(dev!, ', soak: 1m')}\n  - ${stage(prod!)}\n`);
  const run = spawnRun([plan, '--interval', '100']);
  await run.waitFor(/dev: soaking: promoted; soaking, \d+s left; check pass/);
  flaky.failing = true;
  t.teardown(() => {
    flaky.failing = false;
  });
  t.equal(await run.exited, 1, run.output());
  t.match(run.output(), /dev: failed: unhealthy during the soak: check fail \(\d+ req, [\d.]+% err, p99 [\d.]+ms: error ratio over 0\.2\)/);
  t.match(run.output(), /dev: failed: .*; rolled back: weights back to v1=100 v2=0/);
  t.same(await weightsOf(dev!, 'soak'), { v1: 100, v2: 0 });
  t.equal((await rolloutOf(prod!, 'soak')).status, 404, 'prod never started');
});

t.test('bad plans: every error with its path, exit 2, nothing started', async (t) => {
  const cases: [string, string, RegExp[]][] = [
    ['unset token', `service: untouched\ncanary: v2\nstages:\n  - { name: dev, admin: "${dev!.admin}", token: "\${NO_SUCH_TOKEN}" }\n`, [/PLAN\.yaml:4:\d+ stages\[0\]\.token: refers to environment variable NO_SUCH_TOKEN, which is not set \[env_unset\]/]],
    [
      'names, URLs, durations',
      `service: untouched\ncanary: v2\nstages:\n  - ${stage(dev!)}\n  - { name: dev, admin: "ftp://x:1", soak: soon }\n  - parallel: [{ name: eu, admin: "http://eu:1" }, { name: eu, admin: "http://us:1" }]\n`,
      [
        /PLAN\.yaml:5:\d+ stages\[1\]\.name: "dev" is already the name of stages\[0\]; stage names must be unique \[duplicate_stage\]/,
        /PLAN\.yaml:5:\d+ stages\[1\]\.admin: "ftp:\/\/x:1" is not an http:\/\/ or https:\/\/ URL/,
        /PLAN\.yaml:5:\d+ stages\[1\]\.soak: must be a duration such as 500ms, 30s, 1m or 1h \(got "soon"\) \[schema\]/,
        /PLAN\.yaml:6:\d+ stages\[2\]\.parallel\[1\]\.name: "eu" is already the name of stages\[2\]\.parallel\[0\]/,
      ],
    ],
    ['a release with a canary', `release: checkout-2.3\ncanary: v2\nstages:\n  - ${stage(dev!)}\n`, [/PLAN\.yaml:2:\d+ canary: a release names its canaries itself.* \[schema\]/]],
    ['no canary, no stages', `service: untouched\nstages: []\nonAbort: later\n`, [/canary: is required/, /stages: must list at least one stage/, /onAbort: must be rollback or stop \(got "later"\)/]],
  ];
  for (const [name, text, expected] of cases) {
    const plan = writePlan(text);
    const run = await runCli(['pipeline', 'run', plan], ENV);
    t.equal(run.code, 2, `${name}: exit 2`);
    for (const re of expected) t.match(run.stderr, re, name);
    t.match(run.stderr, /nothing was started \[invalid_plan\]/);
    t.notOk(existsSync(`${plan}.state.json`), `${name}: no state file`);
  }
  t.equal((await rolloutOf(dev!, 'untouched')).status, 404, 'no rollout started');
});
