// undici pools, one per (upstream origin, connect timeout), shared by every
// table that names them so keep-alive connections outlive reloads. Pools no
// table uses any more are closed after a grace period.

import { Pool } from 'undici';
import type { UpstreamTarget } from '../table/index.ts';

/** A table's upstream target with the pool that carries its requests. */
export interface PooledUpstream extends UpstreamTarget {
  readonly key: string;
  readonly pool: Pool;
}

/** Pool settings shared by all upstreams. */
export interface PoolSettings {
  /** Idle keep-alive connections are closed after this (ms); below typical upstream server timeouts (5 s). */
  readonly keepAliveTimeoutMs: number;
  /** Upper bound of connections per origin; null is unbounded. */
  readonly connectionsPerOrigin: number | null;
}

const DEFAULT_SETTINGS: PoolSettings = { keepAliveTimeoutMs: 4000, connectionsPerOrigin: null };

/** Owns every upstream pool. */
export class UpstreamPools {
  readonly #pools = new Map<string, PooledUpstream>();
  readonly #settings: PoolSettings;

  constructor(settings: Partial<PoolSettings> = {}) {
    this.#settings = { ...DEFAULT_SETTINGS, ...settings };
  }

  /** The target for `origin`, creating its pool on first use. */
  bind(origin: string, connectTimeoutMs: number): PooledUpstream {
    const key = `${origin}#${connectTimeoutMs}`;
    let target = this.#pools.get(key);
    if (target === undefined) {
      const pool = new Pool(origin, {
        connections: this.#settings.connectionsPerOrigin,
        keepAliveTimeout: this.#settings.keepAliveTimeoutMs,
        connect: { timeout: connectTimeoutMs },
        pipelining: 1,
      });
      target = Object.freeze({ origin, key, pool });
      this.#pools.set(key, target);
    }
    return target;
  }

  /** Closes, after `graceMs`, the pools that none of `inUse` names. */
  retainOnly(inUse: ReadonlySet<string>, graceMs = 30_000): void {
    for (const [key, target] of this.#pools) {
      if (inUse.has(key)) continue;
      this.#pools.delete(key);
      // In-flight requests on the old table finish first; close() waits for them.
      setTimeout(() => void target.pool.close().catch(() => {}), graceMs).unref();
    }
  }

  /** Number of pools alive. */
  get size(): number {
    return this.#pools.size;
  }

  /** Closes every pool; `force` aborts requests still running. */
  async close(force = false): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((t) => (force ? t.pool.destroy() : t.pool.close()).catch(() => {})));
  }
}
