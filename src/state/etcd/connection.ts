// The etcd store's connection phases: whether a session to etcd is up, and
// what happens when it is not.
//
//   starting ──read prefix, lease, marker, watch──> up ──heartbeat or watch fails──> down
//      │                                            ▲                                │
//      └── etcd unreachable: serve the config's ────┴──── every 500 ms: reconnect, ◄─┘
//          weights, say so in logs and /readyz           read everything again, resync
//
// This file owns the phase, the one timer (heartbeat while up, reconnect
// attempt while down) and the session's lease; what a read, a watch event or
// a heartbeat means for the state is the store's, told through
// ConnectionEvents (etcd-store.ts).

import type { IKeyValue, IWatchResponse } from 'etcd3';
import type { Logger } from '../../log/index.ts';
import { describeEtcdError } from './credentials.ts';
import type { EtcdKeys, ReplicaMarker } from './keys.ts';
import { closeSession, openSession, revokeAndClose, type EtcdSession, type OpenSessionOptions } from './session.ts';
import { StateLoadError } from '../store.ts';

/** Where a connection stands: `closed` is final. */
export type ConnectionPhase = 'starting' | 'up' | 'down' | 'closed';

/** What the connection tells the store. */
export interface ConnectionEvents {
  /** The marker to write when a session opens (the revision this replica serves). */
  marker(): ReplicaMarker;
  /** The full read of a new session; `strict` (at start) may throw StateLoadError to abandon it. */
  read(kvs: readonly IKeyValue[], revision: number, strict: boolean): void;
  /** A batch of watch events on `session` (which may no longer be the current one). */
  events(session: EtcdSession, res: IWatchResponse): void;
  /** A session is up; `downMs` is how long etcd was unreachable when `wasDown`. */
  up(session: EtcdSession, wasDown: boolean, downMs: number | null): void;
  /** A heartbeat kept the lease. */
  beat(session: EtcdSession): void;
  /** etcd became unreachable (the session, if any, is gone). */
  down(): void;
  /** The store is closing: nothing will come up again. */
  closing(): void;
}

/** How to reach etcd and what to call it in logs. */
export interface EtcdConnectionOptions extends Pick<OpenSessionOptions, 'endpoints' | 'security'> {
  readonly keys: EtcdKeys;
  readonly replicaId: string;
  /** The store's description, for logs. */
  readonly description: string;
  readonly log: Logger;
  readonly ttlSeconds: number;
  readonly callTimeoutMs: number;
  readonly events: ConnectionEvents;
}

const RECONNECT_MS = 500;

/** One replica's connection to etcd: connect, heartbeat, lose, reconnect, close. */
export class EtcdConnection {
  readonly #o: EtcdConnectionOptions;
  readonly #log: Logger;
  readonly #events: ConnectionEvents;
  #phase: ConnectionPhase = 'starting';
  #session: EtcdSession | null = null;
  #connecting: Promise<void> | null = null;
  #everConnected = false;
  #downSince: number | null = null;
  #lastError: string | null = null;
  #previousLease: string | null = null;
  #timer: NodeJS.Timeout | null = null;

  constructor(options: EtcdConnectionOptions) {
    this.#o = options;
    this.#log = options.log;
    this.#events = options.events;
  }

  get phase(): ConnectionPhase {
    return this.#phase;
  }

  /** The open session while up, else null. */
  get session(): EtcdSession | null {
    return this.#phase === 'up' ? this.#session : null;
  }

  /** Whether `session` is still this connection's (a late callback of an older one is not). */
  isCurrent(session: EtcdSession): boolean {
    return this.#session === session;
  }

  /** Whether a session was ever up (then the store serves what etcd said last). */
  get everConnected(): boolean {
    return this.#everConnected;
  }

  /** Why the last attempt failed, if it did. */
  get lastError(): string | null {
    return this.#lastError;
  }

  /** The first connection (a corrupt value throws StateLoadError); true when up, false when etcd cannot be reached now. */
  async start(): Promise<boolean> {
    try {
      await this.#connect(true);
    } catch (err) {
      if (err instanceof StateLoadError) throw err;
      this.#goDown(err);
      this.#log.warn(
        { store: this.#o.description, err: this.#lastError },
        "etcd is unreachable at start: serving the config's initial weights until it is back; admin writes get 503 store_unavailable",
      );
    }
    this.#arm();
    return this.#phase === 'up';
  }

  /** Checks the connection now rather than at the next heartbeat (a call just failed). */
  checkNow(): void {
    this.#arm(0);
  }

  /** How /readyz and /healthz say that etcd is down. */
  downMessage(): string {
    const since = this.#downSince === null ? '' : ` since ${new Date(this.#downSince).toISOString()}`;
    return `etcd unreachable${since}${this.#lastError ? `: ${this.#lastError}` : ''}`;
  }

  /** Stops the heartbeat and gives up the lease: the leader key and this replica's marker go at once. */
  async close(): Promise<void> {
    if (this.#phase === 'closed') return;
    this.#phase = 'closed';
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#events.closing();
    await this.#connecting?.catch(() => {});
    const session = this.#session;
    this.#session = null;
    if (session !== null) await revokeAndClose(session, this.#o.callTimeoutMs);
  }

  /** One attempt: read everything, take a lease, write the marker, watch from the read's revision. */
  #connect(strict: boolean): Promise<void> {
    this.#connecting ??= this.#open(strict).finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }

  async #open(strict: boolean): Promise<void> {
    const session = await openSession({
      endpoints: this.#o.endpoints,
      security: this.#o.security,
      keys: this.#o.keys,
      replicaId: this.#o.replicaId,
      ttlSeconds: this.#o.ttlSeconds,
      callTimeoutMs: this.#o.callTimeoutMs,
      watchRetryMs: RECONNECT_MS,
      previousLease: this.#previousLease,
      marker: () => this.#events.marker(),
      onRead: (kvs, revision) => this.#events.read(kvs, revision, strict),
      onEvents: (s, res) => this.#events.events(s, res),
      onLost: (s, err) => this.#lose(s, err),
      closed: () => this.#phase === 'closed',
    });
    this.#previousLease = null;
    const wasDown = this.#phase === 'down';
    const downMs = this.#downSince === null ? null : Date.now() - this.#downSince;
    this.#session = session;
    this.#phase = 'up';
    this.#everConnected = true;
    this.#downSince = null;
    this.#lastError = null;
    this.#events.up(session, wasDown, downMs);
  }

  /** Heartbeat while up (keeps the lease); reconnect attempt while down. */
  async #beat(): Promise<void> {
    this.#timer = null;
    const session = this.#session;
    if (this.#phase === 'up' && session !== null) {
      try {
        await session.lease.keepaliveOnce({ deadline: Date.now() + this.#o.callTimeoutMs });
        this.#events.beat(session);
      } catch (err) {
        this.#lose(session, err);
      }
    } else if (this.#phase === 'down') {
      try {
        await this.#connect(false);
      } catch (err) {
        this.#lastError = describeEtcdError(err);
      }
    }
    this.#arm();
  }

  #arm(delayMs?: number): void {
    if (this.#phase === 'closed') return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    const delay = delayMs ?? (this.#phase === 'up' ? Math.min(1000, (this.#o.ttlSeconds * 1000) / 3) : RECONNECT_MS);
    this.#timer = setTimeout(() => void this.#beat(), delay);
    this.#timer.unref();
  }

  /** The session failed: stop leading, keep serving the last state, reconnect soon. */
  #lose(session: EtcdSession, err: unknown): void {
    if (this.#session !== session || this.#phase !== 'up') return;
    this.#session = null;
    this.#previousLease = session.leaseId;
    this.#goDown(err);
    this.#log.warn({ store: this.#o.description, err: this.#lastError }, 'etcd is unreachable: serving the last known weights; admin writes get 503 store_unavailable until it is back');
    void closeSession(session);
    this.#arm(RECONNECT_MS);
  }

  #goDown(err: unknown): void {
    this.#phase = 'down';
    this.#downSince ??= Date.now();
    this.#lastError = describeEtcdError(err);
    this.#events.down();
  }
}
