// The forwarder's connections, keyed by what route tables name. A table
// holds only UpstreamSpecs (plain data); the registry turns a spec into its
// EndpointSet on first use and keeps it, with its undici pools, for every
// later table that names the same spec, so keep-alive connections outlive
// reloads and weight changes. Nothing is opened until a request needs it.
//
//   UpstreamSpec.key ──> EndpointSet ──> Endpoint ──> Pool (per origin + connect timeout,
//                                                           shared by every set that names it)

import { Pool } from './undici-core.ts';
import type { RouteTable, UpstreamSpec } from '../table/index.ts';
import { RoundRobinEndpoints, type Endpoint, type EndpointSet } from './endpoints.ts';

/** Pool settings shared by all upstreams. */
export interface PoolSettings {
  /** Idle keep-alive connections are closed after this (ms); below typical upstream server timeouts (5 s). */
  readonly keepAliveTimeoutMs: number;
  /** Upper bound of connections per origin; null is unbounded. */
  readonly connectionsPerOrigin: number | null;
  /** How long a pool that no table names any more stays open for requests still on it. */
  readonly retireGraceMs: number;
}

const DEFAULT_SETTINGS: PoolSettings = { keepAliveTimeoutMs: 4000, connectionsPerOrigin: null, retireGraceMs: 30_000 };

/** Owns every upstream pool of this process. */
export class UpstreamRegistry {
  readonly #sets = new Map<string, EndpointSet>();
  readonly #pools = new Map<string, Pool>();
  readonly #settings: PoolSettings;

  constructor(settings: Partial<PoolSettings> = {}) {
    this.#settings = { ...DEFAULT_SETTINGS, ...settings };
  }

  /** HOT PATH. The endpoint set of `spec`, created on its first request. */
  endpointsOf(spec: UpstreamSpec): EndpointSet {
    return this.#sets.get(spec.key) ?? this.#open(spec);
  }

  /** Pools open now. */
  get size(): number {
    return this.#pools.size;
  }

  /** Forgets the sets `table` does not name and closes, after a grace period, the pools none of the rest use. */
  retainOnly(table: RouteTable): void {
    const inUse = new Set<string>();
    for (const service of table.services) for (const version of service.versions) inUse.add(version.upstream.key);
    for (const key of this.#sets.keys()) if (!inUse.has(key)) this.#sets.delete(key);
    const poolsInUse = new Set<string>();
    for (const set of this.#sets.values()) for (const endpoint of set.endpoints) poolsInUse.add(endpoint.poolKey);
    for (const [key, pool] of this.#pools) {
      if (poolsInUse.has(key)) continue;
      this.#pools.delete(key);
      // In-flight requests on an older table finish first; close() waits for them.
      setTimeout(() => void pool.close().catch(() => {}), this.#settings.retireGraceMs).unref();
    }
  }

  /** Closes every pool; `force` aborts requests still running. */
  async close(force = false): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    this.#sets.clear();
    await Promise.all(pools.map((pool) => (force ? pool.destroy() : pool.close()).catch(() => {})));
  }

  #open(spec: UpstreamSpec): EndpointSet {
    const endpoints = spec.origins.map((origin): Endpoint => {
      const key = `${origin}#${spec.connectTimeoutMs}`;
      return Object.freeze({ origin, poolKey: key, dispatcher: this.#pool(key, origin, spec.connectTimeoutMs) });
    });
    const set = new RoundRobinEndpoints(endpoints);
    this.#sets.set(spec.key, set);
    return set;
  }

  #pool(key: string, origin: string, connectTimeoutMs: number): Pool {
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      pool = new Pool(origin, {
        connections: this.#settings.connectionsPerOrigin,
        keepAliveTimeout: this.#settings.keepAliveTimeoutMs,
        connect: { timeout: connectTimeoutMs },
        pipelining: 1,
      });
      this.#pools.set(key, pool);
    }
    return pool;
  }
}
