// The etcd store: runtime weights, rollouts, shifts and history shared by
// every replica under one key prefix (layout in etcd-keys.ts). Whether etcd
// is up, the heartbeat and reconnecting are etcd-connection.ts's.
//
// While up: a save is one transaction, "if the service key is still at the
// revision this replica last saw, write it and the history line, else give
// me the current one" (a refusal is a 409 with the current state); the
// watch brings other replicas' changes; this replica's marker records the
// revision it has applied; one replica holds the leader key (etcd-leader.ts).
// While down: saves fail at once (503), nothing changes, traffic keeps the
// last table; no replica leads.

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { IKeyValue, IWatchResponse } from 'etcd3';
import type { Logger } from '../../log/index.ts';
import { EtcdConnection } from './connection.ts';
import type { EtcdSecurity } from '../../config/index.ts';
import { EtcdKeys, type ReplicaMarker } from './keys.ts';
import { campaignForLeader } from './leader.ts';
import type { EtcdSession } from './session.ts';
import { EtcdView } from './view.ts';
import { EtcdWindowBoard } from './windows.ts';
import { LeadershipFlag } from '../leadership.ts';
import type { PersistedState } from '../records.ts';
import { StateLoadError, StoreConflictError, type ReplicaView, type SaveChange, type SaveResult, type StateStore, type StoreChange, type StoreHealth } from '../store.ts';

/** How to reach etcd and how this replica takes part. */
export interface EtcdStoreOptions {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  /** TLS files and etcd user, read at start (readEtcdSecurity); none by default. */
  readonly security?: EtcdSecurity;
  readonly log: Logger;
  /** This replica's name under PREFIX/replicas/ (default HOST-PID-RANDOM). */
  readonly replicaId?: string;
  /** TTL of the replica's lease in seconds: how long a dead leader holds on (default 3). */
  readonly leaseTtlSeconds?: number;
  /** Deadline of each etcd call (default 1500 ms). */
  readonly callTimeoutMs?: number;
  /** History lines kept (default 1000). */
  readonly historyLimit?: number;
}

/** History keys beyond the limit (at most this many, or a tenth of it) before the leader deletes them. */
const TRIM_SLACK = 50;

/** A StateStore on etcd, shared by every replica that uses the same prefix. */
export class EtcdStore implements StateStore {
  readonly description: string;
  readonly replicaId: string;
  readonly leadership = new LeadershipFlag();
  /** Each replica's analysis windows of services in a rollout (windows.ts). */
  readonly fleet: EtcdWindowBoard;
  readonly #keys: EtcdKeys;
  readonly #view: EtcdView;
  readonly #log: Logger;
  readonly #connection: EtcdConnection;
  readonly #trimSlack: number;
  readonly #listeners: ((changed: StoreChange) => void)[] = [];
  readonly #waiters = new Set<() => void>();
  #applied = 0;
  #markerDirty = false;
  #markerWriting = false;
  #campaigning = false;
  #trimming = false;

  constructor(options: EtcdStoreOptions) {
    this.#keys = new EtcdKeys(options.prefix);
    const endpoints = [...options.endpoints];
    this.#log = options.log;
    const historyLimit = options.historyLimit ?? 1000;
    this.#view = new EtcdView(this.#keys, historyLimit);
    this.#trimSlack = Math.max(1, Math.min(TRIM_SLACK, Math.floor(historyLimit / 10)));
    this.replicaId = options.replicaId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.description = `etcd ${endpoints.join(',')} prefix ${this.#keys.prefix}`;
    this.fleet = new EtcdWindowBoard(this.#keys, this.replicaId, () => this.#connection.session);
    this.#connection = new EtcdConnection({
      endpoints,
      security: options.security ?? {},
      keys: this.#keys,
      replicaId: this.replicaId,
      description: this.description,
      log: this.#log,
      ttlSeconds: options.leaseTtlSeconds ?? 3,
      callTimeoutMs: options.callTimeoutMs ?? 1500,
      events: {
        marker: () => this.#marker(),
        read: (kvs, revision, strict) => this.#read(kvs, revision, strict),
        events: (session, res) => this.#onWatch(session, res),
        up: (session, wasDown, downMs) => this.#up(session, wasDown, downMs),
        beat: (session) => this.#beat(session),
        down: () => this.leadership.set(false),
        closing: () => {
          this.leadership.set(false);
          this.#resolveWaiters();
        },
      },
    });
  }

  /** Connects and reads the prefix; null (and the config's weights) when etcd cannot be reached now. */
  async load(): Promise<PersistedState | null> {
    return (await this.#connection.start()) ? this.#view.snapshot().state : null;
  }

  /** Saves one service and its history line if the service is still where this replica last saw it. */
  async save(_state: PersistedState, change?: SaveChange): Promise<SaveResult> {
    if (change === undefined) throw new Error('the etcd store saves one service change at a time');
    const session = this.#connection.session;
    if (session === null) throw new Error(`etcd is unreachable${this.#connection.lastError ? ` (${this.#connection.lastError})` : ''}`);
    // A release writes several services: every one is compared and written in the same transaction.
    const parts = [{ service: change.service, before: change.before, after: change.after }, ...(change.more ?? [])];
    const seens = parts.map((p) => this.#view.seen(p.service));
    parts.forEach((p, i) => {
      // The view is ahead of the record the command decided on: another replica changed it meanwhile.
      if (JSON.stringify(p.before) !== seens[i]!.json) throw new StoreConflictError(p.service, seens[i]!.record, seens[i]!.revision);
    });
    const { client } = session;
    const historyKey = this.#keys.newHistory(this.replicaId, Date.now());
    const { seq: _seq, ...line } = change.entry;
    const writes = parts.map((p) => {
      const key = this.#keys.service(p.service);
      return Object.keys(p.after).length > 0 ? client.put(key).value(JSON.stringify(p.after)) : client.delete().key(key);
    });
    let res;
    try {
      let txn = client.if(this.#keys.service(parts[0]!.service), 'Mod', '==', seens[0]!.modRevision);
      for (let i = 1; i < parts.length; i++) txn = txn.and(this.#keys.service(parts[i]!.service), 'Mod', '==', seens[i]!.modRevision);
      res = await txn
        .then(...writes, client.put(historyKey).value(JSON.stringify(line)))
        .else(...parts.map((p) => client.get(this.#keys.service(p.service))))
        .commit();
    } catch (err) {
      this.#connection.checkNow();
      throw err;
    }
    const revision = Number(res.header.revision);
    const names = new Set(parts.map((p) => p.service));
    if (!res.succeeded) {
      parts.forEach((p, i) => this.#view.recordCurrent(res.responses[i]?.response_range?.kvs[0], p.service, revision));
      this.#notify(names);
      const moved = parts.find((p) => JSON.stringify(p.before) !== this.#view.seen(p.service).json) ?? parts[0]!;
      const now = this.#view.seen(moved.service);
      throw new StoreConflictError(moved.service, now.record, now.revision);
    }
    parts.forEach((p, i) => this.#view.recordSave(p.service, p.after, { ...change.entry, seq: revision }, historyKey, revision, i === 0));
    if (this.leadership.isLeader()) void this.#trimHistory(session);
    // Runtime state then records the revision as applied (after publishing this change).
    this.#notify(names);
    return { revision };
  }

  async check(): Promise<{ ok: true } | { ok: false; error: string }> {
    return this.#connection.phase === 'up' ? { ok: true } : { ok: false, error: this.#connection.downMessage() };
  }

  async health(): Promise<StoreHealth> {
    const base = { kind: this.description, replica: this.replicaId, leader: this.leadership.isLeader(), applied: this.#applied };
    const phase = this.#connection.phase;
    if (phase === 'up') return { ...base, status: 'ok', revision: this.#view.revision };
    if (phase === 'closed') return { ...base, status: 'failing', error: 'the store is closed' };
    return {
      ...base,
      status: 'degraded',
      error: this.#connection.downMessage(),
      serving: this.#connection.everConnected ? 'the last known weights' : "the config's initial weights (etcd was unreachable at start)",
      writes: 'refused with 503 store_unavailable until etcd is back',
    };
  }

  watch(listener: (changed: StoreChange) => void): void {
    this.#listeners.push(listener);
  }

  latest(): { state: PersistedState; revision: number } | null {
    return this.#connection.everConnected ? this.#view.snapshot() : null;
  }

  markApplied(revision: number): void {
    if (revision <= this.#applied) return;
    this.#applied = revision;
    this.#view.setReplica(this.replicaId, { applied: revision, at: new Date().toISOString() });
    this.#markerDirty = true;
    this.#resolveWaiters();
    void this.#writeMarker();
  }

  replicas(service: string): ReplicaView {
    return this.#view.replicaView(service, this.replicaId);
  }

  whenApplied(service: string, timeoutMs: number): Promise<boolean> {
    if (this.replicas(service).allApplied) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(ok);
      };
      const check = () => {
        if (this.#connection.phase === 'closed') done(false);
        else if (this.replicas(service).allApplied) done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      timer.unref();
      this.#waiters.add(check);
    });
  }

  /** Stops the heartbeat and gives up the lease: the leader key and this replica's marker go at once. */
  close(): Promise<void> {
    return this.#connection.close();
  }

  #marker(): ReplicaMarker {
    const marker = { applied: this.#applied, at: new Date().toISOString() };
    this.#view.setReplica(this.replicaId, marker);
    return marker;
  }

  #read(kvs: readonly IKeyValue[], revision: number, strict: boolean): void {
    for (const p of this.#view.reset(kvs, revision)) {
      if (strict) throw new StateLoadError('corrupt', `etcd key ${p.key}`, p.error);
      this.#log.error({ key: p.key, error: p.error }, 'ignoring a value in etcd that is not a veer record');
    }
  }

  #up(session: EtcdSession, wasDown: boolean, downMs: number | null): void {
    if (wasDown) this.#log.info({ store: this.description, revision: this.#view.revision, downMs }, 'etcd is reachable again: state resynced');
    this.#notify('all');
    this.#resolveWaiters();
    void this.#campaign(session);
  }

  #onWatch(session: EtcdSession, res: IWatchResponse): void {
    if (!this.#connection.isCurrent(session)) return;
    const delta = this.#view.apply(res.events ?? []);
    for (const p of delta.problems) this.#log.error({ key: p.key, error: p.error }, 'ignoring a value in etcd that is not a veer record');
    if (delta.leader === 'deleted') void this.#campaign(session);
    else if (delta.leader === 'changed') this.#setLeader(this.#view.leader === this.replicaId);
    if (delta.state) this.#notify(delta.services);
    if (delta.replicas) this.#resolveWaiters();
  }

  /**
   * Every way of learning who leads ends here, so the log says it once per
   * change: a campaign whose answer timed out may still have won, and then
   * the watch is what tells.
   */
  #setLeader(leads: boolean): void {
    if (leads && !this.leadership.isLeader()) this.#log.info({ replica: this.replicaId }, 'this replica now leads: it drives rollouts and shifts');
    this.leadership.set(leads);
  }

  async #campaign(session: EtcdSession): Promise<void> {
    if (this.#campaigning || !this.#connection.isCurrent(session)) return;
    this.#campaigning = true;
    try {
      const holder = await campaignForLeader(session.client, this.#keys, this.replicaId, session.leaseId);
      if (!this.#connection.isCurrent(session)) return;
      this.#setLeader(holder === this.replicaId);
    } catch (err) {
      this.#log.debug({ err }, 'leader campaign failed; trying again at the next heartbeat');
    } finally {
      this.#campaigning = false;
    }
  }

  /** A heartbeat kept the lease: campaign when nobody leads, retry an unwritten marker. */
  #beat(session: EtcdSession): void {
    if (this.#view.leader === null) void this.#campaign(session);
    if (this.#markerDirty) void this.#writeMarker();
  }

  /** Writes this replica's applied revision (on its lease); coalesces bursts, retried by the heartbeat. */
  async #writeMarker(): Promise<void> {
    if (this.#markerWriting) return;
    this.#markerWriting = true;
    try {
      for (let i = 0; i < 100 && this.#markerDirty; i++) {
        const session = this.#connection.session;
        if (session === null) return;
        this.#markerDirty = false;
        const marker = { applied: this.#applied, at: new Date().toISOString() };
        await session.client.put(this.#keys.replica(this.replicaId)).value(JSON.stringify(marker)).lease(session.leaseId);
      }
    } catch (err) {
      this.#markerDirty = true;
      this.#log.debug({ err }, 'could not record the applied revision; retrying at the next heartbeat');
    } finally {
      this.#markerWriting = false;
    }
  }

  /** The leader deletes history lines beyond the limit, in one fenced transaction per 100. */
  async #trimHistory(session: EtcdSession): Promise<void> {
    const excess = this.#view.excessHistoryKeys();
    if (this.#trimming || excess.length < this.#trimSlack) return;
    this.#trimming = true;
    try {
      for (let i = 0; i < excess.length; i += 100) {
        const batch = excess.slice(i, i + 100).map((key) => session.client.delete().key(key));
        await session.client.if(this.#keys.leader, 'Value', '==', this.replicaId).then(...batch).commit();
      }
    } catch (err) {
      this.#log.debug({ err }, 'history trim failed; trying again after the next change');
    } finally {
      this.#trimming = false;
    }
  }

  #notify(changed: StoreChange): void {
    for (const listener of this.#listeners) listener(changed);
  }

  #resolveWaiters(): void {
    for (const check of [...this.#waiters]) check();
  }
}
