// Owns: compile(config, runtime weights) -> immutable route table (matchers, bucket ranges, upstream targets).
// Must not touch: I/O, clocks, the environment, sockets; it is pure.

export { compileTable } from './compile.ts';
export type { CompileOptions, CompileResult } from './compile.ts';
export type {
  RouteTable,
  CompiledService,
  CompiledVersion,
  CompiledRule,
  CompiledSplit,
  CompiledTimeouts,
  HostGroup,
  RuntimeWeights,
  UpstreamTarget,
  CompileIssue,
} from './types.ts';
export { BUCKETS, bucketOf, hashSeed } from './hash.ts';
export { allocateBuckets, bucketEnds, rangeIndexOf } from './split.ts';
export { normalizeHostPattern, normalizeRequestHost } from './hosts.ts';
export { createMatcher, createValueReader, MAX_REGEX_INPUT } from './matchers.ts';
export type { RequestView, Matcher, ValueReader } from './matchers.ts';
