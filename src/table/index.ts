// Owns: compile(config, runtime weights) -> immutable route table (matchers from a registry, bucket ranges, upstream specs), whole or one service at a time.
// Must not touch: I/O, clocks, the environment, sockets, pools; it is pure data.

export { compileTable, reweighTable } from './compile.ts';
export { precedenceReason } from './compile-rules.ts';
export { METRIC_PLACEHOLDERS, MAX_HOOK_TIMEOUT_MS, withPreview, previewTargetOf } from './compile-rollout.ts';
export type { CompileOptions, CompileResult, WeightChanges } from './compile.ts';
export type {
  RouteTable,
  CompiledService,
  CompiledVersion,
  CompiledRule,
  CompiledAction,
  CompiledFilters,
  CompiledRedirect,
  HeaderEdits,
  PathModifier,
  PathCondition,
  RouteEntry,
  HostEntry,
  EntryIndex,
  EntryRun,
  KeyedEntries,
  SuffixEntries,
  GroupRoutes,
  CompiledSplit,
  CompiledTimeouts,
  HostGroup,
  HostIndex,
  ServiceLookup,
  RuntimeWeights,
  UpstreamSpec,
  OutlierPolicy,
  DnsPolicy,
  HealthPolicy,
  UpstreamTls,
  UpstreamProtocol,
  RetryPolicy,
  CompiledResilience,
  CompileIssue,
} from './types.ts';
export { BUCKETS, bucketOf, hashSeed } from './hash.ts';
export { allocateBuckets, bucketEnds, rangeIndexOf } from './split.ts';
export { normalizeHostPattern, normalizeRequestHost } from './hosts.ts';
export { endsSegmentAt, hasPathPrefix, normalizePathPrefix, pathEndOf } from './paths.ts';
export { hostOf, protocolKeyOf, tlsKeyOf } from './upstreams.ts';
export { createMatcher, createValueReader, MATCHERS, MAX_REGEX_INPUT } from './matchers.ts';
export type { RequestView, Matcher, MatcherFactory, ValueReader } from './matchers.ts';
