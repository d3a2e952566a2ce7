// The command pipeline: weights set through the admin API, rollouts, shifts
// and the history of every change, kept in a store and published through
// the TablePublisher.
//
// Every write is a command, run one at a time (CommandQueue):
//
//   decide(view) ──> check weights ──> compile the service ──> save document ──> publish that table ──> notify
//        │                 │                  │                       │
//        └─ throws VeerError: nothing changed ┴───────────────────────┘ (store_unavailable)
//
// The in-memory document is replaced only after the save succeeded, and the
// table only after that, so a failure at any step leaves no trace. A command
// compiles the one service it changes, once: the table it previewed is the
// table it publishes.
//
// With a shared store (etcd), a save is a compare-and-swap on the service's
// revision (refused: 409 conflict with the current state), and other
// replicas' changes arrive through the store's watch: they are applied in
// the same queue, by reading the store's newest document and republishing
// the table from it, never saving it again.

import { VeerError } from '../errors.ts';
import type { Logger } from '../log/index.ts';
import { withPreview, type CompiledService, type CompileIssue, type RouteTable, type RuntimeWeights, type WeightChanges } from '../table/index.ts';
import { CommandQueue } from './command-queue.ts';
import { emptyState, isReleaseActive, isRolloutActive, type HistoryEntry, type PersistedState, type ReleaseRecord, type RolloutRecord, type ServiceRecord, type ShiftRecord, type WeightMap } from './records.ts';
import type { TablePublisher } from './table-publisher.ts';
import { StateLoadError, StoreConflictError, type Leadership, type ReplicaView, type SaveChange, type SaveResult, type StateStore, type StoreChange } from './store.ts';
import { checkWeights } from './weights.ts';

/** What a command changes for one service: `undefined` keeps a part, `null` removes it. */
export interface ServiceChange {
  readonly weights?: Readonly<Record<string, unknown>> | null;
  readonly rollout?: RolloutRecord | null;
  readonly shift?: ShiftRecord | null;
  /** With `weights`: the version a blue-green rollout's preview rule sends to while these weights hold (absent: no preview). */
  readonly preview?: string;
  /** History line: what happened (`weights`, `rollout.abort`, ...), why, and the numbers behind it. */
  readonly action: string;
  readonly reason: string;
  readonly details?: unknown;
}

/** What a multi-service command changes in one service (as ServiceChange, without the history line). */
export interface MemberChange {
  readonly weights?: Readonly<Record<string, unknown>> | null;
  readonly rollout?: RolloutRecord | null;
  readonly shift?: ShiftRecord | null;
  readonly release?: ReleaseRecord | null;
}

/**
 * A change of several services at once (a release step): saved as one
 * change (one etcd transaction), published as one table, one history line
 * whose `service` is `subject` and whose before/after name `service/version`.
 */
export interface MultiChange {
  readonly subject: string;
  readonly members: Readonly<Record<string, MemberChange>>;
  readonly action: string;
  readonly reason: string;
  readonly details?: unknown;
}

/** What a command's decision sees: the service as published and as stored. */
export interface ServiceView {
  readonly service: CompiledService;
  readonly record: ServiceRecord;
  readonly now: number;
}

/** The outcome of a command. */
export interface CommandResult {
  readonly service: string;
  readonly record: ServiceRecord;
  readonly entry: HistoryEntry;
  readonly generation: number;
}

/** Called after each applied command, with the service's new record. */
export type ChangeListener = (service: string, record: ServiceRecord, entry: HistoryEntry) => void;

/** How to build a RuntimeState. */
export interface RuntimeStateOptions {
  readonly routes: TablePublisher;
  readonly store: StateStore;
  readonly log: Logger;
  readonly now?: () => number;
  /** History lines kept (default 1000; older ones are dropped). */
  readonly historyLimit?: number;
}

/** Owns runtime weights, rollouts, shifts and history; the one path by which they change. */
export class RuntimeState {
  readonly routes: TablePublisher;
  readonly store: StateStore;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #historyLimit: number;
  readonly #queue = new CommandQueue();
  readonly #listeners: ChangeListener[] = [];
  #doc: PersistedState;
  #storeOk = true;
  /** Services named by store changes not applied yet (null: nothing queued). */
  #remotePending: Set<string> | 'all' | null = null;

  /** Resolves once every process serving traffic runs the published table (cluster workers); null with one process. */
  #settle: (() => Promise<void>) | null = null;

  constructor(options: RuntimeStateOptions) {
    this.routes = options.routes;
    this.store = options.store;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.#historyLimit = options.historyLimit ?? 1000;
    this.#doc = emptyState(new Date(this.#now()).toISOString());
  }

  /**
   * Makes the applied revision wait for `settle`: with cluster workers, a
   * change is applied when the workers serve it, not when the primary has
   * compiled it. A rollout step waits on every replica's applied revision.
   */
  settleWith(settle: () => Promise<void>): void {
    this.#settle = settle;
  }

  /**
   * Loads the stored document and publishes its weights over the config's.
   * Throws StateLoadError when the store holds something it cannot trust.
   * Returns the compile warnings (e.g. stored weights that no longer fit the config).
   */
  async start(): Promise<readonly CompileIssue[]> {
    // Listening before loading: a change that lands meanwhile is applied right after.
    this.store.watch((changed) => this.#queueRemote(changed));
    return this.#queue.run(async () => {
      const doc = await this.store.load();
      if (doc === null) return [];
      this.#doc = doc;
      const weights = runtimeWeightsOf(doc);
      if (Object.keys(weights).length === 0) return [];
      const result = this.routes.publishWeights(weights);
      if (!result.ok) throw new StateLoadError('corrupt', this.store.description, result.issues.map((i) => i.message).join('; '));
      return result.warnings;
    });
  }

  /** Whether this replica drives rollouts and shifts (always, unless a shared store elected another). */
  get leadership(): Leadership {
    return this.store.leadership;
  }

  /** Which revision of the service each live replica has applied; null without a shared store. */
  replicas(service: string): ReplicaView | null {
    return this.store.replicas(service);
  }

  /** Resolves true once every live replica serves the service's current state (at once without a shared store). */
  whenApplied(service: string, timeoutMs: number): Promise<boolean> {
    return this.store.whenApplied(service, timeoutMs);
  }

  /** The published route table. */
  get table(): RouteTable {
    return this.routes.table;
  }

  /** False after a save failed, until one succeeds again. */
  get storeOk(): boolean {
    return this.#storeOk;
  }

  /** The stored record of a service ({} when nothing is stored). */
  record(service: string): ServiceRecord {
    return this.#doc.services[service] ?? {};
  }

  /** Every service with a stored record. */
  records(): Readonly<Record<string, ServiceRecord>> {
    return this.#doc.services;
  }

  /** History lines, oldest first: the last `limit`, optionally of one service. */
  history(options: { service?: string; limit?: number } = {}): readonly HistoryEntry[] {
    const all = options.service === undefined ? this.#doc.history : this.#doc.history.filter((e) => e.service === options.service);
    const limit = options.limit ?? all.length;
    return limit >= all.length ? all : all.slice(all.length - limit);
  }

  /** Runs `task` between commands, never during one (a config reload publishes through it). */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    return this.#queue.run(task);
  }

  /** Resolves once every command queued so far has finished. */
  idle(): Promise<void> {
    return this.#queue.run(async () => {});
  }

  /** Adds a listener for applied commands. */
  onChange(listener: ChangeListener): void {
    this.#listeners.push(listener);
  }

  /** Operator weights: refused with 409 while a rollout or a shift holds the service. */
  setWeights(service: string, weights: Readonly<Record<string, unknown>>, actor: string): Promise<CommandResult> {
    return this.command(service, actor, ({ record }) => {
      refuseWhileBusy(service, record, 'set weights');
      return { weights, action: 'weights', reason: 'weights set' };
    });
  }

  /** Drops the service's runtime weights: the config's weights apply again. */
  resetWeights(service: string, actor: string): Promise<CommandResult> {
    return this.command(service, actor, ({ record }) => {
      refuseWhileBusy(service, record, 'reset weights');
      return { weights: null, action: 'weights.reset', reason: "runtime weights dropped; the config's weights apply" };
    });
  }

  /**
   * Saves a change to the store, or refuses it: a conflict (another replica
   * changed the state first) or an unreachable store leaves everything as it was.
   */
  async #save(doc: PersistedState, change: SaveChange): Promise<SaveResult | void> {
    try {
      const saved = await this.store.save(doc, change);
      this.#storeOk = true;
      return saved;
    } catch (err) {
      if (err instanceof StoreConflictError) {
        throw new VeerError('conflict', `${err.message}; nothing was applied: retry against the current state`, { cause: err, details: { current: { revision: err.revision, ...err.current } } });
      }
      this.#storeOk = false;
      this.#log.error({ err, store: this.store.description }, 'state store write failed; the change was not applied');
      throw new VeerError('store_unavailable', `could not save the change to ${this.store.description}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Runs one command: `decide` sees the current view and returns the change,
   * or throws a VeerError to refuse it. Commands run one at a time.
   */
  command(service: string, actor: string, decide: (view: ServiceView) => ServiceChange): Promise<CommandResult> {
    return this.#queue.run(async () => {
      const compiled = this.table.servicesByName.get(service);
      if (compiled === undefined) throw new VeerError('unknown_service', `no service named ${JSON.stringify(service)}`);
      const now = this.#now();
      const current = this.#doc.services[service] ?? {};
      const change = decide({ service: compiled, record: current, now });

      const next: Record<string, unknown> = { ...current };
      if (change.weights === null) delete next.weights;
      else if (change.weights !== undefined) next.weights = withPreview(checkWeights(compiled, change.weights), change.preview);
      if (change.rollout === null) delete next.rollout;
      else if (change.rollout !== undefined) next.rollout = change.rollout;
      if (change.shift === null) delete next.shift;
      else if (change.shift !== undefined) next.shift = change.shift;
      const record = next as ServiceRecord;

      const services = { ...this.#doc.services, [service]: record };
      if (Object.keys(record).length === 0) delete services[service];
      // Only a change of the service's runtime weights changes the table; then that service alone is compiled.
      const changes: WeightChanges | null = change.weights === undefined ? null : { [service]: record.weights ?? null };
      let candidate: RouteTable | null = null;
      if (changes !== null) {
        const preview = this.routes.preview(changes);
        if (!preview.ok) throw new VeerError('invalid_weights', preview.issues.map((i) => i.message).join('; '));
        const ignored = preview.warnings.find((w) => w.code === 'runtime_weights_ignored');
        if (ignored && change.weights) throw new VeerError('invalid_weights', ignored.message);
        candidate = preview.table;
      }

      const at = new Date(now).toISOString();
      const after = (candidate?.servicesByName.get(service) ?? compiled).split.weights;
      let entry: HistoryEntry = {
        seq: (this.#doc.history.at(-1)?.seq ?? 0) + 1,
        at,
        service,
        actor,
        action: change.action,
        reason: change.reason,
        before: { ...compiled.split.weights },
        after: { ...after },
        ...(change.details === undefined ? {} : { details: change.details }),
      };
      const history = [...this.#doc.history, entry];
      if (history.length > this.#historyLimit) history.splice(0, history.length - this.#historyLimit);
      const doc: PersistedState = { ...this.#doc, updatedAt: at, services, history };

      const saved = await this.#save(doc, { service, before: current, after: record, entry });
      if (saved !== undefined && saved.revision !== entry.seq) {
        // A shared store numbers history lines by the revision the change landed at.
        entry = { ...entry, seq: saved.revision };
        history[history.length - 1] = entry;
      }
      this.#doc = doc;
      let generation = this.table.generation;
      if (candidate !== null && changes !== null) {
        const published = this.routes.publish(candidate, changes);
        // Weights never make a compile fail (they are ignored with a warning); only a bug gets here.
        if (!published.ok) throw new VeerError('internal_error', published.issues.map((i) => i.message).join('; '));
        generation = published.table.generation;
        const served = published.table.servicesByName.get(service)?.split.weights;
        if (served !== undefined && canonicalJson(served) !== canonicalJson(entry.after)) {
          // A reload published in between (its config lacks a version the weights name): they are kept,
          // as stored weights are, and apply again when the version comes back; the history says what is served.
          for (const w of published.warnings) this.#log.warn({ code: w.code, service }, w.message);
          entry = { ...entry, after: { ...served } };
          history[history.length - 1] = entry;
        }
      }
      this.#log.info({ service, actor, action: entry.action, before: entry.before, after: entry.after, reason: entry.reason }, 'state changed');
      for (const listener of this.#listeners) listener(service, record, entry);
      return { service, record, entry, generation };
    });
  }

  /**
   * Runs one command over several services (a release): `decide` sees each
   * service's view and returns every member's change; all are checked,
   * saved in one store change and published in one table, or none is.
   */
  commandMany(services: readonly string[], actor: string, decide: (views: ReadonlyMap<string, ServiceView>, now: number) => MultiChange): Promise<CommandResult[]> {
    return this.#queue.run(async () => {
      const now = this.#now();
      const views = new Map<string, ServiceView>();
      for (const service of services) {
        const compiled = this.table.servicesByName.get(service);
        if (compiled === undefined) throw new VeerError('unknown_service', `no service named ${JSON.stringify(service)}`);
        views.set(service, { service: compiled, record: this.#doc.services[service] ?? {}, now });
      }
      const change = decide(views, now);
      const nextServices: Record<string, ServiceRecord> = { ...this.#doc.services };
      const changes: Record<string, WeightMap | null> = {};
      const parts: { service: string; before: ServiceRecord; after: ServiceRecord }[] = [];
      for (const [service, member] of Object.entries(change.members)) {
        const view = views.get(service);
        if (view === undefined) throw new VeerError('internal_error', `a release changed ${service}, which it did not read`);
        const next: Record<string, unknown> = { ...view.record };
        for (const part of ['rollout', 'shift', 'release'] as const) {
          if (member[part] === null) delete next[part];
          else if (member[part] !== undefined) next[part] = member[part];
        }
        if (member.weights === null) delete next.weights;
        else if (member.weights !== undefined) next.weights = checkWeights(view.service, member.weights);
        const record = next as ServiceRecord;
        if (member.weights !== undefined) changes[service] = record.weights ?? null;
        nextServices[service] = record;
        if (Object.keys(record).length === 0) delete nextServices[service];
        parts.push({ service, before: view.record, after: record });
      }
      if (parts.length === 0) throw new VeerError('internal_error', 'a multi-service command changed nothing');
      let candidate: RouteTable | null = null;
      if (Object.keys(changes).length > 0) {
        const preview = this.routes.preview(changes);
        if (!preview.ok) throw new VeerError('invalid_weights', preview.issues.map((i) => i.message).join('; '));
        candidate = preview.table;
      }
      const at = new Date(now).toISOString();
      const before: Record<string, number> = {};
      const after: Record<string, number> = {};
      for (const { service } of parts) {
        for (const [v, w] of Object.entries(views.get(service)!.service.split.weights)) before[`${service}/${v}`] = w;
        for (const [v, w] of Object.entries((candidate?.servicesByName.get(service) ?? views.get(service)!.service).split.weights)) after[`${service}/${v}`] = w;
      }
      let entry: HistoryEntry = {
        seq: (this.#doc.history.at(-1)?.seq ?? 0) + 1,
        at,
        service: change.subject,
        actor,
        action: change.action,
        reason: change.reason,
        before,
        after,
        ...(change.details === undefined ? {} : { details: change.details }),
      };
      const history = [...this.#doc.history, entry];
      if (history.length > this.#historyLimit) history.splice(0, history.length - this.#historyLimit);
      const doc: PersistedState = { ...this.#doc, updatedAt: at, services: nextServices, history };
      const [first, ...more] = parts;
      const saved = await this.#save(doc, { ...first!, entry, more });
      if (saved !== undefined && saved.revision !== entry.seq) {
        entry = { ...entry, seq: saved.revision };
        history[history.length - 1] = entry;
      }
      this.#doc = doc;
      let generation = this.table.generation;
      if (candidate !== null) {
        const published = this.routes.publish(candidate, changes);
        if (!published.ok) throw new VeerError('internal_error', published.issues.map((i) => i.message).join('; '));
        generation = published.table.generation;
      }
      this.#log.info({ subject: change.subject, actor, action: entry.action, after: entry.after, reason: entry.reason }, 'state changed');
      const results: CommandResult[] = [];
      for (const { service, after: record } of parts) {
        for (const listener of this.#listeners) listener(service, record, entry);
        results.push({ service, record, entry, generation });
      }
      return results;
    });
  }

  /** Queues one application of the store's newest document (bursts coalesce, and so do the services they name). */
  #queueRemote(changed: StoreChange): void {
    const pending = this.#remotePending;
    this.#remotePending = changed === 'all' || pending === 'all' ? 'all' : new Set([...(pending ?? []), ...changed]);
    if (pending !== null) return;
    this.#queue
      .run(async () => {
        const services = this.#remotePending ?? 'all';
        this.#remotePending = null;
        this.#applyLatest(services);
      })
      .catch((err: unknown) => this.#log.error({ err }, 'applying a change from the state store failed'));
  }

  /**
   * Adopts the shared store's newest document: republishes the weights that
   * changed, tells listeners, records the revision served. Only the services
   * the store named are looked at: one change on one of 10 000 services
   * costs one service.
   */
  #applyLatest(changed: StoreChange): void {
    const latest = this.store.latest();
    if (latest === null) return;
    const previous = this.#doc;
    const services = changed === 'all' ? new Set([...Object.keys(previous.services), ...Object.keys(latest.state.services)]) : changed;
    const current = this.routes.runtimeWeights;
    const changes: Record<string, WeightMap | null> = {};
    for (const service of services) {
      const next = latest.state.services[service]?.weights ?? null;
      if (canonicalJson(current[service] ?? null) !== canonicalJson(next)) changes[service] = next;
    }
    if (Object.keys(changes).length > 0) {
      const published = this.routes.publishWeights(changes);
      if (!published.ok) {
        this.#log.error({ store: this.store.description, errors: published.issues.map((i) => i.message) }, "stored weights do not fit this replica's config; keeping the current table");
        return;
      }
      for (const w of published.warnings) this.#log.warn({ code: w.code, store: this.store.description }, w.message);
    }
    this.#doc = latest.state;
    for (const service of services) {
      const record = latest.state.services[service] ?? {};
      if (canonicalJson(previous.services[service] ?? {}) === canonicalJson(record)) continue;
      const entry = latest.state.history.findLast((e) => e.service === service) ?? {
        seq: latest.revision,
        at: latest.state.updatedAt,
        service,
        actor: 'store',
        action: 'sync',
        reason: 'changed in the state store',
        before: {},
        after: {},
      };
      this.#log.info({ service, actor: entry.actor, action: entry.action, after: entry.after, revision: latest.revision }, 'state changed on another replica');
      for (const listener of this.#listeners) listener(service, record, entry);
    }
    this.#markApplied(latest.revision);
  }

  #markApplied(revision: number): void {
    const store = this.store;
    const settle = this.#settle;
    // Out-of-order settles are harmless: the store ignores a revision older than the one it has.
    if (settle === null) store.markApplied(revision);
    else void settle().then(() => store.markApplied(revision));
  }
}

/** JSON with object keys sorted, to compare documents built in different orders. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/** Throws when a rollout or a shift owns the service's weights. */
function refuseWhileBusy(service: string, record: ServiceRecord, what: string): void {
  if (isReleaseActive(record.release)) {
    throw new VeerError('release_holds_service', `cannot ${what}: release ${record.release!.name} holds ${service} (${record.release!.phase}); use the release verbs`);
  }
  if (isRolloutActive(record.rollout)) {
    throw new VeerError('rollout_conflict', `cannot ${what}: a rollout of ${service} is ${record.rollout!.phase}; use the rollout verbs (pause, resume, promote, abort)`);
  }
  if (record.shift !== undefined) {
    throw new VeerError('conflict', `cannot ${what}: a shift of ${service} toward ${record.shift.to} is running; stop it first (DELETE /api/v1/services/${service}/shift)`);
  }
}

function runtimeWeightsFromServices(services: Readonly<Record<string, ServiceRecord>>): RuntimeWeights {
  const out: Record<string, WeightMap> = {};
  for (const [name, record] of Object.entries(services)) if (record.weights !== undefined) out[name] = record.weights;
  return out;
}

function runtimeWeightsOf(doc: PersistedState): RuntimeWeights {
  return runtimeWeightsFromServices(doc.services);
}

