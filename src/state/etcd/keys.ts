// Where the etcd store keeps what, under the configured prefix:
//
//   PREFIX services/NAME          ServiceRecord JSON (weights, rollout, shift)   one key per service:
//                                                                               compare-and-swap per service
//   PREFIX history/TIME-ID-N      HistoryEntry JSON; its seq is the key's        written in the same
//                                 create revision (the change's revision)       transaction as the service
//   PREFIX replicas/ID            {"applied":REV,"at":ISO}, on the replica's lease: who is alive, what it serves
//   PREFIX leader                 replica ID, on the leader's lease              the one that drives rollouts
//   PREFIX windows/SERVICE/ID     a replica's analysis windows, on its lease     read by the leader (windows.ts)
//
// A revision is etcd's store revision: every transaction gets the next one,
// so "applied revision >= the service key's revision" means "serves it".

import { Value } from '@sinclair/typebox/value';
import { PersistedStateSchema, STATE_FORMAT, type HistoryEntry, type ServiceRecord } from '../records.ts';

/** The kinds of key under the prefix. */
export type EtcdKey =
  | { readonly kind: 'service'; readonly name: string }
  | { readonly kind: 'history' }
  | { readonly kind: 'replica'; readonly id: string }
  | { readonly kind: 'leader' }
  | { readonly kind: 'other' };

/** A replica's applied-revision marker. */
export interface ReplicaMarker {
  readonly applied: number;
  readonly at: string;
}

/** Builds and reads the keys of one prefix. */
export class EtcdKeys {
  readonly prefix: string;
  #historyCounter = 0;

  constructor(prefix: string) {
    this.prefix = prefix.endsWith('/') ? prefix : `${prefix}/`;
  }

  service(name: string): string {
    return `${this.prefix}services/${name}`;
  }

  /** A new, unique history key; ordered by time for people, by create revision for veer. */
  newHistory(replica: string, now: number): string {
    return `${this.prefix}history/${String(now).padStart(15, '0')}-${replica}-${++this.#historyCounter}`;
  }

  replica(id: string): string {
    return `${this.prefix}replicas/${id}`;
  }

  get leader(): string {
    return `${this.prefix}leader`;
  }

  /** What a key under the prefix is. */
  parse(key: string): EtcdKey {
    if (!key.startsWith(this.prefix)) return { kind: 'other' };
    const rel = key.slice(this.prefix.length);
    if (rel.startsWith('services/') && rel.length > 9) return { kind: 'service', name: rel.slice(9) };
    if (rel.startsWith('history/')) return { kind: 'history' };
    if (rel.startsWith('replicas/') && rel.length > 9) return { kind: 'replica', id: rel.slice(9) };
    if (rel === 'leader') return { kind: 'leader' };
    return { kind: 'other' };
  }
}

/** A service record stored under services/NAME, or an error saying why it is not one. */
export function decodeServiceRecord(text: string): { ok: true; record: ServiceRecord } | { ok: false; error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `not valid JSON (${(err as Error).message})` };
  }
  const doc = { format: STATE_FORMAT, updatedAt: '', services: { s: value }, history: [] };
  if (!Value.Check(PersistedStateSchema, doc)) return { ok: false, error: firstError(doc, '/services/s') };
  return { ok: true, record: value as ServiceRecord };
}

/** A history line stored under history/..., with `seq` set to its create revision. */
export function decodeHistoryEntry(text: string, seq: number): { ok: true; entry: HistoryEntry } | { ok: false; error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `not valid JSON (${(err as Error).message})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, error: 'not an object' };
  const entry = { ...(value as Record<string, unknown>), seq };
  const doc = { format: STATE_FORMAT, updatedAt: '', services: {}, history: [entry] };
  if (!Value.Check(PersistedStateSchema, doc)) return { ok: false, error: firstError(doc, '/history/0') };
  return { ok: true, entry: entry as HistoryEntry };
}

/** A replica marker, or null when the value is not one (ignored). */
export function decodeReplicaMarker(text: string): ReplicaMarker | null {
  try {
    const value = JSON.parse(text) as { applied?: unknown; at?: unknown };
    if (typeof value.applied === 'number' && Number.isFinite(value.applied) && typeof value.at === 'string') return { applied: value.applied, at: value.at };
  } catch {
    // not JSON
  }
  return null;
}

function firstError(doc: unknown, strip: string): string {
  const first = Value.Errors(PersistedStateSchema, doc).First();
  if (first === undefined) return 'unexpected shape';
  const path = first.path.startsWith(strip) ? first.path.slice(strip.length) : first.path;
  return `not a veer record (${path || '/'}: ${first.message})`;
}
