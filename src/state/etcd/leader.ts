// Which replica drives rollouts and shifts: the one whose ID is in
// PREFIX/leader. The key is created only if absent, on the creator's lease,
// so it disappears when that replica stops (lease revoked) or dies (lease
// expires after its TTL); every replica watches it and campaigns again when
// it is gone. Two replicas that both believe they lead can only race on the
// compare-and-swap of a service key, where one of them loses: never a step
// taken twice.

import type { Etcd3 } from 'etcd3';
import type { EtcdKeys } from './keys.ts';

/**
 * Puts `id` in the leader key on `leaseId` if nobody holds it (or this replica
 * holds it from an older lease); returns who holds it now (null: nobody).
 */
export async function campaignForLeader(client: Etcd3, keys: EtcdKeys, id: string, leaseId: string): Promise<string | null> {
  const res = await client.if(keys.leader, 'Create', '==', 0).then(client.put(keys.leader).value(id).lease(leaseId)).else(client.get(keys.leader)).commit();
  if (res.succeeded) return id;
  const kv = res.responses[0]?.response_range?.kvs[0];
  if (kv === undefined) return null;
  const holder = kv.value.toString();
  if (holder === id && kv.lease !== leaseId) {
    // Ours from a session that ended (etcd restarted, say): move it onto the current lease.
    const moved = await client.if(keys.leader, 'Value', '==', id).then(client.put(keys.leader).value(id).lease(leaseId)).commit();
    return moved.succeeded ? id : null;
  }
  return holder;
}
