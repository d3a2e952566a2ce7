// Scale-out on a real etcd: three veer replicas (in-process, each with its
// own admin port) share one etcd prefix. Changes propagate, concurrent
// writes never get lost, the leader's death hands rollouts over at the same
// step, and etcd going away leaves traffic on the last weights.

import t from 'tap';
import type { EtcdStore } from '../../src/state/index.ts';
import { admin, countVersions, until } from '../helpers/admin.ts';
import { etcdMissing, startEtcd, uniquePrefix, type TestEtcd } from '../helpers/etcd.ts';
import type { TestScope } from '../helpers/http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstreams.ts';
import { runVeer, serviceConfig, spawnVeer, writeConfig, type RunningVeer } from '../helpers/veer.ts';

/** Why these tests are skipped (etcd not installed), or false. */
const skip = etcdMissing() ?? false;
let etcd: TestEtcd;
let v1: TestUpstream;
let v2: TestUpstream;
t.before(async () => {
  if (skip !== false) return;
  etcd = await startEtcd();
  v1 = await startUpstream('v1');
  v2 = await startUpstream('v2');
});
t.teardown(async () => {
  await v1?.close();
  await v2?.close();
  await etcd?.destroy();
});

interface Replicas {
  revision: number;
  allApplied: boolean;
  self: string;
  leader: string | null;
  replicas: { id: string; applied: number }[];
}
interface Rollout {
  phase: string;
  step: number;
  canaryWeight: number;
}
interface HistoryLine {
  seq: number;
  actor: string;
  action: string;
  before: Record<string, number>;
  after: Record<string, number>;
}

function configFor(prefix: string, extra = ''): string {
  return serviceConfig({
    versions: { v1: v1.url, v2: v2.url },
    weights: { v1: 100, v2: 0 },
    sticky: '{ header: x-user-id }',
    top: `state: { store: etcd, etcd: { endpoints: [${etcd.endpoint}], prefix: "${prefix}" } }`,
    extra,
  });
}

async function replicas(t: TestScope, prefix: string, count: number, extra = ''): Promise<RunningVeer[]> {
  const out: RunningVeer[] = [];
  for (let i = 0; i < count; i++) {
    const running = await runVeer(configFor(prefix, extra));
    t.teardown(() => running.stop());
    out.push(running);
  }
  return out;
}

const weightsOf = (r: RunningVeer) => r.veer.state.table.servicesByName.get('svc')!.split.weights;
const idOf = (r: RunningVeer) => (r.veer.runtime.store as EtcdStore).replicaId;
const leads = (r: RunningVeer) => r.veer.runtime.leadership.isLeader();
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
const rolloutOf = async (r: RunningVeer) => (await admin<Rollout>(r.adminUrl, 'GET', '/api/v1/services/svc/rollout')).body;

t.test('a weight change through A routes the same on B and C within one second', { skip }, async (t) => {
  const [a, b, c] = await replicas(t, uniquePrefix(), 3);
  const samples: number[] = [];
  const afterAnswer: number[] = [];
  for (let i = 1; i <= 20; i++) {
    const weights = { v1: 100 - i * 5, v2: i * 5 };
    const sent = performance.now();
    const put = await admin(a!.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights } });
    t.equal(put.status, 200, `change ${i} accepted`);
    const answered = performance.now();
    const arrived = await until(() => weightsOf(b!).v2 === weights.v2 && weightsOf(c!).v2 === weights.v2, 2000, 1);
    samples.push(performance.now() - sent);
    afterAnswer.push(performance.now() - answered);
    t.ok(arrived, `change ${i} reached B and C`);
  }
  samples.sort((x, y) => x - y);
  afterAnswer.sort((x, y) => x - y);
  const p50 = percentile(samples, 0.5);
  const p99 = percentile(samples, 0.99);
  t.comment(`propagation A -> B and C over ${samples.length} changes (PUT sent until both tables swapped): p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
  t.comment(`  of which after A answered the PUT: p50 ${percentile(afterAnswer, 0.5).toFixed(1)} ms, p99 ${percentile(afterAnswer, 0.99).toFixed(1)} ms`);
  t.ok(p99 < 1000, `p99 under one second (${p99.toFixed(1)} ms)`);

  // Routes the same: every sticky user lands on the same version through every replica.
  await admin(a!.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights: { v1: 50, v2: 50 } } });
  t.ok(await until(() => weightsOf(b!).v2 === 50 && weightsOf(c!).v2 === 50, 1000, 1));
  const versionFor = async (r: RunningVeer, user: string) => {
    const res = await fetch(r.url, { headers: { 'x-user-id': user } });
    await res.text();
    return res.headers.get('x-veer-version');
  };
  let differ = 0;
  const seen = new Set<string | null>();
  for (let u = 0; u < 40; u++) {
    const [va, vb, vc] = await Promise.all([versionFor(a!, `user-${u}`), versionFor(b!, `user-${u}`), versionFor(c!, `user-${u}`)]);
    seen.add(va);
    if (va !== vb || va !== vc) differ++;
  }
  t.equal(differ, 0, 'every user gets the same version on A, B and C');
  t.same([...seen].sort(), ['v1', 'v2'], 'and both versions serve');

  const view = (await admin<{ replicas: Replicas }>(b!.adminUrl, 'GET', '/api/v1/services/svc')).body.replicas;
  t.equal(view.replicas.length, 3, 'GET /services/svc lists the three live replicas');
  t.ok(await until(async () => (await admin<{ replicas: Replicas }>(c!.adminUrl, 'GET', '/api/v1/services/svc')).body.replicas.allApplied, 2000), 'and says when all have applied the current revision');
});

t.test('concurrent changes through A and B: each is recorded or refused with 409 and the current state, never lost', { skip }, async (t) => {
  const [a, b, c] = await replicas(t, uniquePrefix(), 3);
  let accepted = 0;
  let refused = 0;
  for (let round = 1; round <= 20; round++) {
    const [ra, rb] = await Promise.all([
      admin<{ error?: { code: string; current?: { revision: number; weights?: Record<string, number> } } }>(a!.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights: { v1: round, v2: 100 } } }),
      admin<{ error?: { code: string; current?: { revision: number; weights?: Record<string, number> } } }>(b!.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights: { v1: 100, v2: round } } }),
    ]);
    for (const res of [ra, rb]) {
      if (res.status === 200) accepted++;
      else {
        refused++;
        t.equal(res.status, 409, `round ${round}: a loser gets 409`);
        t.equal(res.body.error?.code, 'conflict');
        t.ok(res.body.error?.current?.weights !== undefined && res.body.error.current.revision > 0, 'with the current state');
      }
    }
  }
  t.comment(`20 rounds of two concurrent PUTs: ${accepted} recorded, ${refused} refused with 409`);
  t.ok(accepted >= 20, 'at least one change per round lands');
  t.ok(await until(() => JSON.stringify(weightsOf(a!)) === JSON.stringify(weightsOf(b!)) && JSON.stringify(weightsOf(b!)) === JSON.stringify(weightsOf(c!)), 2000), 'the replicas converge');
  const history = (await admin<{ history: HistoryLine[] }>(c!.adminUrl, 'GET', '/api/v1/history?limit=1000')).body.history;
  t.equal(history.length, accepted, 'one history line per accepted change, none lost');
  let chained = true;
  for (let i = 1; i < history.length; i++) if (JSON.stringify(history[i]!.before) !== JSON.stringify(history[i - 1]!.after)) chained = false;
  t.ok(chained, "each change starts where the previous one ended: nobody overwrote a change they had not seen");
  t.ok(history.every((h, i) => i === 0 || h.seq > history[i - 1]!.seq), 'seq increases');
  t.same(weightsOf(c!), history.at(-1)!.after, 'the last recorded change is what every replica serves');
});

t.test('a shift started through a follower is moved by the leader alone, each step once', { skip }, async (t) => {
  const all = await replicas(t, uniquePrefix(), 3);
  t.ok(await until(() => all.filter(leads).length === 1, 3000), 'one leader');
  const follower = all.find((r) => !leads(r))!;
  t.equal((await admin(follower.adminUrl, 'POST', '/api/v1/services/svc/shift', { body: { to: 'v2', step: 25, every: '200ms' } })).status, 200);
  t.ok(await until(() => all.every((r) => weightsOf(r).v2 === 100), 3000), 'every replica ends at 100% v2');
  const history = (await admin<{ history: HistoryLine[] }>(follower.adminUrl, 'GET', '/api/v1/history')).body.history;
  t.same(
    history.map((h) => [h.action, h.after.v2]),
    [
      ['shift.start', 25],
      ['shift.step', 50],
      ['shift.step', 75],
      ['shift.done', 100],
    ],
  );
  t.ok(history.slice(1).every((h) => h.actor === 'shift'), 'the automatic moves are by the shift');
});

t.test('the leader stopped mid-rollout: another replica continues from the same step', { skip }, async (t) => {
  const plan = '    rollout: { canary: v2, steps: [{ weight: 20, pause: 300ms }, { weight: 50, pause: 1500ms }, { weight: 80, pause: 300ms }, { weight: 100 }] }\n';
  const all = await replicas(t, uniquePrefix(), 3, plan);
  t.ok(await until(() => all.filter(leads).length === 1, 3000), 'one leader');
  const leader = all.find(leads)!;
  const followers = all.filter((r) => r !== leader);
  t.equal((await admin(followers[0]!.adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201, 'a rollout started through a follower');
  t.ok(await until(async () => (await rolloutOf(followers[1]!)).step === 1, 3000, 10), 'the leader drove it to step 2');
  const view = (await admin<{ replicas: Replicas }>(followers[1]!.adminUrl, 'GET', '/api/v1/services/svc')).body.replicas;
  t.equal(view.leader, idOf(leader), 'GET /services/svc names the leader');

  const stopped = performance.now();
  await leader.stop();
  t.ok(await until(() => followers.some(leads), 5000, 2), 'a follower takes over');
  const failoverMs = performance.now() - stopped;
  const heir = followers.find(leads)!;
  t.match(await rolloutOf(heir), { phase: 'progressing', step: 1, canaryWeight: 50 }, 'at the same step');
  t.ok(await until(async () => (await rolloutOf(heir)).step === 2, 4000, 5), 'and moves on when the step’s pause is over');
  const continuedMs = performance.now() - stopped;
  t.ok(await until(async () => (await rolloutOf(heir)).phase === 'promoted', 3000), 'and on to the end: promoted');
  t.comment(`fail-over after a graceful stop of the leader: new leader in ${failoverMs.toFixed(0)} ms; next step taken ${continuedMs.toFixed(0)} ms after the stop (the rest of the step's 1500 ms pause)`);
  const history = (await admin<{ history: HistoryLine[] }>(heir.adminUrl, 'GET', '/api/v1/history')).body.history;
  t.same(
    history.map((h) => [h.action, h.after.v2]),
    [
      ['rollout.start', 20],
      ['rollout.step', 50],
      ['rollout.step', 80],
      ['rollout.promote', 100],
    ],
    'no step skipped or taken twice',
  );
});

t.test('the leader killed (SIGKILL) mid-rollout: its lease expires and another continues from the same step', { skip }, async (t) => {
  const prefix = uniquePrefix();
  const plan = '    rollout: { canary: v2, steps: [{ weight: 30, pause: 200ms }, { weight: 60, pause: 1s }, { weight: 100 }] }\n';
  // The leader is a real process, so it can die without a word.
  const child = spawnVeer(['serve', '--config', writeConfig(configFor(prefix, plan).replace('log: { level: silent }', 'log: { level: info }'))]);
  t.teardown(() => {
    if (child.child.exitCode === null && child.child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  });
  const serving = await child.waitForLog('veer is serving');
  // It may win the lease before or after it logs that it serves.
  t.ok(await until(() => child.output().includes('"msg":"this replica now leads: it drives rollouts and shifts"'), 15_000), 'the first replica leads');
  const childAdmin = `http://${String(serving.admin)}`;
  const [b, c] = await replicas(t, prefix, 2, plan);
  t.equal((await admin(childAdmin, 'POST', '/api/v1/services/svc/rollout')).status, 201);
  t.ok(await until(async () => (await rolloutOf(b!)).step === 1, 3000, 10), 'step 2 reached');
  const exited = child.exited;
  const killed = performance.now();
  process.kill(child.pid, 'SIGKILL');
  await exited;
  t.ok(await until(() => leads(b!) || leads(c!), 8000, 5), 'a replica takes over once the lease expires');
  const failoverMs = performance.now() - killed;
  const heir = leads(b!) ? b! : c!;
  // The step's 1 s pause ran out while nobody led: the heir takes the next step as soon as it leads.
  t.ok(await until(async () => (await rolloutOf(heir)).phase === 'promoted', 3000, 5), 'the heir finishes the rollout');
  const continuedMs = performance.now() - killed;
  const history = (await admin<{ history: (HistoryLine & { at: string })[] }>(heir.adminUrl, 'GET', '/api/v1/history')).body.history;
  t.same(
    history.map((h) => [h.action, h.after.v2]),
    [
      ['rollout.start', 30],
      ['rollout.step', 60],
      ['rollout.promote', 100],
    ],
    'from the stored step: none skipped or repeated',
  );
  t.ok(Date.parse(history[2]!.at) >= Date.now() - continuedMs - 5, 'the last step was taken after the kill, by the heir');
  t.comment(`fail-over after SIGKILL of the leader: new leader in ${failoverMs.toFixed(0)} ms (lease TTL 3 s); next step ${continuedMs.toFixed(0)} ms after the kill`);
  t.ok(failoverMs < 7000, 'within about two lease TTLs');
});

t.test('etcd down: traffic keeps the last weights, /readyz ready but degraded, writes 503; back: writes work again', { skip }, async (t) => {
  const prefix = uniquePrefix();
  const [a, b] = await replicas(t, prefix, 2);
  t.equal((await admin(a!.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights: { v1: 0, v2: 100 } } })).status, 200);
  t.ok(await until(() => weightsOf(b!).v2 === 100, 1000));
  const historyBefore = (await admin<{ history: HistoryLine[] }>(a!.adminUrl, 'GET', '/api/v1/history')).body.history.length;

  await etcd.stop();
  t.teardown(async () => {
    if (etcd.pid() === null) await etcd.start();
  });
  t.same(await countVersions(a!.url, 20), { v2: 20 }, 'A serves the last weights');
  t.same(await countVersions(b!.url, 20), { v2: 20 }, 'B serves the last weights');
  const started = performance.now();
  const refused = await admin<{ error: { code: string } }>(a!.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights: { v1: 100, v2: 0 } } });
  t.equal(refused.status, 503, 'a write gets 503');
  t.equal(refused.body.error.code, 'store_unavailable');
  t.comment(`the first write after etcd died was refused after ${(performance.now() - started).toFixed(0)} ms`);
  t.same(weightsOf(a!), { v1: 0, v2: 100 }, 'and changed nothing');
  t.ok(await until(async () => (await admin<{ store: { status: string } }>(b!.adminUrl, 'GET', '/readyz')).body.store.status === 'degraded', 4000), 'the store is reported degraded');
  const ready = await admin<{ status: string; store: { status: string; error: string; serving: string } }>(b!.adminUrl, 'GET', '/readyz');
  t.equal(ready.status, 200, '/readyz still says ready: the data plane is fine');
  t.match(ready.body, { status: 'ready', store: { status: 'degraded', error: /etcd unreachable/, serving: 'the last known weights' } });
  const fast = await admin<{ error: { code: string } }>(b!.adminUrl, 'POST', '/api/v1/services/svc/shift', { body: { to: 'v1', step: 10, every: '1s' } });
  t.equal(fast.status, 503, 'any write gets 503 while etcd is away');

  // A replica that starts while etcd is down serves the config's weights and says so.
  const late = await runVeer(configFor(prefix));
  t.teardown(() => late.stop());
  t.same(weightsOf(late), { v1: 100, v2: 0 }, "a replica started without etcd serves the config's weights");
  t.match((await admin(late.adminUrl, 'GET', '/readyz')).body, { status: 'ready', store: { status: 'degraded', serving: /config's initial weights/ } });

  await etcd.start();
  const back = performance.now();
  t.ok(await until(async () => (await admin(a!.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights: { v1: 25, v2: 75 } } })).status === 200, 8000, 100), 'writes work again');
  t.comment(`writes accepted again ${(performance.now() - back).toFixed(0)} ms after etcd came back`);
  t.ok(await until(() => weightsOf(b!).v2 === 75 && weightsOf(late).v2 === 75, 3000), 'and reach every replica, the late one too');
  const history = (await admin<{ history: HistoryLine[] }>(late.adminUrl, 'GET', '/api/v1/history')).body.history;
  t.equal(history.length, historyBefore + 1, 'the refused writes left no history');
  t.match((await admin(late.adminUrl, 'GET', '/readyz')).body, { status: 'ready', store: { status: 'ok' } });
});
