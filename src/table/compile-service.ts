// One service's config -> CompiledService: hosts, versions and their
// upstreams, route rules (through the matcher registry) and the split.
// Compiled alone, so a change to one service compiles that service only.

import type { Config, ServiceConfig, StickyKeyConfig } from '../config/index.ts';
import { parseDuration } from '../config/index.ts';
import type { ConfigIssueCode } from '../errors.ts';
import { releaseMembership } from './compile-release.ts';
import { checkRolloutSection, compilePreviewRule, isPreviewKey, previewTargetOf } from './compile-rollout.ts';
import { catchAllEntry, compileRuleSet, type SplitCompiler } from './compile-rules.ts';
import { hashSeed } from './hash.ts';
import { normalizeHostPattern } from './hosts.ts';
import { normalizePathPrefix } from './paths.ts';
import { createValueReader, MATCHERS, MatcherSpecError, type Matcher } from './matchers.ts';
import { allocateBuckets, bucketEnds } from './split.ts';
import type { CompiledAction, CompiledResilience, CompiledRule, CompiledService, CompiledSplit, CompiledVersion, CompileIssue, DnsPolicy, OutlierPolicy, RetryPolicy } from './types.ts';
import { compileUpstream } from './upstreams.ts';

/** A config path. */
export type Path = (string | number)[];
/** Collects one issue. */
export type Report = (code: ConfigIssueCode, path: Path, message: string, atKey?: boolean) => void;

/** Normalised host patterns of a service; null when it serves any host. */
export function compileHosts(spec: ServiceConfig, base: Path, report: Report): string[] | null {
  if (!spec.match.hosts) return null;
  const hosts: string[] = [];
  spec.match.hosts.forEach((raw, i) => {
    const host = normalizeHostPattern(raw);
    if (host === null) report('invalid_host', [...base, 'match', 'hosts', i], `"${raw}" is not a host name or a *.domain wildcard`);
    else hosts.push(host);
  });
  return hosts;
}

/**
 * Compiles services[index] of `config`, with `runtimeWeights` over the
 * config's weights. Returns null when it has issues (reported).
 */
export function compileService(
  config: Config,
  index: number,
  hosts: string[] | null,
  runtimeWeights: Readonly<Record<string, number>> | undefined,
  report: Report,
  warnings: CompileIssue[],
): CompiledService | null {
  const spec = config.services[index]!;
  const base: Path = ['services', index];
  const versions: CompiledVersion[] = [];
  const versionsByName = new Map<string, CompiledVersion>();
  // The service object is completed after its versions, which point back to it.
  const service = {} as { -readonly [K in keyof CompiledService]: CompiledService[K] };
  const connectMs = parseDuration(spec.timeouts.connect);
  const outlier = compileOutlier(spec);
  const resolver: DnsPolicy = Object.freeze({ servers: Object.freeze([...(config.resolver.servers ?? [])]), refreshMs: parseDuration(config.resolver.refresh) });

  spec.versions.forEach((v, vi) => {
    if (versionsByName.has(v.name)) {
      report('duplicate_version', [...base, 'versions', vi, 'name'], `version name "${v.name}" is used twice in service ${spec.name}`);
      return;
    }
    const at: Path = typeof v.upstream === 'object' && !Array.isArray(v.upstream) ? [...base, 'versions', vi, 'upstream', 'urls'] : [...base, 'versions', vi, 'upstream'];
    const upstream = compileUpstream(v.upstream, connectMs, outlier, resolver, (ui, message) =>
      report('invalid_upstream', ui === null ? at : [...at, ui], message),
    );
    const labels = v.labels === undefined ? NO_LABELS : Object.freeze({ ...v.labels });
    const version: CompiledVersion = Object.freeze({ name: v.name, id: `${spec.name}/${v.name}`, index: vi, service: service as CompiledService, upstream, labels, filters: null });
    versions.push(version);
    versionsByName.set(v.name, version);
  });

  const rules = withPreviewRule(spec, compileRules(spec, base, versionsByName, report), versionsByName, runtimeWeights);
  const split = compileSplit(config, spec, base, versions, versionsByName, runtimeWeights, report, warnings);
  const splitOf: SplitCompiler = (own, path, over) => compileOwnSplit(spec, own, path, over, versionsByName, report);
  const splitOrder = split !== null && split.versions.some((v, i) => v.index !== i) ? split.versions.map((v) => v.index) : null;
  const ruleSet = spec.rules === undefined ? null : compileRuleSet(spec, base, versions, versionsByName, splitOf, report, splitOrder);

  if (spec.rollout) {
    const canary = spec.rollout.canary;
    if (!versionsByName.has(canary)) {
      report('unknown_version', [...base, 'rollout', 'canary'], `"${canary}" is not a version of service ${spec.name} (versions: ${[...versionsByName.keys()].join(', ')})`);
    } else if (versions.length < 2) {
      report('invalid_rollout', [...base, 'rollout'], 'a rollout needs at least two versions: the canary and a stable one');
    }
    checkRolloutSection(spec.rollout, [...base, 'rollout'], report);
  }

  const resilience = compileResilience(spec, base, versions, versionsByName, split, report);
  if (!split) return null;
  Object.assign(service, {
    name: spec.name,
    index,
    hosts: hosts ? Object.freeze(hosts) : null,
    pathPrefix: normalizePathPrefix(spec.match.pathPrefix),
    versions: Object.freeze(versions),
    versionsByName,
    rules,
    actions: ruleSet?.actions ?? NO_ACTIONS,
    entries: ruleSet?.entries ?? Object.freeze([catchAllEntry(spec.match.pathPrefix)]),
    split,
    timeouts: Object.freeze({ connectMs, responseMs: parseDuration(spec.timeouts.response) }),
    resilience,
    exposeVersionHeader: spec.exposeVersionHeader ?? config.exposeVersionHeader,
    rollout: spec.rollout ?? null,
  });
  return Object.freeze(service);
}

/** `rules` with the blue-green preview rule first, while the runtime weights open it toward a version the service has. */
function withPreviewRule(spec: ServiceConfig, rules: readonly CompiledRule[], versionsByName: ReadonlyMap<string, CompiledVersion>, runtimeWeights: Readonly<Record<string, number>> | undefined): readonly CompiledRule[] {
  const target = previewTargetOf(runtimeWeights);
  const to = target === null ? undefined : versionsByName.get(target);
  const preview = to === undefined ? null : compilePreviewRule(spec.rollout, to);
  return preview === null ? rules : Object.freeze([preview, ...rules]);
}

const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});
const NO_ACTIONS: readonly CompiledAction[] = Object.freeze([]);

/** Longest ejection: the n-th ejection in a row lasts n times the base, up to this (Envoy's default cap). */
const MAX_EJECTION_MS = 300_000;

function compileOutlier(spec: ServiceConfig): OutlierPolicy | null {
  const outlier = spec.resilience?.outlier;
  if (outlier === undefined) return null;
  return Object.freeze({
    consecutiveErrors: outlier.consecutiveErrors,
    baseEjectionMs: Math.min(parseDuration(outlier.baseEjection), MAX_EJECTION_MS),
    maxEjectedPercent: outlier.maxEjectedPercent,
  });
}

/**
 * `resilience` -> retries, per-version failover targets and the in-flight
 * limit. Failover is `none`, a version of the service (which itself has no
 * failover), or by default the other version with the largest weight
 * (config order breaks ties; versions at weight 0 are never chosen).
 */
function compileResilience(
  spec: ServiceConfig,
  base: Path,
  versions: readonly CompiledVersion[],
  versionsByName: ReadonlyMap<string, CompiledVersion>,
  split: CompiledSplit | null,
  report: Report,
): CompiledResilience | null {
  const config = spec.resilience;
  if (config === undefined) return null;
  let retries: RetryPolicy | null = null;
  if (config.retries !== undefined && config.retries.attempts > 0) {
    const on = config.retries.on;
    retries = Object.freeze({
      attempts: config.retries.attempts,
      onConnect: on.includes('connect'),
      onReset: on.includes('reset'),
      onTimeout: on.includes('timeout'),
      statuses: new Set(on.filter((x): x is number => typeof x === 'number')),
      budget: config.retries.budget,
      perTryTimeoutMs: config.retries.perTryTimeout === undefined ? null : parseDuration(config.retries.perTryTimeout),
    });
  }
  let failover: (CompiledVersion | null)[];
  if (config.failover === 'none') {
    failover = versions.map(() => null);
  } else if (config.failover !== undefined) {
    const target = versionsByName.get(config.failover);
    if (target === undefined) {
      report('unknown_version', [...base, 'resilience', 'failover'], `"${config.failover}" is not a version of service ${spec.name} (versions: ${[...versionsByName.keys()].join(', ')}, or none)`);
      return null;
    }
    failover = versions.map((v) => (v === target ? null : target));
  } else {
    const weights = split?.weights ?? {};
    failover = versions.map((v) => {
      let best: CompiledVersion | null = null;
      for (const other of versions) {
        const w = weights[other.name] ?? 0;
        if (other !== v && w > 0 && (best === null || w > (weights[best.name] ?? 0))) best = other;
      }
      return best;
    });
  }
  return Object.freeze({ retries, failover: Object.freeze(failover), maxInFlight: config.maxInFlight ?? 0 });
}

function compileRules(spec: ServiceConfig, base: Path, versionsByName: Map<string, CompiledVersion>, report: Report): readonly CompiledRule[] {
  const rules: CompiledRule[] = [];
  spec.routes.forEach((rule, ri) => {
    const path: Path = [...base, 'routes', ri];
    const to = versionsByName.get(rule.to);
    if (!to) {
      report('unknown_version', [...path, 'to'], `"${rule.to}" is not a version of service ${spec.name} (versions: ${[...versionsByName.keys()].join(', ')})`);
    }
    const conditions: Matcher[] = [];
    // Conditions in the registry's order, so a rule reads the same whatever order its YAML keys have.
    for (const [kind, create] of MATCHERS) {
      const matcherSpec = (rule.match as Readonly<Record<string, unknown>>)[kind];
      if (matcherSpec === undefined) continue;
      try {
        conditions.push(create(matcherSpec));
      } catch (err) {
        if (!(err instanceof MatcherSpecError)) throw err;
        report(err.code, err.field ? [...path, 'match', kind, err.field] : [...path, 'match', kind], err.message);
      }
    }
    if (to) rules.push(Object.freeze({ index: ri, conditions: Object.freeze(conditions), to }));
  });
  return Object.freeze(rules);
}

function compileSplit(
  config: Config,
  spec: ServiceConfig,
  base: Path,
  versions: CompiledVersion[],
  versionsByName: Map<string, CompiledVersion>,
  givenWeights: Readonly<Record<string, number>> | undefined,
  report: Report,
  warnings: CompileIssue[],
): CompiledSplit | null {
  const path: Path = [...base, 'split', 'weights'];
  const configWeights: Record<string, number> = spec.split ? { ...spec.split.weights } : { [versions[0]?.name ?? '']: 100 };
  let unknownCount = 0;
  for (const name of Object.keys(configWeights)) {
    if (!versionsByName.has(name)) {
      report('unknown_version', [...path, name], `"${name}" is not a version of service ${spec.name} (versions: ${[...versionsByName.keys()].join(', ')})`, true);
      unknownCount++;
    }
  }
  const configTotal = Object.values(configWeights).reduce((a, b) => a + b, 0);
  if (unknownCount === 0 && !(configTotal > 0)) {
    report('invalid_weights', path, 'all weights are 0: at least one version must get split traffic');
    return null;
  }
  if (unknownCount > 0 || versions.length === 0) return null;

  let weights = configWeights;
  let source: 'config' | 'runtime' = 'config';
  // The preview key (see compile-rollout.ts) rides along with the weights; it is no version's weight.
  const runtimeWeights = givenWeights && Object.keys(givenWeights).some(isPreviewKey) ? Object.fromEntries(Object.entries(givenWeights).filter(([k]) => !isPreviewKey(k))) : givenWeights;
  if (runtimeWeights) {
    const unknown = Object.keys(runtimeWeights).filter((n) => !versionsByName.has(n));
    // The state store is a file someone may edit: a negative or non-number weight is refused like an unknown version.
    const invalid = Object.keys(runtimeWeights).filter((n) => !(Number.isFinite(runtimeWeights[n]) && runtimeWeights[n]! >= 0));
    const total = Object.values(runtimeWeights).reduce((a, b) => a + b, 0);
    if (unknown.length === 0 && invalid.length === 0 && total > 0) {
      weights = { ...runtimeWeights };
      source = 'runtime';
    } else {
      const why = unknown.length ? `unknown versions: ${unknown.join(', ')}` : invalid.length ? `invalid weights for: ${invalid.join(', ')}` : 'all zero';
      warnings.push({ code: 'runtime_weights_ignored', path, message: `runtime weights for ${spec.name} no longer fit the config (${why}); using the config's weights` });
    }
  }

  // A release member hashes with the release's seed and keeps the canary's range at the top (compile-release.ts).
  const member = releaseMembership(config, spec.name);
  if (member !== null && versionsByName.has(member.canary)) {
    const ordered = [...versions.filter((v) => v.name !== member.canary), versionsByName.get(member.canary)!];
    return buildSplit(weights, ordered, spec.split?.sticky, member.seed, source);
  }
  return buildSplit(weights, versions, spec.split?.sticky, spec.split?.seed ?? spec.name, source);
}

/** A rule's own split over `versions` (the service's, with the rule's filters): config weights only. */
function compileOwnSplit(
  spec: ServiceConfig,
  own: NonNullable<ServiceConfig['split']>,
  path: Path,
  versions: readonly CompiledVersion[],
  versionsByName: ReadonlyMap<string, CompiledVersion>,
  report: Report,
): CompiledSplit | null {
  let ok = true;
  for (const name of Object.keys(own.weights)) {
    if (versionsByName.has(name)) continue;
    report('unknown_version', [...path, 'weights', name], `"${name}" is not a version of service ${spec.name} (versions: ${[...versionsByName.keys()].join(', ')})`, true);
    ok = false;
  }
  if (ok && !(Object.values(own.weights).reduce((a, b) => a + b, 0) > 0)) {
    report('invalid_weights', [...path, 'weights'], 'all weights are 0: at least one version must get split traffic');
    ok = false;
  }
  // The service's seed by default: a sticky user lands on the same side in the rule as in the service.
  return ok ? buildSplit(own.weights, versions, own.sticky, own.seed ?? spec.split?.seed ?? spec.name, 'config') : null;
}

/** Bucket ranges for `weights` over `versions` (config order). */
function buildSplit(
  weights: Readonly<Record<string, number>>,
  versions: readonly CompiledVersion[],
  sticky: StickyKeyConfig | undefined,
  seed: string,
  source: 'config' | 'runtime',
): CompiledSplit {
  const ordered = versions.map((v) => weights[v.name] ?? 0);
  const total = ordered.reduce((a, b) => a + b, 0);
  const fullWeights: Record<string, number> = {};
  for (const v of versions) fullWeights[v.name] = weights[v.name] ?? 0;
  return Object.freeze({
    weights: Object.freeze(fullWeights),
    percents: Object.freeze(ordered.map((w) => Math.round((w / total) * 1e6) / 1e4)),
    ends: bucketEnds(allocateBuckets(ordered)),
    versions: Object.freeze([...versions]),
    sticky: sticky ? ('header' in sticky ? createValueReader('header', sticky.header) : 'cookie' in sticky ? createValueReader('cookie', sticky.cookie) : createValueReader('query', sticky.query)) : null,
    seed,
    seedState: hashSeed(seed),
    source,
  });
}
