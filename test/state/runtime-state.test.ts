// The command pipeline on its own: decide -> check weights -> compile one
// service -> save -> publish -> notify, over a real FileStore in a temp dir
// or a fake store that fails, conflicts, blocks or speaks for other replicas.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { VeerError } from '../../src/errors.ts';
import { createLogger } from '../../src/log/index.ts';
import { newRollout } from '../../src/rollout/transitions.ts';
import {
  FileStore,
  RuntimeState,
  StateLoadError,
  StoreConflictError,
  TablePublisher,
  emptyState,
  type HistoryEntry,
  type PersistedState,
  type ReplicaView,
  type RolloutRecord,
  type SaveChange,
  type SaveResult,
  type ServiceRecord,
  type ShiftRecord,
  type StateStore,
  type StoreChange,
  type StoreHealth,
  type TableChange,
} from '../../src/state/index.ts';
import { ALWAYS_LEADER } from '../../src/state/leadership.ts';
import type { RouteTable } from '../../src/table/index.ts';
import { loadYaml } from '../helpers/tables.ts';

const CONFIG = loadYaml(`services:
  - name: shop
    match: { hosts: [shop.example] }
    versions:
      - { name: v1, upstream: "http://127.0.0.1:3001" }
      - { name: v2, upstream: "http://127.0.0.1:3002" }
    split:
      weights: { v1: 90, v2: 10 }
  - name: blog
    match: { hosts: [blog.example] }
    versions:
      - { name: a, upstream: "http://127.0.0.1:3003" }
      - { name: b, upstream: "http://127.0.0.1:3004" }
    split:
      weights: { a: 50, b: 50 }
`);

const T0 = Date.parse('2024-05-01T00:00:00.000Z');
const log = createLogger('silent', { pretty: false });

/** A gate a test opens by hand. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** An in-memory store whose saves can fail, conflict, wait or answer a revision, and that can bring other replicas' documents. */
class FakeStore implements StateStore {
  readonly description = 'fake store';
  readonly leadership = ALWAYS_LEADER;
  stored: PersistedState | null = null;
  readonly saves: { state: PersistedState; change: SaveChange | undefined }[] = [];
  /** Thrown by every save while set. */
  fail: Error | null = null;
  /** Every save waits for it while set. */
  wait: Promise<void> | null = null;
  /** What a save answers (a shared store's revision), or nothing. */
  revision: (() => number) | null = null;
  #watcher: ((changed: StoreChange) => void) | null = null;
  newest: { state: PersistedState; revision: number } | null = null;
  readonly applied: number[] = [];

  async load(): Promise<PersistedState | null> {
    return this.stored === null ? null : structuredClone(this.stored);
  }
  async save(state: PersistedState, change?: SaveChange): Promise<SaveResult | void> {
    if (this.wait !== null) await this.wait;
    if (this.fail !== null) throw this.fail;
    this.saves.push({ state: structuredClone(state), change: structuredClone(change) });
    this.stored = structuredClone(state);
    return this.revision === null ? undefined : { revision: this.revision() };
  }
  async health(): Promise<StoreHealth> {
    return { kind: this.description, status: 'ok' };
  }
  watch(listener: (changed: StoreChange) => void): void {
    this.#watcher = listener;
  }
  /** Another replica changed the document: the services named, or all. */
  changedElsewhere(state: PersistedState, revision: number, changed: StoreChange = 'all'): void {
    this.newest = { state, revision };
    this.#watcher?.(changed);
  }
  latest() {
    return this.newest;
  }
  markApplied(revision: number): void {
    this.applied.push(revision);
  }
  replicas(): ReplicaView | null {
    return null;
  }
  async whenApplied(): Promise<boolean> {
    return true;
  }
  async close(): Promise<void> {}
}

/** A started RuntimeState over `store`, with every publish and change it makes from now on. */
async function started(store: StateStore, options: { historyLimit?: number } = {}) {
  const routes = new TablePublisher();
  if (!routes.applyConfig(CONFIG).ok) throw new Error('fixture does not compile');
  const clock = { at: T0 };
  const state = new RuntimeState({ routes, store, log, now: () => clock.at, ...options });
  const published: { table: RouteTable; change: TableChange }[] = [];
  const changed: { service: string; record: ServiceRecord; entry: HistoryEntry }[] = [];
  routes.onPublish((table, change) => published.push({ table, change }));
  state.onChange((service, record, entry) => changed.push({ service, record, entry }));
  const warnings = await state.start();
  return { state, routes, published, changed, warnings, clock };
}

const fileStore = (t: { testdir(): string }) => new FileStore(join(t.testdir(), 'state.json'));

/** The rejection of `promise` (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

const weightsOf = (state: RuntimeState, service: string) => state.table.servicesByName.get(service)!.split.weights;

function rolloutOf(state: RuntimeState, phase: RolloutRecord['phase'] = 'progressing'): RolloutRecord {
  const rollout = newRollout(state.table.servicesByName.get('shop')!, { canary: 'v2', steps: [{ weight: 10, pause: '1h' }], analysis: null }, T0);
  return { ...rollout, phase, pausedBy: phase === 'paused' ? 'operator' : null };
}

const SHIFT: ShiftRecord = { id: 'shop@shift', to: 'v2', step: 10, everyMs: 60_000, until: 100, startedAt: '2024-05-01T00:00:00.000Z', lastStepAt: '2024-05-01T00:00:00.000Z' };

/** Everything a failed command must leave as it was. */
function snapshot(state: RuntimeState) {
  return { table: state.table, records: structuredClone(state.records()), history: structuredClone(state.history()) };
}

t.test('a command refused by decide, by the weight check or for an unknown service changes nothing', async (t) => {
  const store = fileStore(t);
  const { state, published, changed } = await started(store);
  await state.setWeights('shop', { v1: 70, v2: 30 }, 'alice');
  const before = snapshot(state);
  const file = readFileSync(store.path, 'utf8');
  const publishes = published.length;
  const changes = changed.length;

  const refusal = new VeerError('invalid_rollout', 'no, not now');
  t.equal(
    await rejection(
      state.command('shop', 'bob', () => {
        throw refusal;
      }),
    ),
    refusal,
    "decide's error is the command's error",
  );
  t.match(await rejection(state.setWeights('shop', { v9: 100 }, 'bob')), { code: 'unknown_version' });
  t.match(await rejection(state.setWeights('shop', {}, 'bob')), { code: 'invalid_weights' });
  t.match(await rejection(state.setWeights('shop', { v1: 0, v2: 0 }, 'bob')), { code: 'invalid_weights' });
  t.match(await rejection(state.setWeights('shop', { v1: -5, v2: 1 }, 'bob')), { code: 'invalid_weights' });
  t.match(await rejection(state.setWeights('nope', { v1: 1 }, 'bob')), { code: 'unknown_service', status: 404 });

  const after = snapshot(state);
  t.equal(after.table, before.table, 'the same table is published');
  t.same(after.records, before.records, 'the records are unchanged');
  t.same(after.history, before.history, 'no history line was written');
  t.equal(readFileSync(store.path, 'utf8'), file, 'the file is untouched');
  t.equal(published.length, publishes, 'nothing was published');
  t.equal(changed.length, changes, 'no listener was told');
  t.equal(state.storeOk, true, 'a refused command is not a store failure');

  const next = await state.setWeights('shop', { v1: 60, v2: 40 }, 'bob');
  t.equal(next.entry.seq, 2, 'the queue goes on, and the refusals took no sequence number');
});

t.test('a save that fails: store_unavailable, nothing applied, storeOk false until a save succeeds', async (t) => {
  const store = new FakeStore();
  const { state, published, changed } = await started(store);
  const before = snapshot(state);
  const disk = new Error('disk full');
  store.fail = disk;

  const err = await rejection(state.setWeights('shop', { v1: 0, v2: 100 }, 'alice'));
  t.type(err, VeerError);
  t.match(err, { code: 'store_unavailable', status: 503 });
  t.match((err as Error).message, /fake store: disk full/, 'the message names the store and the failure');
  t.equal((err as Error).cause, disk);
  t.equal(state.storeOk, false);
  t.equal(state.table, before.table, 'the table is unchanged');
  t.same(weightsOf(state, 'shop'), { v1: 90, v2: 10 });
  t.same(state.records(), before.records, 'the records are unchanged');
  t.same(state.history(), [], 'no history line');
  t.equal(published.length, 0);
  t.equal(changed.length, 0);

  // A rollout-only command fails the same way.
  t.match(await rejection(state.command('shop', 'alice', () => ({ rollout: rolloutOf(state), action: 'rollout.start', reason: 'r' }))), { code: 'store_unavailable' });
  t.same(state.record('shop'), {}, 'the rollout record was not kept');
  t.equal(state.storeOk, false);

  store.fail = null;
  const result = await state.setWeights('shop', { v1: 0, v2: 100 }, 'alice');
  t.equal(state.storeOk, true, 'a good save sets it back');
  t.equal(result.entry.seq, 1);
  t.same(weightsOf(state, 'shop'), { v1: 0, v2: 100 });
  t.equal(store.saves.length, 1);
  t.same(store.saves[0]!.change, { service: 'shop', before: {}, after: { weights: { v1: 0, v2: 100 } }, entry: result.entry }, 'the store is told what changed');
});

t.test('a save refused by a shared store: 409 conflict with the current state, nothing applied', async (t) => {
  const store = new FakeStore();
  const { state, published } = await started(store);
  const table = state.table;
  const theirs: ServiceRecord = { weights: { v1: 1, v2: 0 } };
  const conflict = new StoreConflictError('shop', theirs, 17);
  store.fail = conflict;

  const err = await rejection(state.setWeights('shop', { v1: 0, v2: 100 }, 'alice'));
  t.type(err, VeerError);
  t.match(err, { code: 'conflict', status: 409 });
  t.same((err as VeerError).details, { current: { revision: 17, weights: { v1: 1, v2: 0 } } });
  t.equal((err as Error).cause, conflict);
  t.match((err as Error).message, /nothing was applied/);
  t.equal(state.table, table);
  t.same(state.records(), {});
  t.same(state.history(), []);
  t.equal(published.length, 0);
  t.equal(state.storeOk, true, 'a conflict is not an unavailable store');
});

t.test('only a weights command publishes a table, exactly one; a rollout-only command keeps the generation', async (t) => {
  const { state, published, changed } = await started(fileStore(t));
  const table = state.table;
  const generation = table.generation;

  const rollout = rolloutOf(state);
  const onlyRecord = await state.command('shop', 'alice', () => ({ rollout, action: 'rollout.start', reason: 'started' }));
  t.equal(state.table, table, 'the same table');
  t.equal(onlyRecord.generation, generation, 'the result carries the unchanged generation');
  t.equal(published.length, 0, 'nothing was published');
  t.same(state.record('shop'), { rollout });
  t.same(onlyRecord.entry.before, onlyRecord.entry.after, 'the history line shows no weight change');
  t.equal(changed.length, 1, 'the listener still hears the change');

  const weights = await state.command('shop', 'alice', () => ({ weights: { v1: 80, v2: 20 }, action: 'rollout.step', reason: 'step' }));
  t.equal(published.length, 1, 'one table published');
  t.equal(state.table.generation, generation + 1, 'one generation later');
  t.equal(weights.generation, state.table.generation);
  t.same(published[0]!.change, { kind: 'weights', changes: { shop: { v1: 80, v2: 20 } } });
  t.equal(published[0]!.table, state.table);
  t.equal(state.table.servicesByName.get('blog'), table.servicesByName.get('blog'), 'the other service is shared');
  t.same(state.record('shop'), { rollout, weights: { v1: 80, v2: 20 } }, 'the rollout record is kept beside the weights');

  const cleared = await state.command('shop', 'alice', () => ({ rollout: null, action: 'x', reason: 'clear' }));
  t.equal(published.length, 1, 'removing the rollout record publishes nothing');
  t.equal(cleared.generation, generation + 1);
  t.same(state.record('shop'), { weights: { v1: 80, v2: 20 } });
});

t.test('history: increasing seq, weights before and after, the oldest lines dropped past historyLimit', async (t) => {
  const store = fileStore(t);
  const { state, changed, clock } = await started(store, { historyLimit: 3 });
  clock.at = Date.parse('2024-05-01T00:00:01.000Z');
  const results = [
    await state.setWeights('shop', { v1: 50, v2: 50 }, 'alice'),
    await state.setWeights('blog', { a: 1 }, 'bob'),
    await state.setWeights('shop', { v2: 1 }, 'carol'),
    await state.resetWeights('shop', 'dave'),
    await state.setWeights('blog', { a: 3, b: 1 }, 'erin'),
  ];
  t.same(
    results.map((r) => r.entry.seq),
    [1, 2, 3, 4, 5],
  );
  t.same(results[0]!.entry, {
    seq: 1,
    at: '2024-05-01T00:00:01.000Z',
    service: 'shop',
    actor: 'alice',
    action: 'weights',
    reason: 'weights set',
    before: { v1: 90, v2: 10 },
    after: { v1: 50, v2: 50 },
  });
  t.same(results[1]!.entry.after, { a: 1, b: 0 }, 'omitted versions are stored as 0');
  t.same(results[2]!.entry.before, { v1: 50, v2: 50 }, 'before is what the previous command left');
  t.same(results[2]!.entry.after, { v1: 0, v2: 1 });
  t.match(results[3]!.entry, { action: 'weights.reset', actor: 'dave', before: { v1: 0, v2: 1 }, after: { v1: 90, v2: 10 } }, "a reset goes back to the config's weights");
  t.same(state.record('shop'), {}, 'a reset that leaves nothing removes the record');
  t.notOk('shop' in state.records());

  t.same(
    state.history().map((e) => e.seq),
    [3, 4, 5],
    'three lines kept, oldest dropped',
  );
  t.same(
    state.history({ service: 'blog' }).map((e) => e.seq),
    [5],
  );
  t.same(
    state.history({ limit: 2 }).map((e) => e.seq),
    [4, 5],
  );
  t.same(
    state.history({ limit: 10 }).map((e) => e.seq),
    [3, 4, 5],
  );
  clock.at = Date.parse('2024-05-01T00:05:00.000Z');
  const sixth = await state.setWeights('shop', { v1: 1, v2: 1 }, 'frank');
  t.equal(sixth.entry.at, '2024-05-01T00:05:00.000Z', 'lines are stamped with the injected clock');
  t.equal(sixth.entry.seq, 6, 'seq goes on after trimming');

  const onDisk = JSON.parse(readFileSync(store.path, 'utf8')) as PersistedState;
  t.same(onDisk.history, state.history(), 'the file holds the same history');
  t.same(onDisk.services, state.records(), 'and the same records');
  t.equal(onDisk.updatedAt, sixth.entry.at);
  t.same(
    changed.map((c) => c.entry.seq),
    [1, 2, 3, 4, 5, 6],
    'listeners got every line',
  );
});

t.test('a shared store numbers history lines by the revision the save landed at', async (t) => {
  const store = new FakeStore();
  let revision = 40;
  store.revision = () => (revision += 2);
  const { state } = await started(store);
  const first = await state.setWeights('shop', { v1: 1, v2: 1 }, 'alice');
  const second = await state.setWeights('blog', { a: 1, b: 1 }, 'alice');
  t.equal(first.entry.seq, 42);
  t.equal(second.entry.seq, 44);
  t.same(
    state.history().map((e) => e.seq),
    [42, 44],
  );
});

t.test('setWeights and resetWeights are refused while a rollout is running or paused, or a shift runs', async (t) => {
  const { state, published } = await started(fileStore(t));
  for (const phase of ['progressing', 'paused'] as const) {
    await state.command('shop', 'rollout', () => ({ rollout: rolloutOf(state, phase), action: 'rollout.start', reason: 'r' }));
    const table = state.table;
    const lines = state.history().length;
    const err = await rejection(state.setWeights('shop', { v1: 0, v2: 100 }, 'alice'));
    t.type(err, VeerError);
    t.match(err, { code: 'rollout_conflict', status: 409 }, `setWeights while ${phase}`);
    t.match((err as Error).message, new RegExp(`rollout of shop is ${phase}`));
    t.match(await rejection(state.resetWeights('shop', 'alice')), { code: 'rollout_conflict' }, `resetWeights while ${phase}`);
    t.equal(state.table, table);
    t.equal(state.history().length, lines);
  }
  t.ok((await state.setWeights('blog', { a: 1, b: 0 }, 'alice')).entry, 'another service is not held');

  for (const phase of ['promoted', 'aborted'] as const) {
    await state.command('shop', 'rollout', () => ({ rollout: rolloutOf(state, phase), action: 'rollout.end', reason: 'r' }));
    const result = await state.setWeights('shop', { v1: 5, v2: 5 }, 'alice');
    t.same(result.record.weights, { v1: 5, v2: 5 }, `allowed once the rollout is ${phase}`);
  }

  await state.command('shop', 'shift', () => ({ rollout: null, shift: SHIFT, action: 'shift.start', reason: 's' }));
  const publishes = published.length;
  const err = await rejection(state.setWeights('shop', { v1: 0, v2: 100 }, 'alice'));
  t.match(err, { code: 'conflict', status: 409 }, 'a running shift: conflict');
  t.match((err as Error).message, /shift of shop toward v2/);
  t.match(await rejection(state.resetWeights('shop', 'alice')), { code: 'conflict' });
  t.equal(published.length, publishes);
  t.same(state.record('shop').shift, SHIFT);

  await state.command('shop', 'shift', () => ({ shift: null, action: 'shift.stop', reason: 's' }));
  t.ok(await state.setWeights('shop', { v1: 0, v2: 100 }, 'alice'), 'allowed once the shift is gone');
});

t.test('start() with nothing stored publishes nothing', async (t) => {
  const store = fileStore(t);
  const routes = new TablePublisher();
  routes.applyConfig(CONFIG);
  const table = routes.table;
  const state = new RuntimeState({ routes, store, log });
  t.same(await state.start(), []);
  t.equal(state.table, table);
  t.same(state.records(), {});
  t.same(state.history(), []);
});

t.test('start() loads stored weights over the config and warns about the ones that no longer fit', async (t) => {
  const store = fileStore(t);
  const stored: PersistedState = {
    ...emptyState('2024-04-01T00:00:00.000Z'),
    services: {
      shop: { weights: { v1: 20, v2: 80 } },
      blog: { weights: { a: 1, zz: 5 } },
      gone: { weights: { x: 1 } },
    },
    history: [
      { seq: 7, at: '2024-04-01T00:00:00.000Z', service: 'shop', actor: 'alice', action: 'weights', reason: 'weights set', before: {}, after: { v1: 20, v2: 80 } },
      { seq: 8, at: '2024-04-01T00:00:00.000Z', service: 'blog', actor: 'alice', action: 'weights', reason: 'weights set', before: {}, after: { a: 1 } },
    ],
  };
  await store.save(stored);

  const { state, published, warnings } = await started(store);
  t.same(
    warnings.map((w) => w.code),
    ['runtime_weights_ignored'],
    'one warning: blog',
  );
  t.match(warnings[0]!.message, /runtime weights for blog .*unknown versions: zz/);
  t.same(weightsOf(state, 'shop'), { v1: 20, v2: 80 }, 'stored weights win over the config');
  t.equal(state.table.servicesByName.get('shop')!.split.source, 'runtime');
  t.same(weightsOf(state, 'blog'), { a: 50, b: 50 }, "blog keeps the config's weights");
  t.equal(published.length, 1, 'in one publish');
  t.same(published[0]!.change, { kind: 'weights', changes: { shop: { v1: 20, v2: 80 }, blog: { a: 1, zz: 5 }, gone: { x: 1 } } });
  t.equal(state.table.generation, 2);
  t.same(state.records(), stored.services, 'the stored records are the records');
  t.same(state.history(), stored.history);
  t.same(state.routes.runtimeWeights, { shop: { v1: 20, v2: 80 }, blog: { a: 1, zz: 5 }, gone: { x: 1 } }, 'every stored weight is kept for a reload');

  const next = await state.setWeights('blog', { a: 1, b: 1 }, 'bob');
  t.equal(next.entry.seq, 9, 'seq goes on from the stored history');
  t.same(next.entry.before, { a: 50, b: 50 }, 'before is what was served');
});

t.test('start() refuses a stored document it cannot trust, and keeps the table', async (t) => {
  const store = fileStore(t);
  writeFileSync(store.path, '{"format": "veer-state/1", ');
  const routes = new TablePublisher();
  routes.applyConfig(CONFIG);
  const table = routes.table;
  const state = new RuntimeState({ routes, store, log });
  const err = await rejection(state.start());
  t.type(err, StateLoadError);
  t.match(err, { code: 'state_corrupt' });
  t.equal(state.table, table);
  t.same(state.records(), {});
});

t.test('commands run one at a time: the second decides on what the first left', async (t) => {
  const store = new FakeStore();
  const { state } = await started(store);
  const held = gate();
  store.wait = held.opened;
  const seen: string[] = [];
  let secondView: { record: ServiceRecord; weights: Readonly<Record<string, number>> } | null = null;

  const first = state.command('shop', 'alice', () => {
    seen.push('first decides');
    return { weights: { v1: 10, v2: 90 }, action: 'weights', reason: 'first' };
  });
  const second = state.command('shop', 'bob', ({ record, service }) => {
    seen.push('second decides');
    secondView = { record, weights: service.split.weights };
    return { weights: { v1: (record.weights?.v1 ?? 0) + 1, v2: 90 }, action: 'weights', reason: 'second' };
  });
  const idle = state.idle().then(() => seen.push('idle'));

  await new Promise((resolve) => setTimeout(resolve, 20));
  t.same(seen, ['first decides'], 'the second waits while the first saves');
  store.wait = null;
  held.open();
  const [a, b] = await Promise.all([first, second]);
  await idle;
  t.same(seen, ['first decides', 'second decides', 'idle'], 'idle resolves after both');
  t.same(secondView, { record: { weights: { v1: 10, v2: 90 } }, weights: { v1: 10, v2: 90 } }, "the second sees the first's record and table");
  t.same(b.record.weights, { v1: 11, v2: 90 });
  t.same(
    [a.entry.seq, b.entry.seq],
    [1, 2],
  );
  t.equal(b.generation, a.generation + 1);
});

t.test('many concurrent read-modify-write commands lose no update', async (t) => {
  const { state } = await started(fileStore(t));
  const bump = () =>
    state.command('shop', 'counter', ({ record }) => ({
      weights: { v1: (record.weights?.v1 ?? 0) + 1, v2: 1 },
      action: 'weights',
      reason: 'bump',
    }));
  const results = await Promise.all(Array.from({ length: 12 }, bump));
  t.same(weightsOf(state, 'shop'), { v1: 12, v2: 1 });
  t.same(
    results.map((r) => r.entry.seq),
    Array.from({ length: 12 }, (_, i) => i + 1),
    'in arrival order',
  );
});

t.test("another replica's change: republished from the store's newest document, never saved again", async (t) => {
  const store = new FakeStore();
  const { state, published, changed } = await started(store);
  const line: HistoryEntry = { seq: 7, at: '2024-05-01T01:00:00.000Z', service: 'shop', actor: 'other', action: 'weights', reason: 'set elsewhere', before: { v1: 90, v2: 10 }, after: { v1: 0, v2: 100 } };
  const remote: PersistedState = { ...emptyState('2024-05-01T01:00:00.000Z'), services: { shop: { weights: { v1: 0, v2: 100 } } }, history: [line] };

  const settled = gate();
  state.settleWith(() => settled.opened);
  store.changedElsewhere(remote, 7);
  store.changedElsewhere(remote, 7);
  await state.idle();
  t.same(weightsOf(state, 'shop'), { v1: 0, v2: 100 });
  t.equal(published.length, 1, 'a burst is applied once');
  t.same(published[0]!.change, { kind: 'weights', changes: { shop: { v1: 0, v2: 100 } } });
  t.same(state.records(), remote.services);
  t.same(state.history(), [line]);
  t.same(changed, [{ service: 'shop', record: { weights: { v1: 0, v2: 100 } }, entry: line }], 'listeners hear it with its history line');
  t.equal(store.saves.length, 0, 'nothing saved');
  t.same(store.applied, [], 'not applied until the workers serve it');
  settled.open();
  await new Promise((resolve) => setImmediate(resolve));
  t.same(store.applied, [7]);

  // A record that goes away without a history line: the listener hears a sync line, and the config's weights apply.
  state.settleWith(async () => {});
  store.changedElsewhere({ ...remote, services: {} }, 9);
  await state.idle();
  await new Promise((resolve) => setImmediate(resolve));
  t.same(weightsOf(state, 'shop'), { v1: 90, v2: 10 });
  t.same(state.routes.runtimeWeights, {});
  t.match(changed.at(-1), { service: 'shop', record: {}, entry: { seq: 7 } }, 'the last history line of the service');
  t.same(store.applied, [7, 9]);

  // A rollout-only change elsewhere publishes nothing.
  const rollout = rolloutOf(state);
  store.changedElsewhere({ ...emptyState('2024-05-01T02:00:00.000Z'), services: { blog: { rollout } } }, 10);
  await state.idle();
  t.equal(published.length, 2, 'no publish for a record without weights');
  t.match(changed.at(-1), { service: 'blog', record: { rollout }, entry: { seq: 10, actor: 'store', action: 'sync' } });
});

t.test('a change that names its services costs those services: the others are not looked at', async (t) => {
  const store = new FakeStore();
  const { state, published, changed } = await started(store);
  // The document holds changes to shop and blog, but the store names only shop:
  // blog is not compared, republished or announced (its own change will name it).
  const remote: PersistedState = { ...emptyState('2024-05-01T01:00:00.000Z'), services: { shop: { weights: { v1: 10, v2: 90 } }, blog: { weights: { a: 100 } } } };
  store.changedElsewhere(remote, 3, new Set(['shop']));
  await state.idle();
  t.same(published.map((p) => p.change), [{ kind: 'weights', changes: { shop: { v1: 10, v2: 90 } } }], 'shop alone is published');
  t.same(changed.map((c) => c.service), ['shop'], 'listeners hear shop alone');
  t.same(store.applied, [3]);

  // A burst naming shop, then blog, is applied once, for both.
  const gateOpen = gate();
  state.settleWith(() => gateOpen.opened);
  const blocked = state.exclusive(() => gateOpen.opened);
  const next: PersistedState = { ...remote, services: { shop: { weights: { v1: 20, v2: 80 } }, blog: { weights: { a: 30, b: 70 } } } };
  store.changedElsewhere(next, 4, new Set(['shop']));
  store.changedElsewhere(next, 5, new Set(['blog']));
  gateOpen.open();
  await blocked;
  await state.idle();
  t.equal(published.length, 2, 'one publish for the burst');
  t.same(published[1]!.change, { kind: 'weights', changes: { shop: { v1: 20, v2: 80 }, blog: { a: 30, b: 70 } } });
  t.same(changed.map((c) => c.service), ['shop', 'shop', 'blog']);
});

/** CONFIG with shop's config weights changed, or its v2 dropped. */
const reloadOf = (dropV2: boolean) =>
  loadYaml(
    dropV2
      ? `services:
  - name: shop
    match: { hosts: [shop.example] }
    versions:
      - { name: v1, upstream: "http://127.0.0.1:3001" }
  - name: blog
    match: { hosts: [blog.example] }
    versions:
      - { name: a, upstream: "http://127.0.0.1:3003" }
      - { name: b, upstream: "http://127.0.0.1:3004" }
`
      : `services:
  - name: shop
    match: { hosts: [shop.example] }
    versions:
      - { name: v1, upstream: "http://127.0.0.1:3001" }
      - { name: v2, upstream: "http://127.0.0.1:3009" }
    split:
      weights: { v1: 100, v2: 0 }
  - name: blog
    match: { hosts: [blog.example] }
    versions:
      - { name: a, upstream: "http://127.0.0.1:3003" }
      - { name: b, upstream: "http://127.0.0.1:3004" }
`,
  );

t.test('a reload while a command saves: the command publishes its weights onto the new config', async (t) => {
  const store = new FakeStore();
  const { state, routes, published } = await started(store);
  const held = gate();
  store.wait = held.opened;
  const command = state.setWeights('shop', { v1: 30, v2: 70 }, 'alice');
  await new Promise((resolve) => setTimeout(resolve, 10));
  const reloaded = reloadOf(false);
  t.ok(routes.applyConfig(reloaded).ok, 'a reload does not wait for commands');
  held.open();
  const result = await command;
  t.equal(state.table.config, reloaded, 'the published table carries the reloaded config');
  t.same(weightsOf(state, 'shop'), { v1: 30, v2: 70 }, 'and the weights of the command');
  t.equal(state.table.servicesByName.get('shop')!.versionsByName.get('v2')!.upstream.origins[0], 'http://127.0.0.1:3009');
  t.equal(result.generation, state.table.generation);
  t.same(
    published.map((p) => p.change.kind),
    ['config', 'weights'],
  );
});

t.test(
  'a reload that drops a version while a command saves: the history line says what is served',
  async (t) => {
    const store = new FakeStore();
    const { state, routes } = await started(store);
    const held = gate();
    store.wait = held.opened;
    const command = state.setWeights('shop', { v1: 30, v2: 70 }, 'alice');
    await new Promise((resolve) => setTimeout(resolve, 10));
    t.ok(routes.applyConfig(reloadOf(true)).ok);
    held.open();
    const outcome = await command.then(
      () => 'applied',
      (err: unknown) => (err as { code?: string }).code,
    );
    t.comment(`command: ${String(outcome)}`);
    t.same(weightsOf(state, 'shop'), { v1: 100 }, "the config's weights are served");
    t.same(state.history().at(-1)?.after, weightsOf(state, 'shop'), "the last history line's `after` is what is served");
  },
);
