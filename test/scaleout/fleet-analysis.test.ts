// Fleet-wide analysis on a real etcd: two veer replicas (in-process, each
// with its own listeners) share one prefix; the leader's checks read the
// other replica's windows too. A canary that fails only behind the replica
// that does not lead is aborted by the leader; the status lists each
// replica's requests; etcd holds one windows key per following replica and
// none once the rollout ended.

import t from 'tap';
import { request } from 'undici';
import type { EtcdStore } from '../../src/state/index.ts';
import { admin, until } from '../helpers/admin.ts';
import { etcdMissing, startEtcd, uniquePrefix, type TestEtcd } from '../helpers/etcd.ts';
import type { TestScope } from '../helpers/http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstreams.ts';
import { runVeer, serviceConfig, type RunningVeer } from '../helpers/veer.ts';

/** Why these tests cannot run (etcd not installed): then they fail, they are not skipped. */
const missing = etcdMissing();
let etcd: TestEtcd;
let v1: TestUpstream;
let v2: TestUpstream;
t.before(async () => {
  if (missing !== null) throw new Error(`fleet analysis tests need etcd: ${missing}`);
  etcd = await startEtcd();
  v1 = await startUpstream('v1');
  // v2 fails every request that came through the replica marked bad by the test (x-via: bad), and only those.
  v2 = await startUpstream('v2', (req, res) => {
    res.statusCode = req.headers['x-via'] === 'bad' ? 500 : 200;
    res.end('v2');
  });
});
t.teardown(async () => {
  await v1?.close();
  await v2?.close();
  await etcd?.destroy();
});

interface Share {
  replica: string;
  leader: boolean;
  canary: number;
  stable: number;
  canaryErrors: number;
}
interface Rollout {
  phase: string;
  reason: string;
  lastAnalysis: { verdict: string; canary: { requests: number; errors: number }; stable: { requests: number }; replicas?: Share[] } | null;
}

const INTERVAL_MS = 500;

function configFor(prefix: string, intervalMs = INTERVAL_MS): string {
  return serviceConfig({
    versions: { v1: v1.url, v2: v2.url },
    weights: { v1: 100, v2: 0 },
    top: `state: { store: etcd, etcd: { endpoints: [${etcd.endpoint}], prefix: "${prefix}" } }`,
    extra: `    rollout: { canary: v2, steps: [{ weight: 50, pause: 1h }, { weight: 100 }], analysis: { interval: ${intervalMs}ms, minRequests: 10, maxErrorRate: 0.1, failureLimit: 2 } }\n`,
  });
}

/** Two replicas on one prefix, the leader first. */
async function leaderAndFollower(t: TestScope & { ok(value: unknown, message: string): unknown }): Promise<[RunningVeer, RunningVeer]> {
  const prefix = uniquePrefix();
  const a = await runVeer(configFor(prefix));
  t.teardown(() => a.stop());
  const b = await runVeer(configFor(prefix));
  t.teardown(() => b.stop());
  const leads = (r: RunningVeer) => r.veer.runtime.leadership.isLeader();
  t.ok(await until(() => leads(a) !== leads(b), 5000), 'one of the two leads');
  return leads(a) ? [a, b] : [b, a];
}

/** Requests through `running` until stopped (bounded), with `x-via` set to `via`. */
function load(running: RunningVeer, via: string): { stop(): Promise<void>; sent: () => number } {
  let on = true;
  let sent = 0;
  const loop = async () => {
    for (let i = 0; on && i < 50_000; i++) {
      const res = await request(running.url, { headers: { 'x-via': via } });
      await res.body.text();
      sent++;
    }
  };
  const loops = [loop(), loop()];
  return {
    sent: () => sent,
    stop: async () => {
      on = false;
      await Promise.all(loops);
    },
  };
}

const idOf = (r: RunningVeer) => (r.veer.runtime.store as EtcdStore).replicaId;
const boardOf = (r: RunningVeer) => (r.veer.runtime.store as EtcdStore).fleet;
const rolloutOf = async (r: RunningVeer) => (await admin<Rollout>(r.adminUrl, 'GET', '/api/v1/services/svc/rollout')).body;

t.test("the leader's checks count both replicas' traffic; the status lists each replica's requests", async (t) => {
  const [leader, follower] = await leaderAndFollower(t);
  t.equal((await admin(follower.adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201, 'started through the follower');
  const onLeader = load(leader, 'good');
  const onFollower = load(follower, 'good');
  t.teardown(() => Promise.all([onLeader.stop(), onFollower.stop()]));
  // A check with canary requests from both replicas, and enough of them to decide (minRequests; a busy machine sends fewer).
  const both = (r: Rollout) => {
    const shares = r.lastAnalysis?.replicas ?? [];
    return shares.length === 2 && shares.every((s) => s.canary > 0) && r.lastAnalysis!.verdict !== 'inconclusive';
  };
  let decided: Rollout | null = null;
  const found = await until(async () => {
    const r = await rolloutOf(leader);
    if (both(r)) decided = r;
    return decided !== null;
  }, 10_000);
  t.ok(found, 'a decided check with canary requests from both replicas');
  const rollout = decided! as Rollout;
  const shares = rollout.lastAnalysis!.replicas!;
  t.same(shares.map((s) => [s.replica, s.leader]).sort(), [[idOf(leader), true], [idOf(follower), false]].sort(), 'one share per replica, the leader marked');
  t.equal(shares.reduce((n, s) => n + s.canary, 0), rollout.lastAnalysis!.canary.requests, "the check's canary requests are the replicas' sum");
  t.equal(shares.reduce((n, s) => n + s.stable, 0), rollout.lastAnalysis!.stable.requests, "and so are the stable's");
  t.equal(rollout.lastAnalysis!.verdict, 'pass');
  t.same(
    (await boardOf(leader).read('svc')).map((e) => e.replica),
    [idOf(follower)],
    'etcd holds one windows key: the follower\'s (the leader reads its own directly)',
  );

  await Promise.all([onLeader.stop(), onFollower.stop()]);
  t.equal((await admin(leader.adminUrl, 'POST', '/api/v1/services/svc/rollout/promote')).status, 200);
  t.ok(await until(async () => (await boardOf(leader).read('svc')).length === 0, 3000), 'the key is gone once the rollout ended');
});

t.test('a canary that fails only behind the replica that does not lead is aborted by the leader', async (t) => {
  const [leader, follower] = await leaderAndFollower(t);
  t.equal((await admin(leader.adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201);
  const started = performance.now();
  const healthy = load(leader, 'good');
  const failing = load(follower, 'bad');
  t.teardown(() => Promise.all([healthy.stop(), failing.stop()]));
  t.ok(await until(async () => (await rolloutOf(leader)).phase === 'aborted', 8000, 20), 'aborted');
  const tookMs = performance.now() - started;
  await Promise.all([healthy.stop(), failing.stop()]);
  t.comment(`abort ${tookMs.toFixed(0)} ms after the failing traffic started behind the follower (interval ${INTERVAL_MS} ms, failureLimit 2): ${(tookMs / INTERVAL_MS).toFixed(1)} intervals`);
  t.ok(tookMs < 4 * INTERVAL_MS, `within four intervals (${tookMs.toFixed(0)} ms)`);
  const rollout = await rolloutOf(leader);
  t.match(rollout.reason, /analysis failed 2 checks in a row: canary error ratio .* is over maxErrorRate 10\.00%/);
  const shares = rollout.lastAnalysis!.replicas!;
  const mine = shares.find((s) => s.replica === idOf(leader))!;
  const theirs = shares.find((s) => s.replica === idOf(follower))!;
  t.ok(mine.canary > 0 && mine.canaryErrors === 0, `the leader's own canary traffic was healthy (${mine.canaryErrors}/${mine.canary})`);
  t.ok(theirs.canary > 0 && theirs.canaryErrors === theirs.canary, `the follower's failed (${theirs.canaryErrors}/${theirs.canary})`);
  t.same(follower.veer.state.table.servicesByName.get('svc')!.split.weights, { v1: 100, v2: 0 }, 'the follower serves the abort too');
});

t.test('three replicas, traffic only through the two that do not lead: a failing canary is aborted within three intervals', async (t) => {
  const prefix = uniquePrefix();
  // A longer interval than above: the bound of three intervals leaves a whole second for a busy machine.
  const interval = 1000;
  const all: RunningVeer[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await runVeer(configFor(prefix, interval));
    t.teardown(() => r.stop());
    all.push(r);
  }
  t.ok(await until(() => all.filter((r) => r.veer.runtime.leadership.isLeader()).length === 1, 5000), 'one leads');
  const leader = all.find((r) => r.veer.runtime.leadership.isLeader())!;
  const followers = all.filter((r) => r !== leader);
  t.equal((await admin(leader.adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201);
  const started = performance.now();
  const loads = followers.map((f) => load(f, 'bad'));
  t.teardown(() => Promise.all(loads.map((l) => l.stop())));
  t.ok(await until(async () => (await rolloutOf(leader)).phase === 'aborted', 8000, 20), 'aborted');
  const tookMs = performance.now() - started;
  await Promise.all(loads.map((l) => l.stop()));
  t.comment(`three replicas: abort ${tookMs.toFixed(0)} ms after the failing traffic started behind the two followers (interval ${interval} ms): ${(tookMs / interval).toFixed(1)} intervals`);
  t.ok(tookMs < 3 * interval, `within three intervals (${tookMs.toFixed(0)} ms)`);
  const shares = (await rolloutOf(leader)).lastAnalysis!.replicas!;
  t.equal(shares.length, 3, 'every replica is listed');
  t.equal(shares.find((s) => s.leader)!.canary, 0, 'the leader served no traffic itself');
  t.ok(shares.filter((s) => !s.leader).every((s) => s.canary > 0 && s.canaryErrors === s.canary), 'both followers contributed failing canary requests');
});
