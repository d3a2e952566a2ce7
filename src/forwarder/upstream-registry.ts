// The forwarder's connections, keyed by what route tables name. A table
// holds only UpstreamSpecs (plain data); the registry turns a spec into its
// EndpointSet on first use and keeps it, with its undici pools, for every
// later table that names the same spec, so keep-alive connections outlive
// reloads and weight changes. Nothing is opened until a request needs it.
//
//   UpstreamSpec.key ──> EndpointSet ──> Endpoint ──> Pool (per origin + connect timeout + TLS
//                                                           + protocol, shared by every set that
//                                                           names it; an Http2Upstream for h2/h2c)
//   CompiledVersion.id ──> VersionGuard (requests in flight, retry budget), for services
//                          with `resilience` only

import { Pool } from './undici-core.ts';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { protocolKeyOf, tlsKeyOf, type CompiledVersion, type RouteTable, type UpstreamSpec } from '../table/index.ts';
import { Http2Upstream } from './http2-upstream.ts';
import { RoundRobinEndpoints, type Endpoint, type EndpointListener, type EndpointSet } from './endpoints.ts';
import { DnsRefresher } from './dns-endpoints.ts';
import { HealthChecker } from './health-checks.ts';
import { VersionGuard } from './version-guard.ts';
import type { MirrorCounter, MirrorResult } from './route-filters.ts';

/** Pool settings shared by all upstreams. */
export interface PoolSettings {
  /** Idle keep-alive connections are closed after this (ms); below typical upstream server timeouts (5 s). */
  readonly keepAliveTimeoutMs: number;
  /** Upper bound of connections per origin (requests beyond it wait in the pool); null is unbounded. */
  readonly connectionsPerOrigin: number | null;
  /** A request body that sends nothing for this long is answered 408 and its upstream request aborted (nginx's client_body_timeout). */
  readonly clientBodyTimeoutMs: number;
  /** The folder relative paths in the config are read from (upstream TLS files): the config file's. */
  readonly configDir: string;
  /** Told when outlier detection ejects an endpoint or lets it back. */
  readonly onEndpointChange: EndpointListener | null;
  /** How long a pool that no table names any more stays open for requests still on it. */
  readonly retireGraceMs: number;
}

// 1024 connections per origin: Envoy's default circuit breaker, so a slow upstream cannot make veer open sockets without bound.
const DEFAULT_SETTINGS: PoolSettings = { keepAliveTimeoutMs: 4000, connectionsPerOrigin: 1024, retireGraceMs: 30_000, clientBodyTimeoutMs: 60_000, onEndpointChange: null, configDir: '.' };

/** Owns every upstream pool of this process. */
export class UpstreamRegistry {
  readonly #sets = new Map<string, EndpointSet>();
  readonly #pools = new Map<string, Pool | Http2Upstream>();
  readonly #guards = new Map<string, VersionGuard>();
  /** Sets whose origins have host names: re-resolved on an interval. */
  readonly #refreshers = new Map<string, DnsRefresher>();
  /** Sets with active health checks. */
  readonly #checkers = new Map<string, HealthChecker>();
  readonly #settings: PoolSettings;
  /** Mirrored copies by service, version and result (veer_mirror_requests_total). */
  readonly #mirrors = new Map<string, { service: string; version: string; result: MirrorResult; count: number }>();

  /** Counts one mirrored copy; bounded by the config (services x versions x 4 results). */
  readonly countMirror: MirrorCounter = (version, result) => {
    const key = `${version.id}\0${result}`;
    const entry = this.#mirrors.get(key);
    if (entry !== undefined) entry.count++;
    else this.#mirrors.set(key, { service: version.service.name, version: version.name, result, count: 1 });
  };

  /** Every mirrored-copy count so far. */
  mirrorCounts(): Iterable<{ readonly service: string; readonly version: string; readonly result: MirrorResult; readonly count: number }> {
    return this.#mirrors.values();
  }

  constructor(settings: Partial<PoolSettings> = {}) {
    this.#settings = { ...DEFAULT_SETTINGS, ...settings };
  }

  /** HOT PATH. The endpoint set of `spec`, created on its first request. */
  endpointsOf(spec: UpstreamSpec): EndpointSet {
    return this.#sets.get(spec.key) ?? this.#open(spec);
  }

  /** The in-flight count and retry budget of a version with `resilience`, made on its first request. */
  guardOf(version: CompiledVersion): VersionGuard {
    let guard = this.#guards.get(version.id);
    if (guard === undefined) this.#guards.set(version.id, (guard = new VersionGuard()));
    return guard;
  }

  /** The endpoints of every open set whose spec `table` names, with the versions that name it. */
  *endpointStates(table: RouteTable): Generator<{ version: CompiledVersion; endpoint: Endpoint }> {
    for (const service of table.services) {
      for (const version of service.versions) {
        const set = this.#sets.get(version.upstream.key);
        if (set !== undefined) for (const endpoint of set.endpoints) yield { version, endpoint };
      }
    }
  }

  get clientBodyTimeoutMs(): number {
    return this.#settings.clientBodyTimeoutMs;
  }

  /** Pools open now. */
  get size(): number {
    return this.#pools.size;
  }

  /** Forgets the sets `table` does not name and closes, after a grace period, the pools none of the rest use. */
  retainOnly(table: RouteTable): void {
    const inUse = new Set<string>();
    for (const service of table.services) for (const version of service.versions) inUse.add(version.upstream.key);
    const versions = new Set<string>();
    for (const service of table.services) for (const version of service.versions) versions.add(version.id);
    for (const [key, set] of this.#sets) {
      if (inUse.has(key)) continue;
      set.close();
      this.#refreshers.get(key)?.stop();
      this.#refreshers.delete(key);
      this.#checkers.get(key)?.stop();
      this.#checkers.delete(key);
      this.#sets.delete(key);
    }
    for (const id of this.#guards.keys()) if (!versions.has(id)) this.#guards.delete(id);
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
    for (const set of this.#sets.values()) set.close();
    for (const refresher of this.#refreshers.values()) refresher.stop();
    this.#refreshers.clear();
    for (const checker of this.#checkers.values()) checker.stop();
    this.#checkers.clear();
    this.#sets.clear();
    await Promise.all(pools.map((pool) => (force ? pool.destroy() : pool.close()).catch(() => {})));
  }

  #open(spec: UpstreamSpec): EndpointSet {
    const endpointOf = (origin: string, name: string | null) => {
      const key = `${origin}#${spec.connectTimeoutMs}${tlsKeyOf(spec.tls)}${protocolKeyOf(spec.protocol)}${name === null ? '' : `#name:${name}`}`;
      return { origin, poolKey: key, dispatcher: this.#pool(key, origin, spec, name) };
    };
    const endpoints = spec.origins.map((origin) => endpointOf(origin, null));
    const set = new RoundRobinEndpoints(endpoints, spec.outlier, this.#settings.onEndpointChange);
    this.#sets.set(spec.key, set);
    if (spec.dns !== null) {
      const refresher = new DnsRefresher(spec.origins, spec.dns, (origins) => {
        if (this.#sets.get(spec.key) !== set) return;
        set.setEndpoints(origins.map(({ origin, name }) => endpointOf(origin, name)));
      });
      this.#refreshers.set(spec.key, refresher);
    }
    if (spec.health !== null) this.#checkers.set(spec.key, new HealthChecker(set, spec.health));
    return set;
  }

  /**
   * The pool of one origin. For https://, TLS as the spec says: its CA (else
   * the system's), client certificate, and the name to verify (`servername`,
   * else the host name the address was resolved from, else the origin's).
   * The files are read here, once per pool (veer validate checked them).
   * HTTP/1.1 is an undici Pool; h2 and h2c an Http2Upstream (its sessions
   * multiplex, so `connectionsPerOrigin` bounds sessions, not streams).
   */
  #pool(key: string, origin: string, spec: UpstreamSpec, resolvedFrom: string | null): Pool | Http2Upstream {
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      const tls = spec.tls;
      const read = (file: string | null) => (file === null ? undefined : readFileSync(resolve(this.#settings.configDir, file)));
      const servername = tls?.servername ?? resolvedFrom ?? undefined;
      const tlsOptions = origin.startsWith('https:')
        ? {
            ...(tls?.ca != null && { ca: read(tls.ca) }),
            ...(tls?.cert != null && { cert: read(tls.cert) }),
            ...(tls?.key != null && { key: read(tls.key) }),
            ...(servername !== undefined && { servername }),
            ...(tls?.insecureSkipVerify === true && { rejectUnauthorized: false }),
          }
        : {};
      pool =
        spec.protocol === 'http1'
          ? new Pool(origin, {
              connections: this.#settings.connectionsPerOrigin,
              keepAliveTimeout: this.#settings.keepAliveTimeoutMs,
              connect: { timeout: spec.connectTimeoutMs, ...tlsOptions },
              pipelining: 1,
            })
          : new Http2Upstream(origin, {
              connectTimeoutMs: spec.connectTimeoutMs,
              idleTimeoutMs: this.#settings.keepAliveTimeoutMs,
              maxSessions: this.#settings.connectionsPerOrigin ?? Infinity,
              tls: tlsOptions,
            });
      this.#pools.set(key, pool);
    }
    return pool;
  }
}
