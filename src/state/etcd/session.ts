// One connection to etcd, from a full read of the prefix to its teardown:
//
//   new client (no retries inside: the store decides when to try again)
//   read PREFIX/* at revision R          -> the caller rebuilds its view
//   grant a lease (TTL), revoke the previous session's lease
//   put PREFIX/replicas/ID on the lease  -> this replica is alive
//   watch PREFIX/* from R+1              -> no change falls between read and watch
//
// Any failure on the way closes everything it opened and throws.

import { ConstantBackoff, noop } from 'cockatiel';
import { Etcd3, type IKeyValue, type IWatchResponse, type Lease, type Watcher } from 'etcd3';
import type { EtcdSecurity } from '../../config/index.ts';
import { etcdClientSecurity } from './credentials.ts';
import type { EtcdKeys, ReplicaMarker } from './keys.ts';

/** An open connection: client, lease and watch. */
export interface EtcdSession {
  readonly client: Etcd3;
  readonly lease: Lease;
  readonly leaseId: string;
  readonly watcher: Watcher;
}

/** What opening a session needs. */
export interface OpenSessionOptions {
  readonly endpoints: readonly string[];
  /** TLS files and etcd user (read at start). */
  readonly security: EtcdSecurity;
  readonly keys: EtcdKeys;
  readonly replicaId: string;
  readonly ttlSeconds: number;
  readonly callTimeoutMs: number;
  /** How long etcd3's own watch waits before re-establishing a broken stream (the store usually reconnects first). */
  readonly watchRetryMs: number;
  /** The lease of the session that ended, if any: revoked, so its leader key and marker go now rather than at its TTL. */
  readonly previousLease: string | null;
  /** The marker to write (the revision this replica serves). */
  readonly marker: () => ReplicaMarker;
  /** Gets the full read; may throw (corrupt values at start) to abandon the session. */
  readonly onRead: (kvs: readonly IKeyValue[], revision: number) => void;
  readonly onEvents: (session: EtcdSession, res: IWatchResponse) => void;
  readonly onLost: (session: EtcdSession, err: unknown) => void;
  /** Checked last: true abandons the session (the store closed meanwhile). */
  readonly closed: () => boolean;
}

/** Opens a session or throws, leaving nothing open. */
export async function openSession(o: OpenSessionOptions): Promise<EtcdSession> {
  const client = new Etcd3({
    hosts: [...o.endpoints],
    ...etcdClientSecurity(o.security),
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + o.callTimeoutMs }),
    faultHandling: { host: () => noop, global: noop, watchBackoff: new ConstantBackoff(o.watchRetryMs).next() },
  });
  const lease = client.lease(o.ttlSeconds, { autoKeepAlive: false });
  let watcher: Watcher | null = null;
  try {
    const range = await client.getAll().prefix(o.keys.prefix).exec();
    const revision = Number(range.header.revision);
    o.onRead(range.kvs, revision);
    const leaseId = await lease.grant();
    if (o.previousLease !== null) await client.leaseClient.leaseRevoke({ ID: o.previousLease }).catch(() => {});
    await client.put(o.keys.replica(o.replicaId)).value(JSON.stringify(o.marker())).lease(leaseId);
    watcher = client.watch().prefix(o.keys.prefix).startRevision(String(revision + 1)).watcher();
    const session: EtcdSession = { client, lease, leaseId, watcher };
    watcher.on('data', (res: IWatchResponse) => o.onEvents(session, res));
    watcher.on('disconnected', (err: Error) => o.onLost(session, err));
    watcher.on('error', (err: Error) => o.onLost(session, err));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('etcd watch not established in time')), o.callTimeoutMs);
      watcher!.once('connected', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (o.closed()) throw new Error('closed while connecting');
    return session;
  } catch (err) {
    await closeClient(client, lease, watcher);
    throw err;
  }
}

/** Closes a session without revoking its lease (see `revokeAndClose`). */
export function closeSession(session: EtcdSession): Promise<void> {
  return closeClient(session.client, session.lease, session.watcher);
}

/** Revokes the session's lease (its leader key and marker go at once), then closes it. */
export async function revokeAndClose(session: EtcdSession, callTimeoutMs: number): Promise<void> {
  await session.lease.revoke({ deadline: Date.now() + callTimeoutMs }).catch(() => {});
  await closeSession(session);
}

async function closeClient(client: Etcd3, lease: Lease, watcher: Watcher | null): Promise<void> {
  lease.release();
  if (watcher !== null) {
    watcher.removeAllListeners();
    watcher.on('error', () => {});
    // Cancelling waits for etcd's answer, which a dead etcd never sends: bounded.
    await Promise.race([watcher.cancel().catch(() => {}), new Promise((r) => setTimeout(r, 200).unref())]);
  }
  client.close();
}
