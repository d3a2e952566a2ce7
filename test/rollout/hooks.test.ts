// Rollout hooks against real HTTP servers on 127.0.0.1: a failing
// pre-rollout hook changes nothing, a confirm-promotion gate holds then
// releases, event hooks receive every transition, a rollout hook that fails
// fails its checks, and a hook server that hangs slows neither routing nor
// the engine. Every call lands in the history with its status and duration.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import t from 'tap';
import { admin, startLoad, until } from '../helpers/admin.ts';
import type { TestScope } from '../helpers/http.ts';
import { freePort, listenForTest, startTwoUpstreams, type TestUpstream } from '../helpers/upstreams.ts';
import { runVeer, serviceConfig, type RunningVeer } from '../helpers/veer.ts';
import { weightsOf, rolloutOf as readRollout, historyOf as readHistory } from '../helpers/rollouts.ts';

interface HookCall {
  type: string;
  url: string;
  status: number | null;
  ok: boolean;
  durationMs: number;
  error?: string;
  attempts?: number;
}
interface Rollout {
  phase: string;
  pausedBy: string | null;
  step: number;
  reason: string;
  confirmPromotion: { asked: number; since: string; last: HookCall[] } | null;
  lastAnalysis: { verdict: string; hooks?: HookCall[] } | null;
}
interface HistoryEntry {
  action: string;
  actor: string;
  reason: string;
  at: string;
  after: Record<string, number>;
  details?: { hook?: HookCall; hooks?: HookCall[] };
}
interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: { service: string; canary: string; stable: string[]; phase: string; step: { index: number; count: number; weight: number }; weights: Record<string, number>; analysis: unknown; metadata: Record<string, string> };
}

/** A hook server: records every call; `answer` decides the status per path (or 'hang': never answers). */
async function hookServer(t: TestScope, answer: (path: string) => number | 'hang' = () => 200) {
  const received: Received[] = [];
  const hanging: ServerResponse[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, headers: req.headers, body: JSON.parse(text) as Received['body'] });
      const status = answer(path);
      if (status === 'hang') hanging.push(res);
      else res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'no');
    });
  });
  const port = await listenForTest(t, server);
  return { url: `http://127.0.0.1:${port}`, received, hanging, on: (path: string) => received.filter((r) => r.path === path) };
}

async function upstreams(t: TestScope) {
  const [v1, v2] = await startTwoUpstreams(t);
  return { v1, v2 };
}

async function veer(t: TestScope, v1: TestUpstream, v2: TestUpstream, rollout: string, top = ''): Promise<RunningVeer> {
  const running = await runVeer(serviceConfig({ versions: { v1: v1.url, v2: v2.url }, weights: { v1: 100, v2: 0 }, extra: `    rollout:\n${rollout.replace(/^/gm, '      ')}\n`, top }));
  t.teardown(() => running.stop());
  return running;
}

const rolloutOf = (running: RunningVeer) => readRollout<Rollout>(running);
const historyOf = (running: RunningVeer) => readHistory<HistoryEntry>(running);

t.test('a pre-rollout hook that fails or cannot be reached changes nothing; one that answers 2xx lets the rollout start', async (t) => {
  const { v1, v2 } = await upstreams(t);
  let status = 500;
  const hooks = await hookServer(t, () => status);
  const running = await veer(t, v1, v2, `canary: v2\nsteps: [{ weight: 20, pause: 1m }, { weight: 100 }]\nhooks:\n  - { type: pre-rollout, url: "${hooks.url}/smoke?token=s3cret", headers: { x-hook-token: "\${HOOK_TOKEN:-t0ken}" } }`);
  const historyBefore = (await historyOf(running)).length;

  const refused = await admin<{ error: { code: string; message: string; hook: HookCall } }>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout');
  t.equal(refused.status, 424);
  t.equal(refused.body.error.code, 'hook_failed');
  t.match(refused.body.error.message, /pre-rollout hook http:\/\/127\.0\.0\.1:\d+\/smoke answered 500 in \d+ms: no; the rollout of svc did not start and nothing changed/);
  t.match(refused.body.error.hook, { type: 'pre-rollout', status: 500, ok: false, error: 'answered 500: no' });
  t.notMatch(JSON.stringify(refused.body), /s3cret|t0ken/, 'neither the query string nor a header value is shown');
  t.equal((await admin(running.adminUrl, 'GET', '/api/v1/services/svc/rollout')).status, 404, 'no rollout');
  t.same(weightsOf(running), { v1: 100, v2: 0 }, 'weights unchanged');
  t.equal((await historyOf(running)).length, historyBefore, 'no history line');

  const call = hooks.on('/smoke?token=s3cret')[0]!;
  t.equal(call.headers['x-hook-token'], 't0ken', 'header value from the config, ${VAR} filled');
  t.equal(call.headers['content-type'], 'application/json');
  t.match(call.body, { service: 'svc', canary: 'v2', stable: ['v1'], phase: 'starting', step: { index: 0, count: 2, weight: 20 }, weights: { v1: 100, v2: 0 }, analysis: null, metadata: { hook: 'pre-rollout' } });

  // Down: connection refused.
  const down = await veer(t, v1, v2, `canary: v2\nsteps: [{ weight: 20 }]\nhooks: [{ type: pre-rollout, url: "http://127.0.0.1:${await freePort()}/smoke" }]`);
  const unreachable = await admin<{ error: { code: string; message: string } }>(down.adminUrl, 'POST', '/api/v1/services/svc/rollout');
  t.equal(unreachable.body.error.code, 'hook_failed');
  t.match(unreachable.body.error.message, /unreachable: ECONNREFUSED/);
  t.same(weightsOf(down), { v1: 100, v2: 0 });

  status = 204;
  const started = await admin<Rollout>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout');
  t.equal(started.status, 201);
  t.same(weightsOf(running), { v1: 80, v2: 20 });
  const start = (await historyOf(running)).at(-1)!;
  t.equal(start.action, 'rollout.start');
  t.match(start.details?.hooks, [{ type: 'pre-rollout', status: 204, ok: true }], 'the start line records the hook call');
  t.ok(start.details!.hooks![0]!.durationMs >= 0);
  t.equal(start.details!.hooks![0]!.url, `${hooks.url}/smoke`, 'recorded without the query string');
});

t.test('confirm-promotion: the plan waits at its last step until the gate answers 2xx; promote overrides it', async (t) => {
  const { v1, v2 } = await upstreams(t);
  let gateOpen = false;
  const hooks = await hookServer(t, () => (gateOpen ? 200 : 403));
  // failureLimit 1000: a check failed by a loaded machine's latency noise must not abort this test's rollouts.
  const plan = `canary: v2\nsteps: [{ weight: 50, pause: 200ms }, { weight: 100 }]\nanalysis: { interval: 150ms, minRequests: 1, failureLimit: 1000 }\nhooks: [{ type: confirm-promotion, url: "${hooks.url}/approve" }]`;
  const running = await veer(t, v1, v2, plan);
  const load = startLoad(running.url, 4);
  t.teardown(() => load.stop());
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201);
  t.ok(await until(async () => (await rolloutOf(running)).pausedBy === 'confirm-promotion', 10_000), 'held for confirm-promotion');
  const held = await rolloutOf(running);
  t.match(held, { phase: 'paused', step: 0, reason: /waiting for confirm-promotion: step 1 paused 200ms and the last check passed; the last step gives v2 100%/ });
  t.same(weightsOf(running), { v1: 50, v2: 50 }, 'the canary stays at the last step before 100%');
  t.ok(await until(() => hooks.on('/approve').length >= 4, 3000), 'asked again each interval');
  const holding = await rolloutOf(running);
  t.match(holding.confirmPromotion, { last: [{ status: 403, ok: false }] });
  t.ok(holding.confirmPromotion!.asked >= 3);
  t.match(hooks.on('/approve')[0]!.body, { phase: 'paused', step: { index: 0, weight: 50 }, metadata: { hook: 'confirm-promotion' } });
  const resume = await admin<{ error: { code: string; message: string } }>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout/resume');
  t.equal(resume.status, 409, 'resume does not bypass the gate');
  t.match(resume.body.error.message, /waits for its confirm-promotion hook; promote overrides it/);
  const gateLines = (await historyOf(running)).filter((h) => h.action === 'rollout.gate');
  t.equal(gateLines.length, 1, 'one history line while the answer stays the same');
  t.match(gateLines[0], { actor: 'rollout', reason: /confirm-promotion holds the promotion: confirm-promotion hook http:\/\/127\.0\.0\.1:\d+\/approve answered 403/, details: { hooks: [{ status: 403 }] } });

  gateOpen = true;
  t.ok(await until(async () => (await rolloutOf(running)).phase === 'promoted', 5000), 'released: promoted');
  t.same(weightsOf(running), { v1: 0, v2: 100 });
  const promoted = (await historyOf(running)).findLast((h) => h.action === 'rollout.promote')!;
  t.match(promoted, { actor: 'rollout', reason: /promoted: confirm-promotion: confirm-promotion hook .*\/approve answered 200/, details: { hooks: [{ type: 'confirm-promotion', status: 200, ok: true }] } });

  // A person's promote does not ask the gate.
  gateOpen = false;
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201);
  t.ok(await until(async () => (await rolloutOf(running)).pausedBy === 'confirm-promotion', 10_000), 'held again');
  const promote = await admin<Rollout>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout/promote');
  t.equal(promote.status, 200);
  t.match(promote.body, { phase: 'promoted', reason: /promote by api/ });
  t.same(weightsOf(running), { v1: 0, v2: 100 });
  // A call already in flight when the promote landed may still arrive; none after it.
  await new Promise((r) => setTimeout(r, 100));
  const asked = hooks.on('/approve').length;
  await new Promise((r) => setTimeout(r, 500));
  t.equal(hooks.on('/approve').length, asked, 'the gate is not asked after the promote');
});

t.test('event hooks receive every transition, post-rollout hooks the end; each call is a history line', async (t) => {
  const { v1, v2 } = await upstreams(t);
  const hooks = await hookServer(t);
  const running = await veer(
    t,
    v1,
    v2,
    `canary: v2\nsteps: [{ weight: 10, pause: 1m }, { weight: 30 }, { weight: 100 }]\nhooks:\n  - { type: event, url: "${hooks.url}/events", headers: { authorization: "Bearer \${HOOK_TOKEN:-abc}" } }\n  - { type: post-rollout, url: "${hooks.url}/post" }`,
  );
  const act = async (verb: string) => t.equal((await admin(running.adminUrl, 'POST', `/api/v1/services/svc/rollout${verb}`)).status, verb === '' ? 201 : 200, `rollout${verb}`);
  await act(''); // progressing, step 1
  await act('/pause'); // paused (operator)
  await act('/resume'); // progressing
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/services/svc/rollout/promote')).status, 200); // promoted
  await act(''); // a second rollout...
  await act('/abort'); // ...aborted
  t.ok(await until(() => hooks.on('/events').length === 6 && hooks.on('/post').length === 2, 3000), 'every transition delivered');
  t.same(
    hooks.on('/events').map((r) => [r.body.metadata.action, r.body.phase]),
    [
      ['rollout.start', 'progressing'],
      ['rollout.pause', 'paused'],
      ['rollout.resume', 'progressing'],
      ['rollout.promote', 'promoted'],
      ['rollout.start', 'progressing'],
      ['rollout.abort', 'aborted'],
    ],
    'in order, every phase',
  );
  const promote = hooks.on('/events')[3]!;
  t.match(promote.body, { service: 'svc', canary: 'v2', stable: ['v1'], weights: { v1: 0, v2: 100 }, metadata: { hook: 'event', actor: /^api/, reason: /^promoted/ } });
  t.equal(promote.headers.authorization, 'Bearer abc');
  t.same(hooks.on('/post').map((r) => r.body.phase), ['promoted', 'aborted']);
  t.ok(
    await until(async () => (await historyOf(running)).filter((h) => h.action === 'rollout.hook').length === 8, 3000),
    'one history line per call',
  );
  const lines = (await historyOf(running)).filter((h) => h.action === 'rollout.hook');
  t.match(lines[0], { actor: 'rollout', reason: /^event hook http:\/\/127\.0\.0\.1:\d+\/events answered 200 in \d+ms$/, details: { hook: { type: 'event', status: 200, ok: true } } });
  t.ok(lines.every((l) => typeof l.details?.hook?.durationMs === 'number'));
  t.notMatch(JSON.stringify(await historyOf(running)), /Bearer abc/, 'header values are never recorded');
});

t.test('a rollout hook that answers non-2xx fails its checks, and the rollout is aborted', async (t) => {
  const { v1, v2 } = await upstreams(t);
  const hooks = await hookServer(t, () => 503);
  const running = await veer(t, v1, v2, `canary: v2\nsteps: [{ weight: 50, pause: 1m }, { weight: 100 }]\nanalysis: { interval: 150ms, minRequests: 1, failureLimit: 2 }\nhooks: [{ type: rollout, url: "${hooks.url}/check" }]`);
  const load = startLoad(running.url, 4);
  t.teardown(() => load.stop());
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201);
  t.ok(await until(async () => (await rolloutOf(running)).phase === 'aborted', 3000), 'aborted');
  const rollout = await rolloutOf(running);
  // (Under a loaded machine veer's own latency check may fail the same checks too: the hook's failure is named either way.)
  t.match(rollout.reason, /analysis failed 2 checks in a row: (.*; )?rollout hook http:\/\/127\.0\.0\.1:\d+\/check answered 503: no/);
  t.match(rollout.lastAnalysis, { verdict: 'fail', hooks: [{ type: 'rollout', status: 503, ok: false }] });
  t.equal(hooks.on('/check').length, 2, 'called before each check');
  t.match(hooks.on('/check')[0]!.body, { phase: 'progressing', metadata: { hook: 'rollout' } });
  t.same(weightsOf(running), { v1: 100, v2: 0 });
});

t.test('a hook server that hangs slows neither routing nor the engine', async (t) => {
  const { v1, v2 } = await upstreams(t);
  const hooks = await hookServer(t, () => 'hang');
  const running = await veer(
    t,
    v1,
    v2,
    `canary: v2\nsteps: [{ weight: 20, pause: 300ms }, { weight: 50, pause: 300ms }, { weight: 100 }]\nhooks:\n  - { type: event, url: "${hooks.url}/events", timeout: 30s }\n  - { type: post-rollout, url: "http://127.0.0.1:${await freePort()}/down" }`,
  );
  /** Latency of `n` sequential requests, in ms, sorted. */
  const latencies = async (n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const res = await fetch(running.url);
      await res.arrayBuffer();
      out.push(performance.now() - t0);
    }
    return out.sort((a, b) => a - b);
  };
  const pct = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  await latencies(50); // warm up
  const before = await latencies(200);
  const started = performance.now();
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201, 'the start answers at once');
  t.ok(performance.now() - started < 1000, 'the start did not wait for the event hook');
  t.ok(await until(() => hooks.hanging.length >= 1, 2000), 'the event hook was called and hangs');
  const during = await latencies(200);
  t.comment(`request latency p50/p99 before ${pct(before, 0.5).toFixed(2)}/${pct(before, 0.99).toFixed(2)} ms, while the hook hangs ${pct(during, 0.5).toFixed(2)}/${pct(during, 0.99).toFixed(2)} ms`);
  // Loose bounds (a busy CI machine adds noise of its own); a request that waited for the hook would take 30 s.
  t.ok(pct(during, 0.5) <= pct(before, 0.5) * 2 + 25, 'median latency unchanged (within 2x + 25 ms)');
  t.ok(during.at(-1)! < 1000, `no request waits for the hook (slowest ${during.at(-1)!.toFixed(1)} ms; the hook hangs for 30 s)`);
  t.ok(await until(async () => (await rolloutOf(running)).phase === 'promoted', 5000), 'the engine went through every step and promoted meanwhile');
  const history = await historyOf(running);
  const tookMs = Date.parse(history.findLast((h) => h.action === 'rollout.promote')!.at) - Date.parse(history.findLast((h) => h.action === 'rollout.start')!.at);
  t.ok(tookMs < 2000, `on the plan's time (600 ms of pauses), not the hook's: ${tookMs} ms from start to promote`);
  t.equal(hooks.hanging.length, 1, 'deliveries to one URL go in order: the next waits for the hanging one');
  t.same(weightsOf(running), { v1: 0, v2: 100 });
});
