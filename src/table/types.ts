// The compiled route table: what the router reads on every request. Built
// once per config or weight change, frozen, and replaced whole.
//
//   RouteTable
//   ├── hosts: HostIndex (shared by every table of one config) ─────────────┐
//   │     ├── exactHosts:  Map host -> HostGroup ──┐                        │
//   │     ├── wildcards:   [{ suffix, group }] ────┤ HostGroup = service    │
//   │     └── anyHost:     HostGroup ──────────────┘ indexes, longest       │
//   │                                                pathPrefix first       │
//   └── services:    CompiledService[]   <── indexes point here ────────────┘
//         ├── rules:  [{ conditions: Matcher[], to: CompiledVersion }]
//         ├── split:  { ends: Uint16Array, versions, sticky: ValueReader | null, seedState }
//         └── versions: [{ name, upstream: UpstreamSpec }]
//
// The host index names services by position, not by object, so a weight
// change replaces one entry of `services` and shares the index and every
// other compiled service with the table before it: it costs one service.
// Tables are plain data: no pools, sockets or timers. The forwarder owns the
// connections and finds them by `UpstreamSpec.key`, so any table (a dry run,
// a worker's copy) is safe to hold and nothing has to be bound to it.

import type { Config, RolloutConfig } from '../config/index.ts';
import type { ConfigIssueCode } from '../errors.ts';
import type { Matcher, ValueReader } from './matchers.ts';
import type { PrefixTable } from './prefix-table.ts';

/**
 * Where a version's requests go: its origins and how to connect. The
 * forwarder keeps one endpoint set (pools, round robin) per `key`; two
 * versions or two tables with the same spec share it.
 */
export interface UpstreamSpec {
  /** Stable identity of the spec: equal keys mean equal specs. */
  readonly key: string;
  /** `scheme://host:port`, one per configured URL, in config order. */
  readonly origins: readonly string[];
  readonly connectTimeoutMs: number;
  /** Passive outlier ejection of the endpoints; null when the service configures none. */
  readonly outlier: OutlierPolicy | null;
  /** How host names among the origins are resolved to endpoints; null when every origin is an IP address. */
  readonly dns: DnsPolicy | null;
  /** Active health checks of every endpoint; null when the version configures none. */
  readonly health: HealthPolicy | null;
  /** TLS to https:// origins; null: Node's defaults (system CAs, the origin's host name verified). */
  readonly tls: UpstreamTls | null;
  /** What is spoken to the origins: HTTP/1.1, HTTP/2 over TLS (every origin https://) or cleartext HTTP/2 (every origin http://). */
  readonly protocol: UpstreamProtocol;
}

/** `upstream.protocol`: `h2` needs https:// origins, `h2c` (prior knowledge) http:// ones. */
export type UpstreamProtocol = 'http1' | 'h2' | 'h2c';

/** How to connect to https:// origins. File paths as the config writes them (relative to its folder). */
export interface UpstreamTls {
  readonly ca: string | null;
  readonly cert: string | null;
  readonly key: string | null;
  readonly servername: string | null;
  readonly insecureSkipVerify: boolean;
}

/** Active health checks: GET `path` on every endpoint each `intervalMs`; 2xx and 3xx pass. */
export interface HealthPolicy {
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Failed checks in a row that take an endpoint out of rotation. */
  readonly unhealthyAfter: number;
  /** Passed checks in a row that bring it back. */
  readonly healthyAfter: number;
}

/** Resolving upstream host names: every address is an endpoint, refreshed on an interval. */
export interface DnsPolicy {
  /** DNS servers (`host:port`) to ask; empty: the system's resolver (getaddrinfo, /etc/hosts included). */
  readonly servers: readonly string[];
  readonly refreshMs: number;
}

/** When an endpoint is taken out of rotation for failing, and for how long. */
export interface OutlierPolicy {
  /** Failures in a row (connect, reset, timeout, 5xx) that eject an endpoint. */
  readonly consecutiveErrors: number;
  /** The first ejection's length; the n-th in a row lasts n times as long (capped at 300 s). */
  readonly baseEjectionMs: number;
  /** No ejection when this share of the set's endpoints is out already. */
  readonly maxEjectedPercent: number;
}

/** A service's retries: which failures, how many, within which budget. */
export interface RetryPolicy {
  /** Retries after the first try. */
  readonly attempts: number;
  readonly onConnect: boolean;
  readonly onReset: boolean;
  readonly onTimeout: boolean;
  /** Upstream statuses (5xx) answered with a retry rather than relayed. */
  readonly statuses: ReadonlySet<number>;
  /** Retries may not exceed this share of the version's requests in the last 10 s. */
  readonly budget: number;
  /** Each try's response-head timeout; null: the service's response timeout. */
  readonly perTryTimeoutMs: number | null;
}

/** A service's safety nets (`resilience`). */
export interface CompiledResilience {
  readonly retries: RetryPolicy | null;
  /** Where each version's requests go when it has no live endpoint, by version index (null: nowhere). */
  readonly failover: readonly (CompiledVersion | null)[];
  /** Requests in flight per version beyond which veer answers 503 overloaded; 0: no limit. */
  readonly maxInFlight: number;
}

/** One version of a service. */
export interface CompiledVersion {
  readonly name: string;
  /** `service/version`: the same string for the same version across tables. */
  readonly id: string;
  readonly index: number;
  readonly service: CompiledService;
  readonly upstream: UpstreamSpec;
  /** The version's `labels` (commit, image...); empty when it has none. */
  readonly labels: Readonly<Record<string, string>>;
  /**
   * What the `rules:` entry that chose this version does to the exchange; null for the
   * service's own versions. A rule with filters or timeouts has its own copies of the
   * versions (same name, id, index and upstream), so the router still returns one object.
   */
  readonly filters: CompiledFilters | null;
}

/** Header edits of a header modifier filter: drop first, then append. */
export interface HeaderEdits {
  /** Lowercased names removed: `remove`, and `set`'s (set = replace). */
  readonly drop: ReadonlySet<string>;
  /** `[name, value, ...]` appended after the drop: `set`'s, then `add`'s. */
  readonly append: readonly string[];
}

/** A path change (urlRewrite, requestRedirect): the whole path, or the part a PathPrefix match matched. */
export type PathModifier =
  | { readonly kind: 'full'; readonly value: string }
  | { readonly kind: 'prefix'; readonly matched: string; readonly value: string };

/** `requestRedirect`: answered by veer, no upstream. Null fields keep the request's own. */
export interface CompiledRedirect {
  readonly scheme: 'http' | 'https' | null;
  readonly hostname: string | null;
  readonly port: number | null;
  readonly path: PathModifier | null;
  readonly statusCode: number;
}

/** A rule's filters and timeouts, compiled. */
export interface CompiledFilters {
  /** `name` of the rule and its position, for logs and explain. */
  readonly rule: string;
  readonly requestHeaders: HeaderEdits | null;
  readonly responseHeaders: HeaderEdits | null;
  readonly rewriteHost: string | null;
  readonly rewritePath: PathModifier | null;
  readonly redirect: CompiledRedirect | null;
  /** A copy of the request to another version, for `percent` of the requests (0-100). */
  readonly mirror: { readonly version: CompiledVersion; readonly percent: number } | null;
  /** The whole exchange, retries included: 504 when the response has not started by then. */
  readonly requestTimeoutMs: number | null;
  /** Each try's wait for the upstream's response head; over the service's response timeout. */
  readonly backendTimeoutMs: number | null;
}

/** A request path condition of a `rules:` match. */
export interface PathCondition {
  readonly kind: 'Exact' | 'PathPrefix' | 'RegularExpression';
  /** As compared: a PathPrefix without trailing slashes. */
  readonly value: string;
  readonly description: string;
  /** Literal text every path this condition matches ends with (a RegularExpression's), '' when none is known. */
  readonly suffix: string;
  /** HOT PATH. Whether the request target (path and query) matches; `end` is where its path ends (pathEndOf). */
  matchPath(url: string, end: number): boolean;
}

/** What a `rules:` match leads to: the rule's `to`, its own split, or the service's split. */
export interface CompiledAction {
  /** Position of the rule in `rules:` and of the match in its `matches`. */
  readonly rule: number;
  readonly match: number;
  readonly name: string | null;
  readonly to: CompiledVersion | null;
  readonly split: CompiledSplit | null;
  /** With neither: the service's split picks among these (the service's versions, with this rule's filters). */
  readonly serviceVersions: readonly CompiledVersion[];
  readonly filters: CompiledFilters | null;
}

/**
 * One way into a service, with Gateway API's precedence: one per match of
 * each `rules:` entry, or (action -1) the service's own routing (`routes:`,
 * then its split) under its pathPrefix.
 */
export interface RouteEntry {
  /** Index into the service's `actions`, or -1. */
  readonly action: number;
  readonly path: PathCondition;
  readonly method: string | null;
  /** Header, cookie and query conditions, all of which must hold. */
  readonly conditions: readonly Matcher[];
  readonly headerCount: number;
  readonly queryCount: number;
}

/** A route entry placed in a host group: `service` is its position in `RouteTable.services`. */
export interface HostEntry extends RouteEntry {
  readonly service: number;
}

/** A route rule: every condition must match; first matching rule wins. */
export interface CompiledRule {
  /** Position in `routes:`; -1 for a blue-green rollout's preview rule (first while it is open). */
  readonly index: number;
  readonly conditions: readonly Matcher[];
  readonly to: CompiledVersion;
  /** True for the preview rule of a running blue-green rollout. */
  readonly preview?: true;
}

/** The weighted split of a service, over 10000 buckets. */
export interface CompiledSplit {
  /** Weights as given (config or runtime), by version name. */
  readonly weights: Readonly<Record<string, number>>;
  /** Share of split traffic per version in percent (0-100), config order. */
  readonly percents: readonly number[];
  /** Cumulative bucket range ends, one per version in config order. */
  readonly ends: Uint16Array;
  readonly versions: readonly CompiledVersion[];
  /** Reads the sticky key, or null when the split is not sticky. */
  readonly sticky: ValueReader | null;
  readonly seed: string;
  /** Hash state after absorbing `seed`. */
  readonly seedState: number;
  /** Where the weights came from. */
  readonly source: 'config' | 'runtime';
}

/** Request timeouts in milliseconds. */
export interface CompiledTimeouts {
  readonly connectMs: number;
  readonly responseMs: number;
}

/** One service, compiled. */
export interface CompiledService {
  readonly name: string;
  readonly index: number;
  readonly hosts: readonly string[] | null;
  readonly pathPrefix: string;
  readonly versions: readonly CompiledVersion[];
  readonly versionsByName: ReadonlyMap<string, CompiledVersion>;
  readonly rules: readonly CompiledRule[];
  /** What each match of `rules:` leads to; entries point here by index. */
  readonly actions: readonly CompiledAction[];
  /** The service's ways in, highest precedence first; without `rules:` one catch-all entry. */
  readonly entries: readonly RouteEntry[];
  readonly split: CompiledSplit;
  readonly timeouts: CompiledTimeouts;
  /** null when the service configures no `resilience`: its requests take the plain path. */
  readonly resilience: CompiledResilience | null;
  readonly exposeVersionHeader: boolean;
  readonly rollout: RolloutConfig | null;
}

/**
 * Services that share a host pattern, as indexes into `RouteTable.services`,
 * longest pathPrefix first. A large group (many prefixes under one host)
 * also carries a prefix index, so the router tries one map lookup per
 * distinct prefix length instead of scanning every prefix. A group where a
 * service has `rules:` carries every service's entries instead (`routes`),
 * in precedence order, and the router walks those.
 */
export type HostGroup = readonly number[] & { readonly prefixIndex?: PrefixIndex; readonly routes?: GroupRoutes };

/** The route entries of a host group with `rules:`, and how the router walks them. */
export interface GroupRoutes {
  /** Every entry of the group's services, in precedence order. */
  readonly entries: readonly HostEntry[];
  /** Whether some entry reads where the path ends (a RegularExpression path, an indexed Exact one): the router finds it once per request. */
  readonly pathEnd: boolean;
  /** A small group: all its entries as one run. Else null, and `index` is set. */
  readonly run: EntryRun | null;
  /** A large group: its entries by path. */
  readonly index: EntryIndex | null;
}

/**
 * Entries to try in precedence order, each with the conditions left to
 * check. When enough of them test the same key (header, cookie or query
 * parameter) for an Exact value, `keyed` lets the router read that key once
 * and try only the entries that want the value it read, merged with those
 * that do not test the key, still in precedence order:
 *
 *   entries:  e0  e1  e2  e3  e4  e5       e1 e2 e4: x-region = a | b | a
 *   byValue:  a -> [1, 4]  b -> [2]        (positions in `entries`, ascending)
 *   rest:     [0, 3, 5]
 *   request x-region: a  ->  merge [1, 4] with [0, 3, 5]  ->  e0 e1 e3 e4 e5
 *
 * An entry left out wants another value, so it would fail anyway: the first
 * entry that holds is the same as in a plain walk. An entry the index picked
 * has its keyed condition dropped from `conditions`: it holds by then.
 * Regex paths are indexed the same way by one character of the literal
 * suffix each must end with (`bySuffix`: the character `offset` before the
 * end of the path, the offset that tells most of them apart).
 */
export interface EntryRun {
  readonly entries: readonly HostEntry[];
  /** The first entry when the index that led here proved its path and it has no method or condition: the run's answer, checked for nothing. Else null. */
  readonly first: HostEntry | null;
  /** By position: the conditions of each entry still to check. */
  readonly conditions: readonly (readonly Matcher[])[];
  /** Whether the index that led here already proved every entry's path holds (Exact and PathPrefix lookups). */
  readonly pathHolds: boolean;
  readonly keyed: KeyedEntries | null;
  readonly bySuffix: SuffixEntries | null;
}

/** The index of an EntryRun on one key; see EntryRun. */
export interface KeyedEntries {
  readonly reader: ValueReader;
  readonly byValue: ReadonlyMap<string, readonly number[]>;
  readonly rest: readonly number[];
}

/** The index of an EntryRun of regex paths on one character of their literal suffixes; see EntryRun. */
export interface SuffixEntries {
  readonly offset: number;
  /** ASCII code -> positions of the entries whose suffix has it at `offset` from its end. */
  readonly byChar: readonly (readonly number[])[];
  readonly rest: readonly number[];
}

/**
 * A large group's route entries by path, so a request tries only the
 * entries its path can match, still in precedence order:
 *
 *   exact:    path -> Exact entries of that path          (tried first)
 *   regex:    every RegularExpression entry, in order      (then these)
 *   prefixes: prefix -> PathPrefix entries of that prefix, looked up for
 *             each distinct prefix length, longest first  (then these)
 *
 * Precedence puts every Exact before every regex before every PathPrefix,
 * and longer prefixes first, so this walk meets the entries in the very
 * order the plain list has them.
 */
export interface EntryIndex {
  readonly exact: ReadonlyMap<string, EntryRun>;
  readonly regex: EntryRun;
  /** The PathPrefix runs by prefix, one table per prefix length, longest first. */
  readonly prefixTables: readonly PrefixTable<EntryRun>[];
  readonly prefixes: ReadonlyMap<string, EntryRun>;
}

/** Longest-prefix lookup: one table of the services' pathPrefixes (-> service index) per prefix length, longest first. */
export interface PrefixIndex {
  readonly tables: readonly PrefixTable<number>[];
}

/** Which services serve which hosts and paths; depends only on the config, so weight changes share it. */
export interface HostIndex {
  readonly exactHosts: ReadonlyMap<string, HostGroup>;
  readonly wildcards: readonly { readonly suffix: string; readonly group: HostGroup }[];
  readonly anyHost: HostGroup;
  /** Service name -> index into `RouteTable.services`. */
  readonly byName: ReadonlyMap<string, number>;
}

/** Read access to a table's services by name (a view over `RouteTable.services`). */
export interface ServiceLookup {
  get(name: string): CompiledService | undefined;
  has(name: string): boolean;
  keys(): IterableIterator<string>;
  readonly size: number;
}

/** The immutable route table. */
export interface RouteTable {
  readonly generation: number;
  readonly config: Config;
  readonly services: readonly CompiledService[];
  readonly servicesByName: ServiceLookup;
  readonly hosts: HostIndex;
  /** Weights set at runtime over the config's, by service (those the table was compiled with). */
  readonly runtimeWeights: RuntimeWeights;
}

/** Runtime weights that override the config's, by service then version. */
export type RuntimeWeights = Readonly<Record<string, Readonly<Record<string, number>>>>;

/** A semantic problem found while compiling; `path` points into the config. */
export interface CompileIssue {
  readonly code: ConfigIssueCode;
  readonly path: readonly (string | number)[];
  readonly message: string;
  /** True when the problem is the map key at `path` (e.g. an unknown version in weights), not its value. */
  readonly atKey?: boolean;
}
