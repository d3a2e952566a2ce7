// A release step on a real etcd with three veer replicas: both members are
// written in one transaction (one revision), and every replica publishes
// them in one table: no replica ever serves one member's new canary weight
// with the other's old one. Needs etcd (fails when it is missing).

import { Etcd3 } from 'etcd3';
import t from 'tap';
import { admin, until } from '../helpers/admin.ts';
import { etcdMissing, startEtcd, uniquePrefix } from '../helpers/etcd.ts';
import { releaseConfig } from '../helpers/releases.ts';
import { startUpstream } from '../helpers/upstreams.ts';
import { runVeer, type RunningVeer } from '../helpers/veer.ts';

t.test('a release step is one etcd transaction, applied as one change by every replica', async (t) => {
  t.equal(etcdMissing(), null, 'etcd is installed');
  const etcd = await startEtcd();
  t.teardown(() => etcd.destroy());
  const ups = await Promise.all(['f1', 'f2', 'c4', 'c5'].map((n) => startUpstream(n)));
  t.teardown(() => Promise.all(ups.map((u) => u.close())));
  const prefix = uniquePrefix();
  const yaml = releaseConfig(ups.map((u) => u.url), '    steps: [{ weight: 10 }, { weight: 30 }, { weight: 60 }, { weight: 100 }]\n', `state: { store: etcd, etcd: { endpoints: [${etcd.endpoint}], prefix: "${prefix}" } }`);
  const replicas: RunningVeer[] = [];
  for (let i = 0; i < 3; i++) {
    const running = await runVeer(yaml);
    t.teardown(() => running.stop());
    replicas.push(running);
  }
  // Every table each replica publishes: the two members' canary weights side by side.
  const seen = replicas.map((r) => {
    const pairs: [number, number][] = [];
    r.veer.state.onPublish((table) => pairs.push([table.servicesByName.get('frontend')!.split.weights.v2 ?? 0, table.servicesByName.get('cart')!.split.weights.v5 ?? 0]));
    return pairs;
  });
  const [a] = replicas as [RunningVeer, ...RunningVeer[]];
  t.equal((await admin(a.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/start')).status, 201);
  for (let i = 0; i < 3; i++) t.equal((await admin(a.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/resume')).status, 200, `resume ${i + 1}`);
  for (const [i, r] of replicas.entries()) {
    t.ok(await until(() => r.veer.state.table.servicesByName.get('cart')!.split.weights.v5 === 100, 5000), `replica ${i} reached 100%`);
  }
  for (const [i, pairs] of seen.entries()) {
    const steps = pairs.filter(([f, c]) => f > 0 || c > 0);
    t.ok(steps.length >= 4, `replica ${i} published ${steps.length} tables with a canary weight`);
    t.same(
      steps.filter(([f, c]) => f !== c),
      [],
      `replica ${i} never served one member's canary weight without the other's`,
    );
  }
  // The last step gives 100% and then promotes, a write of its own: read etcd once every replica has it.
  for (const [i, r] of replicas.entries()) {
    t.ok(await until(async () => (await admin<{ phase: string }>(r.adminUrl, 'GET', '/api/v1/releases/checkout-2.3')).body.phase === 'promoted', 5000), `replica ${i} sees the release promoted`);
  }
  // Both member keys were last written at the same etcd revision: one transaction.
  const raw = new Etcd3({ hosts: etcd.endpoint });
  t.teardown(() => raw.close());
  const kvs = (await raw.getAll().prefix(`${prefix}services/`).exec()).kvs;
  const revisions = Object.fromEntries(kvs.map((kv) => [kv.key.toString().slice(prefix.length), kv.mod_revision]));
  t.ok(revisions['services/frontend'] !== undefined, 'frontend is stored');
  t.equal(revisions['services/frontend'], revisions['services/cart'], 'both members changed in the same revision');
  // The history line of the step carries that revision, on every replica.
  for (const r of replicas) {
    const history = (await admin<{ history: { seq: number; action: string }[] }>(r.adminUrl, 'GET', '/api/v1/history')).body.history;
    const lines = history.filter((h) => h.action.startsWith('release.'));
    t.equal(lines.at(-1)?.seq, Number(revisions['services/cart']), `the last release line, ${lines.at(-1)?.action}, is the members' last write`);
  }
});
