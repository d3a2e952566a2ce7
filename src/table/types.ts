// The compiled route table: what the router reads on every request. Built
// once per config or weight change, frozen, and replaced whole.
//
//   RouteTable
//   ├── exactHosts:  Map host -> HostGroup ──┐
//   ├── wildcards:   [{ suffix, group }] ────┤   HostGroup = services sorted by
//   ├── anyHost:     HostGroup ──────────────┘   pathPrefix length, longest first
//   └── services:    CompiledService[]
//         ├── rules:  [{ conditions: Matcher[], to: CompiledVersion }]
//         ├── split:  { ends: Uint16Array, versions, sticky: ValueReader | null, seedState }
//         └── versions: [{ name, upstreams: UpstreamTarget[] }]

import type { Config, RolloutConfig } from '../config/index.ts';
import type { Matcher, ValueReader } from './matchers.ts';

/** Where a version's requests go. The forwarder binds its pool into this. */
export interface UpstreamTarget {
  readonly origin: string;
}

/** One version of a service. */
export interface CompiledVersion {
  readonly name: string;
  readonly index: number;
  readonly service: CompiledService;
  readonly upstreams: readonly UpstreamTarget[];
  /**
   * Round-robin position over `upstreams`. The one mutable field of a table:
   * a counter, not routing state, so sharing it between tables is harmless.
   */
  readonly cursor: Uint32Array;
}

/** A route rule: every condition must match; first matching rule wins. */
export interface CompiledRule {
  readonly index: number;
  readonly conditions: readonly Matcher[];
  readonly to: CompiledVersion;
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
  readonly split: CompiledSplit;
  readonly timeouts: CompiledTimeouts;
  readonly exposeVersionHeader: boolean;
  readonly rollout: RolloutConfig | null;
}

/**
 * Services that share a host pattern, longest pathPrefix first. A large
 * group (many prefixes under one host) also carries a prefix index, so the
 * router tries one map lookup per distinct prefix length instead of
 * scanning every prefix.
 */
export type HostGroup = readonly CompiledService[] & { readonly prefixIndex?: PrefixIndex };

/** Longest-prefix lookup by hashing: the distinct prefix lengths, longest first, and prefix -> service. */
export interface PrefixIndex {
  readonly lengths: readonly number[];
  readonly byPrefix: ReadonlyMap<string, CompiledService>;
}

/** The immutable route table. */
export interface RouteTable {
  readonly generation: number;
  readonly config: Config;
  readonly services: readonly CompiledService[];
  readonly servicesByName: ReadonlyMap<string, CompiledService>;
  readonly exactHosts: ReadonlyMap<string, HostGroup>;
  readonly wildcards: readonly { readonly suffix: string; readonly group: HostGroup }[];
  readonly anyHost: HostGroup;
}

/** Runtime weights that override the config's, by service then version. */
export type RuntimeWeights = Readonly<Record<string, Readonly<Record<string, number>>>>;

/** A semantic problem found while compiling; `path` points into the config. */
export interface CompileIssue {
  readonly code: string;
  readonly path: readonly (string | number)[];
  readonly message: string;
  /** True when the problem is the map key at `path` (e.g. an unknown version in weights), not its value. */
  readonly atKey?: boolean;
}
