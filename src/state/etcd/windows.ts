// The fleet's analysis board in etcd: while a service is in a rollout, each
// replica that does not lead keeps one small value there, its per-version
// traffic over the analysis interval, overwritten in place; the leader reads
// them all at each check (rollout/fleet-windows.ts owns the value's shape;
// this file only moves text).
//
//   PREFIX windows/SERVICE/REPLICA   on the replica's lease: gone within its TTL (3 s) when it dies,
//                                    deleted when the rollout ends
//
// So etcd holds at most one key per live replica per service in a rollout;
// nothing accumulates but the MVCC revisions of the overwrites, which
// etcd's compaction removes like any other key's (see the README).

import type { FleetWindowStore } from '../store.ts';
import type { EtcdKeys } from './keys.ts';
import type { EtcdSession } from './session.ts';

/** Reads and writes PREFIX windows/ through the current session. */
export class EtcdWindowBoard implements FleetWindowStore {
  readonly replicaId: string;
  readonly #keys: EtcdKeys;
  readonly #session: () => EtcdSession | null;

  /** Every call has the session client's deadline (the store's call timeout). */
  constructor(keys: EtcdKeys, replicaId: string, session: () => EtcdSession | null) {
    this.#keys = keys;
    this.replicaId = replicaId;
    this.#session = session;
  }

  /** Where every replica's value for `service` lives (the trailing slash keeps `shop` from reading `shop2`). */
  #folder(service: string): string {
    return `${this.#keys.prefix}windows/${service}/`;
  }

  async publish(service: string, value: string): Promise<void> {
    const session = this.#live();
    await session.client.put(this.#folder(service) + this.replicaId).value(value).lease(session.leaseId);
  }

  async read(service: string): Promise<{ replica: string; value: string }[]> {
    const folder = this.#folder(service);
    const found = await this.#live().client.getAll().prefix(folder).strings();
    return Object.entries(found).map(([key, value]) => ({ replica: key.slice(folder.length), value }));
  }

  async remove(service: string): Promise<void> {
    const session = this.#session();
    if (session === null) return; // the lease goes with the session: so does the key
    await session.client.delete().key(this.#folder(service) + this.replicaId);
  }

  /** The session to use, or an error when etcd is unreachable now (the caller skips this round). */
  #live(): EtcdSession {
    const session = this.#session();
    if (session === null) throw new Error('etcd is unreachable');
    return session;
  }
}
