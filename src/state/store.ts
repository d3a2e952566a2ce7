// Where runtime state lives between restarts. A store loads the whole
// document once at start and saves the whole document after each command;
// a save either lands completely or not at all.
//
// A shared store (etcd) is also where the other replicas' changes come
// from: it checks each save against the revision this replica last saw of
// the service (compare-and-swap), pushes other replicas' changes through
// `watch`, elects the one replica that drives rollouts, and tracks which
// revision each live replica has applied. The file store has none of that.

import { CodedError } from '../errors.ts';
import type { HistoryEntry, PersistedState, ServiceRecord } from './records.ts';

/** A durable home for the state document. */
/** The services whose records changed, or `all` (the store read everything again). */
export type StoreChange = ReadonlySet<string> | 'all';

export interface StateStore {
  /** What the store is, for logs and /readyz (e.g. `file /var/lib/veer/state.json`). */
  readonly description: string;
  /**
   * Reads the document; null when there is none yet. Throws StateLoadError
   * when it exists but cannot be read or trusted: the caller must stop, not
   * start over and overwrite it.
   */
  load(): Promise<PersistedState | null>;
  /**
   * Writes the document atomically; throws when it could not be made durable.
   * `change` says which service changed from what (a shared store saves only
   * that service and its history line, and throws StoreConflictError when the
   * service changed elsewhere since `change.before` was read).
   */
  save(state: PersistedState, change?: SaveChange): Promise<SaveResult | void>;
  /** Health for /readyz: `ok`, `degraded` (a shared store unreachable, serving the last known state: still ready) or `failing`. */
  health(): Promise<StoreHealth>;
  /**
   * Calls `listener` when the document changed elsewhere (another replica, a
   * resync), with the services whose records changed (`all` after a whole
   * read), so that a change costs what it changes; read `latest()` then.
   */
  watch(listener: (changed: StoreChange) => void): void;
  /** The newest document seen from elsewhere and its revision; null when there is none (a file store, or before the first contact). */
  latest(): { readonly state: PersistedState; readonly revision: number } | null;
  /** This replica now serves everything up to `revision`. */
  markApplied(revision: number): void;
  /** Which revision of the service each live replica has applied; null when there are no other replicas to ask. */
  replicas(service: string): ReplicaView | null;
  /** Resolves true once every live replica has applied the service's current revision (false after `timeoutMs`). */
  whenApplied(service: string, timeoutMs: number): Promise<boolean>;
  /** Whether this replica drives rollouts and shifts. */
  readonly leadership: Leadership;
  /** Where replicas share their analysis windows with the leader; absent with one replica (the file store). */
  readonly fleet?: FleetWindowStore;
  /** Releases connections, leases and timers. */
  close(): Promise<void>;
}

/**
 * A shared board of small per-replica values, one per service in a rollout:
 * each replica overwrites its own, the leader reads everyone's. The values
 * are opaque here (the rollout room writes and reads them).
 */
export interface FleetWindowStore {
  /** This replica's name on the board (its entries are skipped by whoever reads its own windows directly). */
  readonly replicaId: string;
  /** Overwrites this replica's value for `service` (kept while this replica lives). */
  publish(service: string, value: string): Promise<void>;
  /** Every live replica's value for `service`, this one's included. */
  read(service: string): Promise<{ readonly replica: string; readonly value: string }[]>;
  /** Drops this replica's value for `service`. */
  remove(service: string): Promise<void>;
}

/** What one command changed, for stores that save per service. */
export interface SaveChange {
  readonly service: string;
  /** The service's record the command decided on ({} when it had none). */
  readonly before: ServiceRecord;
  /** The record to store ({} removes it). */
  readonly after: ServiceRecord;
  /** The history line of the change. */
  readonly entry: HistoryEntry;
  /** More services changed in the same step (a release): saved with `service` all or none, one transaction. */
  readonly more?: readonly { readonly service: string; readonly before: ServiceRecord; readonly after: ServiceRecord }[];
}

/** What a shared store says about a save: the revision it landed at (also the history line's `seq`). */
export interface SaveResult {
  readonly revision: number;
}

/** The store's health for /readyz. */
export interface StoreHealth {
  readonly kind: string;
  /** `degraded`: the store is unreachable but veer serves the last known (or the config's) weights. */
  readonly status: 'ok' | 'degraded' | 'failing';
  readonly error?: string;
  readonly [detail: string]: unknown;
}

/** Which revision of a service every live replica has applied. */
export interface ReplicaView {
  /** The revision of the service's stored record (0: never stored). */
  readonly revision: number;
  /** True when every live replica has applied `revision`. */
  readonly allApplied: boolean;
  readonly self: string;
  readonly leader: string | null;
  readonly replicas: readonly { readonly id: string; readonly applied: number; readonly at: string | null }[];
}

/** Whether this replica drives rollouts and shifts, and news of changes. */
export interface Leadership {
  isLeader(): boolean;
  onLeadership(listener: (leader: boolean) => void): void;
}

/** A save refused because the service changed elsewhere since this replica read it; `current` is what the store holds now. */
export class StoreConflictError extends CodedError<'conflict'> {
  readonly service: string;
  readonly current: ServiceRecord;
  readonly revision: number;
  constructor(service: string, current: ServiceRecord, revision: number) {
    super('conflict', `service ${service} was changed by another replica (now at revision ${revision}) after this one read it`);
    this.name = 'StoreConflictError';
    this.service = service;
    this.current = current;
    this.revision = revision;
  }
}

/** The state document exists but cannot be read (`unreadable`: store_unavailable) or is not valid (`corrupt`: state_corrupt). */
export class StateLoadError extends CodedError<'state_corrupt' | 'store_unavailable'> {
  readonly kind: 'corrupt' | 'unreadable';
  readonly location: string;
  constructor(kind: 'corrupt' | 'unreadable', location: string, detail: string, options?: { cause?: unknown }) {
    super(kind === 'corrupt' ? 'state_corrupt' : 'store_unavailable', `${location.startsWith('etcd ') ? 'state in' : 'state file'} ${location} is ${kind === 'corrupt' ? 'corrupt' : 'unreadable'}: ${detail}`, options);
    this.name = 'StateLoadError';
    this.kind = kind;
    this.location = location;
  }
}
