// The etcd store on a real etcd: per-service compare-and-swap, the watch,
// leader election on leases, applied-revision markers, corrupt values at
// start, etcd going away and coming back, and applied revisions with workers.

import t from 'tap';
import { Etcd3 } from 'etcd3';
import { createLogger } from '../../src/log/index.ts';
import { EtcdStore } from '../../src/state/etcd/store.ts';
import { TablePublisher, RuntimeState, StateLoadError, StoreConflictError, emptyState, type HistoryEntry, type ServiceRecord } from '../../src/state/index.ts';
import { until } from '../helpers/admin.ts';
import { etcdMissing, startEtcd, uniquePrefix, type TestEtcd } from '../helpers/etcd.ts';
import type { TestScope } from '../helpers/http.ts';
import { loadYaml, splitYaml } from '../helpers/tables.ts';

/** Why these tests are skipped (etcd not installed), or false. */
const skip = etcdMissing() ?? false;
let etcd: TestEtcd;
t.before(async () => {
  if (skip === false) etcd = await startEtcd();
});
t.teardown(() => etcd?.destroy());

const log = createLogger('silent', { pretty: false });

const open = async (t: TestScope, prefix: string, extra: { replicaId?: string } = {}) => {
  const store = new EtcdStore({ endpoints: [etcd.endpoint], prefix, log, leaseTtlSeconds: 2, ...extra });
  t.teardown(() => store.close());
  const doc = await store.load();
  return { store, doc };
};

let seq = 0;
const entry = (service: string, after: Record<string, number>): HistoryEntry => ({
  seq: ++seq,
  at: new Date().toISOString(),
  service,
  actor: 'test',
  action: 'weights',
  reason: 'test',
  before: {},
  after,
});
const save = (store: EtcdStore, service: string, before: ServiceRecord, after: ServiceRecord) =>
  store.save(emptyState(new Date().toISOString()), { service, before, after, entry: entry(service, after.weights ?? {}) });

t.test('a save lands at a revision, the other replica sees it through its watch, history seq is the revision', { skip }, async (t) => {
  const prefix = uniquePrefix();
  const { store: a, doc } = await open(t, prefix);
  t.same(doc?.services, {}, 'an empty prefix is an empty document');
  const { store: b } = await open(t, prefix);
  let heard = 0;
  b.watch(() => heard++);
  const saved = await save(a, 'svc', {}, { weights: { v1: 50, v2: 50 } });
  t.ok(saved.revision > 0);
  t.ok(await until(() => b.latest()?.state.services.svc?.weights?.v2 === 50, 2000), 'b sees the weights');
  t.ok(heard > 0, 'b was told');
  t.equal(b.latest()!.revision, saved.revision);
  t.equal(b.latest()!.state.history.at(-1)!.seq, saved.revision, 'seq is the etcd revision of the change');
  t.same(a.latest()!.state, b.latest()!.state, 'both replicas hold the same document');
});

t.test('compare-and-swap: a save based on an old read is refused with the current record', { skip }, async (t) => {
  const prefix = uniquePrefix();
  const { store: a } = await open(t, prefix);
  const { store: b } = await open(t, prefix);
  await save(a, 'svc', {}, { weights: { v1: 90, v2: 10 } });
  // b decided on "nothing stored" before it heard of a's change.
  const err = await save(b, 'svc', {}, { weights: { v1: 10, v2: 90 } }).catch((e: unknown) => e);
  t.ok(err instanceof StoreConflictError, 'refused');
  t.same((err as StoreConflictError).current, { weights: { v1: 90, v2: 10 } }, 'with the current record');
  // Even before b's watch delivers, the refusal taught b the current record: a retry on it lands.
  const ok = await save(b, 'svc', { weights: { v1: 90, v2: 10 } }, { weights: { v1: 10, v2: 90 } });
  t.ok(ok.revision > 0);
  t.ok(await until(() => a.latest()?.state.services.svc?.weights?.v2 === 90, 2000));
  // A record removed ({}) deletes the key.
  await save(b, 'svc', { weights: { v1: 10, v2: 90 } }, {});
  t.ok(await until(() => a.latest()?.state.services.svc === undefined, 2000), 'removal propagates');
  t.equal(a.latest()!.state.history.length, 3, 'three history lines, none lost');
});

t.test('one leader at a time; it hands over when it closes', { skip }, async (t) => {
  const prefix = uniquePrefix();
  const { store: a } = await open(t, prefix, { replicaId: 'a' });
  t.ok(await until(() => a.leadership.isLeader(), 2000), 'the first replica leads');
  const { store: b } = await open(t, prefix, { replicaId: 'b' });
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(b.leadership.isLeader(), 'the second does not');
  t.equal(b.replicas('svc').leader, 'a');
  const started = performance.now();
  await a.close();
  t.ok(await until(() => b.leadership.isLeader(), 3000, 5), 'b takes over');
  t.comment(`hand-over after a graceful close: ${Math.round(performance.now() - started)} ms`);
});

t.test('applied markers: allApplied once every live replica has applied the service revision', { skip }, async (t) => {
  const prefix = uniquePrefix();
  const { store: a } = await open(t, prefix, { replicaId: 'a' });
  const { store: b } = await open(t, prefix, { replicaId: 'b' });
  const { revision } = await save(a, 'svc', {}, { weights: { v1: 1 } });
  a.markApplied(revision);
  t.ok(await until(() => a.replicas('svc').replicas.length === 2, 2000), 'a sees both replicas');
  t.notOk(a.replicas('svc').allApplied, 'b has not applied it yet');
  const waiting = a.whenApplied('svc', 3000);
  t.ok(await until(() => (b.latest()?.revision ?? 0) >= revision, 2000));
  b.markApplied(b.latest()!.revision);
  t.equal(await waiting, true, 'whenApplied resolves once b says so');
  t.match(a.replicas('svc'), { revision, allApplied: true, leader: 'a', replicas: [{ id: 'a' }, { id: 'b' }] });
  await b.close();
  t.ok(await until(() => a.replicas('svc').replicas.length === 1, 2000), 'a closed replica is no longer live');
});

t.test('the leader keeps the history to its limit, deleting the oldest lines', { skip }, async (t) => {
  const prefix = uniquePrefix();
  const store = new EtcdStore({ endpoints: [etcd.endpoint], prefix, log, historyLimit: 5 });
  t.teardown(() => store.close());
  await store.load();
  t.ok(await until(() => store.leadership.isLeader(), 2000), 'it leads');
  let record: ServiceRecord = {};
  for (let i = 1; i <= 12; i++) {
    const next = { weights: { v1: i } };
    await save(store, 'svc', record, next);
    record = next;
  }
  const raw = new Etcd3({ hosts: etcd.endpoint });
  t.teardown(() => raw.close());
  t.ok(await until(async () => (await raw.getAll().prefix(`${prefix}history/`).count()) <= 6, 10_000), 'old lines are deleted from etcd (the leader trims after it sees them; a busy CI machine takes seconds)');
  t.same(store.latest()!.state.history.map((h) => h.after.v1), [8, 9, 10, 11, 12], 'the document holds the last five');
});

t.test('a corrupt value at start stops the store; at run time it is ignored', { skip }, async (t) => {
  const prefix = uniquePrefix();
  const raw = new Etcd3({ hosts: etcd.endpoint });
  t.teardown(() => raw.close());
  await raw.put(`${prefix}services/svc`).value('{"weights": {"v1": -1}}');
  const err = await new EtcdStore({ endpoints: [etcd.endpoint], prefix, log }).load().catch((e: unknown) => e);
  t.ok(err instanceof StateLoadError, 'refused at start');
  t.match((err as Error).message, /etcd key .*services\/svc is corrupt/);
  await raw.put(`${prefix}services/svc`).value('{"weights": {"v1": 1}}');
  const { store } = await open(t, prefix);
  await raw.put(`${prefix}services/svc`).value('not json');
  await raw.put(`${prefix}services/other`).value('{"weights": {"a": 2}}');
  t.ok(await until(() => store.latest()?.state.services.other !== undefined, 2000));
  t.same(store.latest()!.state.services.svc, { weights: { v1: 1 } }, 'the bad value was ignored, the last good one kept');
});

t.test('etcd down: saves fail at once and change nothing, health is degraded; back: resync and saves work', { skip }, async (t) => {
  const prefix = uniquePrefix();
  const { store: a } = await open(t, prefix);
  const { store: b } = await open(t, prefix);
  await save(a, 'svc', {}, { weights: { v1: 1 } });
  t.ok(await until(() => b.latest()?.state.services.svc !== undefined, 2000));
  await etcd.stop();
  t.teardown(async () => {
    if (etcd.pid() === null) await etcd.start();
  });
  t.ok(await until(async () => (await a.health()).status === 'degraded', 5000), 'a notices');
  t.match(await a.health(), { status: 'degraded', error: /etcd unreachable since/, serving: 'the last known weights' });
  t.equal(a.leadership.isLeader(), false, 'nobody leads without etcd');
  const started = performance.now();
  const err = await save(a, 'svc', { weights: { v1: 1 } }, { weights: { v1: 2 } }).catch((e: unknown) => e);
  t.ok(err instanceof Error && !(err instanceof StoreConflictError), 'the save fails');
  t.ok(performance.now() - started < 2000, 'and fails fast');
  t.same(a.latest()!.state.services.svc, { weights: { v1: 1 } }, 'nothing changed');

  await etcd.start();
  t.ok(await until(async () => (await a.health()).status === 'ok' && (await b.health()).status === 'ok', 5000), 'both reconnect');
  await save(a, 'svc', { weights: { v1: 1 } }, { weights: { v1: 3 } });
  t.ok(await until(() => b.latest()?.state.services.svc?.weights?.v1 === 3, 2000), 'and changes flow again');
  t.ok(await until(() => a.leadership.isLeader() || b.leadership.isLeader(), 4000), 'someone leads again');
});

t.test('starting while etcd is down: null (config weights), degraded, then resync when it comes up', { skip }, async (t) => {
  const prefix = uniquePrefix();
  const { store: writer } = await open(t, prefix);
  await save(writer, 'svc', {}, { weights: { v1: 7 } });
  await writer.close();
  await etcd.stop();
  t.teardown(async () => {
    if (etcd.pid() === null) await etcd.start();
  });
  const store = new EtcdStore({ endpoints: [etcd.endpoint], prefix, log });
  t.teardown(() => store.close());
  let heard = 0;
  store.watch(() => heard++);
  t.equal(await store.load(), null, 'no document: the config applies');
  t.match(await store.health(), { status: 'degraded', serving: /config's initial weights/ });
  t.equal(store.latest(), null);
  await etcd.start();
  t.ok(await until(() => store.latest()?.state.services.svc?.weights?.v1 === 7, 5000), 'resynced');
  t.ok(heard > 0, 'and said so');
  t.match(await store.health(), { status: 'ok' });
});

// With cluster workers the primary compiles a change before its workers serve it;
// the revision counts as applied (and a rollout step may go on) only once they do.
const config = loadYaml(splitYaml({ v1: 100, v2: 0 }));

/** One replica with its route and runtime state, over `config`. */
async function replica(t: TestScope, prefix: string, id: string) {
  const store = new EtcdStore({ endpoints: [etcd.endpoint], prefix, log, leaseTtlSeconds: 2, replicaId: id });
  const routes = new TablePublisher();
  const compiled = routes.applyConfig(config);
  if (!compiled.ok) throw new Error('the test config does not compile');
  const runtime = new RuntimeState({ routes, store, log });
  t.teardown(() => store.close());
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
