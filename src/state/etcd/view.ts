// One replica's picture of the etcd prefix, built from a full read and kept
// current by the watch and by this replica's own saves. Only ever moves
// forward: an event older than what the view holds for a key is ignored, so
// the echo of an own save, or a late event, never rolls a service back.
//
//   services  NAME -> { rev, present, record, json }   rev = mod revision (or the delete's)
//   history   [{ seq, key, entry }]                      seq = create revision, sorted
//   replicas  ID -> { applied, at }                      live replicas (keys on their leases)
//   leader    ID | null
//   revision  the newest services/ or history/ revision seen

import type { IEvent, IKeyValue } from 'etcd3';
import { decodeHistoryEntry, decodeReplicaMarker, decodeServiceRecord, type EtcdKeys, type ReplicaMarker } from './keys.ts';
import { STATE_FORMAT, type HistoryEntry, type PersistedState, type ServiceRecord } from '../records.ts';
import type { ReplicaView } from '../store.ts';

interface ServiceSlot {
  readonly rev: number;
  /** Whether the key exists in etcd (false after a delete: the service has no runtime state). */
  readonly present: boolean;
  readonly record: ServiceRecord;
  readonly json: string;
}

interface HistorySlot {
  readonly seq: number;
  readonly key: string;
  readonly entry: HistoryEntry;
}

/** A value under the prefix that is not what veer writes there. */
export interface ViewProblem {
  readonly key: string;
  readonly error: string;
}

/** What a batch of watch events changed. */
export interface ViewDelta {
  readonly state: boolean;
  /** The services whose records changed (a history-only change names none). */
  readonly services: ReadonlySet<string>;
  readonly replicas: boolean;
  /** `deleted`: the leader key is gone (campaign); `changed`: someone holds it now. */
  readonly leader: 'deleted' | 'changed' | null;
  readonly problems: readonly ViewProblem[];
}

const EMPTY_JSON = '{}';

/** The replica's current picture of the prefix. */
export class EtcdView {
  readonly #keys: EtcdKeys;
  readonly #historyLimit: number;
  #services = new Map<string, ServiceSlot>();
  #history: HistorySlot[] = [];
  #replicas = new Map<string, ReplicaMarker>();
  #leader: string | null = null;
  #revision = 0;
  #snapshot: { state: PersistedState; revision: number } | null = null;

  constructor(keys: EtcdKeys, historyLimit: number) {
    this.#keys = keys;
    this.#historyLimit = historyLimit;
  }

  /** The newest state revision seen. */
  get revision(): number {
    return this.#revision;
  }

  get leader(): string | null {
    return this.#leader;
  }

  /** Replaces the whole view with a full read of the prefix at `revision`. */
  reset(kvs: readonly IKeyValue[], revision: number): ViewProblem[] {
    this.#services = new Map();
    this.#history = [];
    this.#replicas = new Map();
    this.#leader = null;
    this.#revision = 0;
    const problems: ViewProblem[] = [];
    for (const kv of kvs) this.#put(kv, problems);
    this.#history.sort((a, b) => a.seq - b.seq);
    // Everything up to the read's revision is in the view, whatever keys it touched.
    this.#revision = Math.max(this.#revision, revision);
    this.#snapshot = null;
    return problems;
  }

  /** Applies one watch response's events. */
  apply(events: readonly IEvent[]): ViewDelta {
    let state = false;
    const services = new Set<string>();
    let replicas = false;
    let leader: ViewDelta['leader'] = null;
    const problems: ViewProblem[] = [];
    for (const event of events) {
      const key = this.#keys.parse(event.kv.key.toString());
      if (event.type === 'Put') {
        const changed = this.#put(event.kv, problems);
        if (key.kind === 'service' || key.kind === 'history') state ||= changed;
        if (key.kind === 'service' && changed) services.add(key.name);
        if (key.kind === 'replica') replicas = true;
        if (key.kind === 'leader') leader = 'changed';
        continue;
      }
      const rev = Number(event.kv.mod_revision);
      if (key.kind === 'service') {
        const slot = this.#services.get(key.name);
        if (slot === undefined || rev > slot.rev) {
          this.#services.set(key.name, { rev, present: false, record: {}, json: EMPTY_JSON });
          state = true;
          services.add(key.name);
        }
        this.#revision = Math.max(this.#revision, rev);
      } else if (key.kind === 'history') {
        const name = event.kv.key.toString();
        const before = this.#history.length;
        this.#history = this.#history.filter((h) => h.key !== name);
        state ||= this.#history.length !== before;
      } else if (key.kind === 'replica') {
        replicas = this.#replicas.delete(key.id) || replicas;
      } else if (key.kind === 'leader') {
        this.#leader = null;
        leader = 'deleted';
      }
    }
    if (state) this.#snapshot = null;
    return { state, services, replicas, leader, problems };
  }

  /** Records this replica's own save (its watch echo is then ignored as not newer). */
  recordSave(service: string, after: ServiceRecord, entry: HistoryEntry, historyKey: string, revision: number, withLine = true): void {
    const present = Object.keys(after).length > 0;
    this.#services.set(service, { rev: revision, present, record: present ? after : {}, json: present ? JSON.stringify(after) : EMPTY_JSON });
    if (withLine && !this.#history.some((h) => h.seq === revision)) this.#history.push({ seq: revision, key: historyKey, entry });
    this.#revision = Math.max(this.#revision, revision);
    this.#snapshot = null;
  }

  /** Records a newer version of a service learnt from a refused save. */
  recordCurrent(kv: IKeyValue | undefined, service: string, revision: number): void {
    if (kv !== undefined) this.#put(kv, []);
    else {
      const slot = this.#services.get(service);
      // Absent now: its delete happened at or before `revision`.
      if (slot === undefined || (slot.present && slot.rev < revision)) this.#services.set(service, { rev: revision, present: false, record: {}, json: EMPTY_JSON });
    }
    this.#revision = Math.max(this.#revision, revision);
    this.#snapshot = null;
  }

  /** The service as this replica last saw it: its record's JSON ({} when none), its mod revision (0 when absent) and record. */
  seen(service: string): { json: string; modRevision: number; record: ServiceRecord; revision: number } {
    const slot = this.#services.get(service);
    if (slot === undefined) return { json: EMPTY_JSON, modRevision: 0, record: {}, revision: 0 };
    return { json: slot.json, modRevision: slot.present ? slot.rev : 0, record: slot.record, revision: slot.rev };
  }

  /** The document this view describes (cached until the next change). */
  snapshot(): { state: PersistedState; revision: number } {
    if (this.#snapshot !== null && this.#snapshot.revision === this.#revision) return this.#snapshot;
    const services: Record<string, ServiceRecord> = {};
    for (const [name, slot] of this.#services) if (slot.present) services[name] = slot.record;
    const tail = this.#history.length > this.#historyLimit ? this.#history.slice(this.#history.length - this.#historyLimit) : this.#history;
    const history = tail.map((h) => h.entry);
    const state: PersistedState = { format: STATE_FORMAT, updatedAt: history.at(-1)?.at ?? new Date(0).toISOString(), services, history };
    this.#snapshot = { state, revision: this.#revision };
    return this.#snapshot;
  }

  /** History keys beyond the limit, oldest first (the leader deletes them). */
  excessHistoryKeys(): string[] {
    const excess = this.#history.length - this.#historyLimit;
    return excess > 0 ? this.#history.slice(0, excess).map((h) => h.key) : [];
  }

  /** Sets this replica's own marker (before etcd echoes it back). */
  setReplica(id: string, marker: ReplicaMarker): void {
    this.#replicas.set(id, marker);
  }

  /** Which revision of the service each live replica has applied. */
  replicaView(service: string, self: string): ReplicaView {
    const revision = this.seen(service).revision;
    const replicas = [...this.#replicas].map(([id, m]) => ({ id, applied: m.applied, at: m.at })).sort((a, b) => a.id.localeCompare(b.id));
    return { revision, allApplied: replicas.every((r) => r.applied >= revision), self, leader: this.#leader, replicas };
  }

  /** Stores one key-value; returns whether the view changed. */
  #put(kv: IKeyValue, problems: ViewProblem[]): boolean {
    const name = kv.key.toString();
    const key = this.#keys.parse(name);
    const text = kv.value.toString();
    const rev = Number(kv.mod_revision);
    switch (key.kind) {
      case 'service': {
        this.#revision = Math.max(this.#revision, rev);
        const slot = this.#services.get(key.name);
        if (slot !== undefined && slot.rev >= rev) return false;
        const decoded = decodeServiceRecord(text);
        if (!decoded.ok) {
          problems.push({ key: name, error: decoded.error });
          return false;
        }
        this.#services.set(key.name, { rev, present: true, record: decoded.record, json: JSON.stringify(decoded.record) });
        return true;
      }
      case 'history': {
        const seq = Number(kv.create_revision);
        this.#revision = Math.max(this.#revision, rev);
        if (this.#history.some((h) => h.seq === seq)) return false;
        const decoded = decodeHistoryEntry(text, seq);
        if (!decoded.ok) {
          problems.push({ key: name, error: decoded.error });
          return false;
        }
        const slot = { seq, key: name, entry: decoded.entry };
        if (this.#history.length === 0 || this.#history.at(-1)!.seq < seq) this.#history.push(slot);
        else {
          this.#history.push(slot);
          this.#history.sort((a, b) => a.seq - b.seq);
        }
        return true;
      }
      case 'replica': {
        const marker = decodeReplicaMarker(text);
        if (marker !== null) this.#replicas.set(key.id, marker);
        return false;
      }
      case 'leader':
        this.#leader = text;
        return false;
      default:
        return false;
    }
  }
}
