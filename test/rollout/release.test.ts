// Releases end to end: real veer, real upstreams, real traffic, real timers.
// Every member's canary moves in one state change; a failing member aborts all.

import t from 'tap';
import { admin, until } from '../helpers/admin.ts';
import type { TestScope } from '../helpers/http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstreams.ts';
import { runVeer, runVeerIn, startVeerOn, type RunningVeer } from '../helpers/veer.ts';
import { weightsOf } from '../helpers/rollouts.ts';
import { historyLinesOf, loadMembers, releaseConfig, releaseStatusOf } from '../helpers/releases.ts';

interface Member {
  canary: string;
  stable: string | null;
  labels: Record<string, string>;
  weights: Record<string, number>;
  lastAnalysis: { verdict: string; reasons: string[] } | null;
}
interface Release {
  name: string;
  phase: string;
  step: number | null;
  canaryWeight: number;
  reason: string | null;
  rollbackUntil: string | null;
  members: Record<string, Member>;
}
interface HistoryEntry {
  seq: number;
  service: string;
  action: string;
  after: Record<string, number>;
  details?: { members?: Record<string, { canary: string; labels: Record<string, string> }> };
}

/** Four upstreams: frontend v1/v2, cart v4/v5; `failing.on` makes cart v5 answer 500. */
async function upstreams(t: TestScope) {
  const failing = { on: false };
  const list: TestUpstream[] = [
    await startUpstream('front-v1'),
    await startUpstream('front-v2'),
    await startUpstream('cart-v4'),
    await startUpstream('cart-v5', (_req, res) => {
      if (failing.on) res.writeHead(500).end('boom');
      else res.end('ok');
    }),
  ];
  t.teardown(() => Promise.all(list.map((u) => u.close())));
  return { urls: list.map((u) => u.url), failing };
}

const veer = runVeerIn;

const statusOf = (running: RunningVeer) => releaseStatusOf<Release>(running);
const historyOf = (running: RunningVeer) => historyLinesOf<HistoryEntry>(running);

t.test('a healthy release moves every member together through each step and is promoted', async (t) => {
  const { urls } = await upstreams(t);
  const running = await veer(
    t,
    releaseConfig(urls, '    steps: [{ weight: 20, pause: 300ms }, { weight: 50, pause: 300ms }, { weight: 100 }]\n    analysis: { interval: 150ms, minRequests: 3, maxErrorRate: 0.05, failureLimit: 2 }\n'),
  );
  const traffic = loadMembers(t, running);
  const start = await admin<Release>(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/start');
  t.equal(start.status, 201);
  t.match(start.body, { phase: 'progressing', step: 0, canaryWeight: 20, members: { frontend: { canary: 'v2', stable: 'v1', labels: { commit: '3f2a9c1' } }, cart: { canary: 'v5', stable: 'v4' } } });
  t.same(weightsOf(running, 'frontend'), { v1: 80, v2: 20 });
  t.same(weightsOf(running, 'cart'), { v4: 80, v5: 20 });
  t.ok(await until(async () => (await statusOf(running)).phase === 'promoted', 10_000), 'promoted');
  await traffic.stop();
  t.same(weightsOf(running, 'frontend'), { v1: 0, v2: 100 });
  t.same(weightsOf(running, 'cart'), { v4: 0, v5: 100 });
  const status = await statusOf(running);
  t.equal(status.members.cart!.lastAnalysis?.verdict, 'pass', "the last check of each member's canary is shown");
  const lines = (await historyOf(running)).filter((e) => e.service === 'release:checkout-2.3');
  t.same(
    lines.map((e) => e.action),
    ['release.start', 'release.step', 'release.step', 'release.promote'],
  );
  // One history line per step, naming both members: they changed in the same command.
  t.match(lines[1]!.after, { 'frontend/v2': 50, 'cart/v5': 50 });
  t.same(lines[0]!.details?.members?.cart, { canary: 'v5', stable: 'v4', labels: { commit: '3f2a9c1' } }, "the history names each canary and its labels");
  const metrics = (await admin<string>(running.adminUrl, 'GET', '/metrics')).body;
  t.match(metrics, /veer_release_info\{release="checkout-2\.3",phase="promoted"\} 1/);
  t.match(metrics, /veer_version_info\{service="cart",version="v5",label_commit="3f2a9c1"\} 1/);
});

t.test('one failing member aborts the release and every member goes back at once', async (t) => {
  const { urls, failing } = await upstreams(t);
  failing.on = true;
  const running = await veer(t, releaseConfig(urls, '    steps: [{ weight: 50, pause: 10s }, { weight: 100 }]\n    analysis: { interval: 150ms, minRequests: 3, maxErrorRate: 0.05, failureLimit: 2 }\n'));
  const traffic = loadMembers(t, running);
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/start')).status, 201);
  t.ok(await until(async () => (await statusOf(running)).phase === 'aborted', 8000), 'aborted');
  await traffic.stop();
  t.same(weightsOf(running, 'frontend'), { v1: 100, v2: 0 }, 'the healthy member went back too');
  t.same(weightsOf(running, 'cart'), { v4: 100, v5: 0 });
  const status = await statusOf(running);
  t.match(status.reason, /cart: canary error ratio/);
  t.equal(status.members.cart!.lastAnalysis?.verdict, 'fail');
  const abort = (await historyOf(running)).find((e) => e.action === 'release.abort')!;
  t.match(abort.after, { 'frontend/v1': 100, 'frontend/v2': 0, 'cart/v4': 100, 'cart/v5': 0 }, 'one history line: both members in one change');
});

t.test('a release and a member rollout refuse each other with 409', async (t) => {
  const { urls } = await upstreams(t);
  const yaml = releaseConfig(urls, '    steps: [{ weight: 10 }, { weight: 100 }]\n').replace(
    '    split: { weights: { v4: 100, v5: 0 }, sticky: { header: x-user } }',
    '    split: { weights: { v4: 100, v5: 0 }, sticky: { header: x-user } }\n    rollout: { canary: v5, steps: [{ weight: 10 }] }',
  );
  const running = await veer(t, yaml);
  const rollout = await admin<{ error: { code: string } }>(running.adminUrl, 'POST', '/api/v1/services/cart/rollout');
  t.equal(rollout.status, 201);
  const refused = await admin<{ error: { code: string; message: string } }>(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/start');
  t.equal(refused.status, 409);
  t.equal(refused.body.error.code, 'rollout_conflict');
  t.same(weightsOf(running, 'frontend'), { v1: 100, v2: 0 }, 'nothing changed in the other member');
  t.equal((await statusOf(running)).phase, 'idle');
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/services/cart/rollout/abort')).status, 200);
  const rolloutLines = (await admin<{ history: { service: string; action: string; details?: { labels?: Record<string, string> } }[] }>(running.adminUrl, 'GET', '/api/v1/history')).body.history.filter((e) => e.service === 'cart');
  t.same(rolloutLines.map((e) => [e.action, e.details?.labels]), [['rollout.start', { commit: '3f2a9c1' }], ['rollout.abort', { commit: '3f2a9c1' }]], "a rollout's history lines carry the canary's labels");

  const started = await admin<Release>(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/start');
  t.equal(started.status, 201);
  t.match(started.body, { phase: 'paused', step: 0, canaryWeight: 10 }, 'a step without pause waits for resume');
  for (const [method, path, body] of [
    ['POST', '/api/v1/services/cart/rollout', undefined],
    ['PUT', '/api/v1/services/frontend/weights', { weights: { v1: 50, v2: 50 } }],
    ['POST', '/api/v1/services/frontend/shift', { to: 'v2', step: 10, every: '1s' }],
  ] as const) {
    const answer = await admin<{ error: { code: string } }>(running.adminUrl, method, path, body === undefined ? {} : { body });
    t.equal(answer.status, 409, `${method} ${path}`);
    t.equal(answer.body.error.code, 'release_holds_service', `${method} ${path}`);
  }
  t.same(weightsOf(running, 'frontend'), { v1: 90, v2: 10 });
  // The verbs.
  t.match((await admin<Release>(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/resume')).body, { phase: 'progressing', step: 1, canaryWeight: 100 });
  t.ok(await until(async () => (await statusOf(running)).phase === 'promoted', 5000));
  t.equal((await admin<Release>(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/abort')).body.phase, 'rolledBack', 'abort after the promotion rolls back');
  const again = await admin<{ error: { code: string } }>(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/abort');
  t.equal(again.status, 404);
  t.equal(again.body.error.code, 'no_release');
  t.equal((await admin<{ error: { code: string } }>(running.adminUrl, 'GET', '/api/v1/releases/nope')).body.error.code, 'no_release');
  const list = await admin<{ releases: Release[] }>(running.adminUrl, 'GET', '/api/v1/releases');
  t.same(list.body.releases.map((r) => [r.name, r.phase]), [['checkout-2.3', 'rolledBack']]);
});

t.test('a restarted veer picks the release up at its stored step', async (t) => {
  const { urls } = await upstreams(t);
  const first = await runVeer(releaseConfig(urls, '    steps: [{ weight: 30 }, { weight: 60, pause: 200ms }, { weight: 100 }]\n'));
  t.equal((await admin(first.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/start')).status, 201);
  await first.stop();
  const veer = await startVeerOn(first.configPath);
  const adminUrl = `http://127.0.0.1:${veer.adminAddress.port}`;
  t.teardown(() => veer.stop());
  const again = (await admin<Release>(adminUrl, 'GET', '/api/v1/releases/checkout-2.3')).body;
  t.match(again, { phase: 'paused', step: 0, canaryWeight: 30 }, 'the stored release');
  t.same(veer.state.table.servicesByName.get('cart')!.split.weights, { v4: 70, v5: 30 }, 'its weights are served again');
  t.equal((await admin(adminUrl, 'POST', '/api/v1/releases/checkout-2.3/resume')).status, 200);
  t.ok(await until(async () => (await admin<Release>(adminUrl, 'GET', '/api/v1/releases/checkout-2.3')).body.phase === 'promoted', 5000), 'the timers run again after the restart');
});

t.test('pause: forever holds a release until resume, on any step', async (t) => {
  const { urls } = await upstreams(t);
  const running = await veer(t, releaseConfig(urls, '    steps: [{ weight: 20, pause: forever }, { weight: 100, pause: forever }]\n'));
  const started = await admin<Release>(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/start');
  t.match(started.body, { phase: 'paused', step: 0, canaryWeight: 20 });
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.match((await statusOf(running)), { phase: 'paused', step: 0 }, 'still held after the timers had their chance');
  t.match((await admin<Release>(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/resume')).body, { phase: 'paused', step: 1, canaryWeight: 100 }, 'the last step holds too');
  t.same(weightsOf(running, 'frontend'), { v1: 0, v2: 100 });
  await admin(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/resume');
  t.ok(await until(async () => (await statusOf(running)).phase === 'promoted', 5000), 'resuming the held last step promotes');
});

t.test('abort after the promotion rolls every member back within the rollbackWindow, and only then', async (t) => {
  const { urls } = await upstreams(t);
  const running = await veer(t, releaseConfig(urls, '    steps: [{ weight: 100 }]\n    rollbackWindow: 2s\n'));
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/start')).status, 201);
  t.ok(await until(async () => (await statusOf(running)).phase === 'promoted', 5000));
  const promoted = await statusOf(running);
  t.ok(promoted.rollbackUntil !== null && Date.parse(promoted.rollbackUntil) > Date.now(), `rollbackUntil ${promoted.rollbackUntil}`);
  t.same(weightsOf(running, 'cart'), { v4: 0, v5: 100 });

  const rolled = await admin<Release>(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/abort', { body: { reason: 'checkout errors in prod' } });
  t.equal(rolled.status, 200);
  t.match(rolled.body, { phase: 'rolledBack', canaryWeight: 0, rollbackUntil: null, reason: /rolled back: abort by .*checkout errors in prod/ });
  t.same(weightsOf(running, 'frontend'), { v1: 100, v2: 0 }, 'frontend as before the release');
  t.same(weightsOf(running, 'cart'), { v4: 100, v5: 0 }, 'cart as before the release');
  const line = (await historyOf(running)).at(-1)!;
  t.match(line, { service: 'release:checkout-2.3', action: 'release.rollback' });
  const again = await admin<{ error: { code: string } }>(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/abort');
  t.equal(again.body.error.code, 'no_release', 'a rolled back release is over');

  // Promoted again, then the window passes: abort is refused and changes nothing.
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/start')).status, 201);
  t.ok(await until(async () => (await statusOf(running)).phase === 'promoted', 5000));
  await new Promise((resolve) => setTimeout(resolve, 2300));
  const late = await admin<{ error: { code: string; message: string } }>(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/abort');
  t.equal(late.status, 409);
  t.equal(late.body.error.code, 'rollback_window_passed');
  t.match(late.body.error.message, /more than its rollbackWindow \(2s\) ago/);
  t.same(weightsOf(running, 'cart'), { v4: 0, v5: 100 }, 'nothing changed');
  t.equal((await statusOf(running)).phase, 'promoted');
});

t.test('a release is not rolled back over a member that has moved on', async (t) => {
  const { urls } = await upstreams(t);
  const yaml = releaseConfig(urls, '    steps: [{ weight: 100 }]\n').replace(
    "    split: { weights: { v4: 100, v5: 0 }, sticky: { header: x-user } }",
    "    split: { weights: { v4: 100, v5: 0 }, sticky: { header: x-user } }\n    rollout: { canary: v4, steps: [{ weight: 10 }] }",
  );
  const running = await veer(t, yaml);
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/start')).status, 201);
  t.ok(await until(async () => (await statusOf(running)).phase === 'promoted', 5000));
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/services/cart/rollout', { body: { canary: 'v4' } })).status, 201);
  const cart = weightsOf(running, 'cart');
  const refused = await admin<{ error: { code: string; message: string } }>(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/abort');
  t.equal(refused.status, 409);
  t.equal(refused.body.error.code, 'rollout_conflict');
  t.match(refused.body.error.message, /a rollout of cart is paused since/);
  t.same(weightsOf(running, 'cart'), cart, 'cart untouched');
  t.same(weightsOf(running, 'frontend'), { v1: 0, v2: 100 }, 'frontend untouched: all members or none');
  t.equal((await statusOf(running)).phase, 'promoted');
});
