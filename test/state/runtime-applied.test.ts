// A replica's applied revision on a real etcd. With cluster workers the
// primary compiles a change before its workers serve it; the revision counts
// as applied (and a rollout step may go on) only once they do.

import t from 'tap';
import { UpstreamPools } from '../../src/forwarder/index.ts';
import { createLogger } from '../../src/log/index.ts';
import { EtcdStore, RouteState, RuntimeState } from '../../src/state/index.ts';
import { until } from '../helpers/admin.ts';
import { etcdMissing, startEtcd, uniquePrefix, type TestEtcd } from '../helpers/etcd.ts';
import type { TestScope } from '../helpers/http.ts';
import { loadYaml, splitYaml } from '../helpers/tables.ts';

const skip = etcdMissing() ?? false;
let etcd: TestEtcd;
t.before(async () => {
  if (skip === false) etcd = await startEtcd();
});
t.teardown(() => etcd?.destroy());

const log = createLogger('silent', { pretty: false });
const config = loadYaml(splitYaml({ v1: 100, v2: 0 }));

/** One replica: its etcd store, route state and runtime state, over the shared config. */
async function replica(t: TestScope, prefix: string, id: string) {
  const store = new EtcdStore({ endpoints: [etcd.endpoint], prefix, log, leaseTtlSeconds: 2, replicaId: id });
  const pools = new UpstreamPools();
  const routes = new RouteState((origin) => pools.bind(origin, 1000));
  const compiled = routes.applyConfig(config);
  if (!compiled.ok) throw new Error('the test config does not compile');
  const runtime = new RuntimeState({ routes, store, log });
  t.teardown(async () => {
    await store.close();
    await pools.close(true);
  });
  await runtime.start();
  return { store, routes, runtime };
}

t.test('with workers, a change counts as applied on a replica only once its workers serve it', { skip }, async (t) => {
  const prefix = uniquePrefix();
  const a = await replica(t, prefix, 'a');
  const b = await replica(t, prefix, 'b');
  // b stands for a replica with workers: its settle resolves when the test says they all swapped.
  let settles = 0;
  let release = () => {};
  b.runtime.settleWith(() => {
    settles++;
    return new Promise<void>((resolve) => (release = resolve));
  });
  t.ok(await until(() => a.store.replicas('svc').replicas.length === 2, 3000), 'a sees both replicas');

  await a.runtime.setWeights('svc', { v1: 60, v2: 40 }, 'test');
  const revision = a.store.replicas('svc').revision;
  t.ok(await until(() => b.routes.runtimeWeights.svc?.v2 === 40, 3000), "b's primary compiled the new weights");
  t.ok(settles >= 1, 'and waits for its workers');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const pending = a.store.replicas('svc');
  t.equal(pending.allApplied, false, 'the change is not applied everywhere while b settles');
  t.ok(pending.replicas.find((r) => r.id === 'b')!.applied < revision, "b's applied revision is still the old one");

  const waiting = a.store.whenApplied('svc', 3000);
  release();
  t.equal(await waiting, true, 'applied everywhere once b has settled');
  t.match(a.store.replicas('svc'), { revision, allApplied: true });
});
