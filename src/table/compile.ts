// compile(config, runtime weights) -> immutable RouteTable, or every semantic
// issue with its config path. Pure: no I/O, no clock, no environment.

import type { Config, ServiceConfig } from '../config/index.ts';
import { parseDuration } from '../config/index.ts';
import { hashSeed } from './hash.ts';
import { normalizeHostPattern } from './hosts.ts';
import { createMatcher, createValueReader, MatcherSpecError, type Matcher } from './matchers.ts';
import { allocateBuckets, bucketEnds } from './split.ts';
import type {
  CompiledRule,
  CompiledService,
  CompiledSplit,
  CompiledVersion,
  CompileIssue,
  HostGroup,
  PrefixIndex,
  RouteTable,
  RuntimeWeights,
  UpstreamTarget,
} from './types.ts';

/** How compile binds upstream origins and which weights win over the config's. */
export interface CompileOptions {
  readonly generation?: number;
  readonly runtimeWeights?: RuntimeWeights;
  /** Turns an origin into the forwarder's target; the default keeps the origin only. */
  readonly bindUpstream?: (origin: string, service: ServiceConfig) => UpstreamTarget;
}

/** The result of compiling: a table, or the issues that refused the config. */
export type CompileResult =
  | { readonly ok: true; readonly table: RouteTable; readonly warnings: readonly CompileIssue[] }
  | { readonly ok: false; readonly issues: readonly CompileIssue[] };

type Path = (string | number)[];
type Report = (code: string, path: Path, message: string, atKey?: boolean) => void;

/** Compiles a validated config into a route table. */
export function compileTable(config: Config, options: CompileOptions = {}): CompileResult {
  const issues: CompileIssue[] = [];
  const warnings: CompileIssue[] = [];
  const report = (code: string, path: Path, message: string, atKey?: boolean) =>
    issues.push(atKey ? { code, path, message, atKey } : { code, path, message });
  const bind = options.bindUpstream ?? ((origin: string) => ({ origin }));

  const services: CompiledService[] = [];
  const servicesByName = new Map<string, CompiledService>();
  const routeKeys = new Map<string, number>();
  // Names seen so far, compiled or not: a broken first "shop" still makes a second "shop" a duplicate.
  const names = new Set<string>();

  config.services.forEach((spec, index) => {
    const base: Path = ['services', index];
    if (names.has(spec.name)) {
      report('duplicate_service', [...base, 'name'], `service name "${spec.name}" is used twice`);
      return;
    }
    names.add(spec.name);
    const hosts = compileHosts(spec, base, report);
    for (const host of hosts ?? ['*']) {
      const key = `${host} ${spec.match.pathPrefix}`;
      const other = routeKeys.get(key);
      if (other !== undefined) {
        const where = other === index ? 'is listed twice in this service' : `is already served by services[${other}]`;
        report('duplicate_route', [...base, 'match'], `host ${host === '*' ? '(any)' : host} with pathPrefix ${spec.match.pathPrefix} ${where}`);
      }
      routeKeys.set(key, index);
    }
    const service = compileService(spec, index, hosts, config, options.runtimeWeights?.[spec.name], bind, report, warnings);
    if (service) {
      services.push(service);
      servicesByName.set(service.name, service);
    }
  });

  if (issues.length > 0) return { ok: false, issues };

  const table: RouteTable = Object.freeze({
    generation: options.generation ?? 0,
    config,
    services: Object.freeze(services),
    servicesByName,
    ...indexHosts(services),
  });
  return { ok: true, table, warnings };
}

function compileHosts(
  spec: ServiceConfig,
  base: Path,
  report: Report,
): string[] | null {
  if (!spec.match.hosts) return null;
  const hosts: string[] = [];
  spec.match.hosts.forEach((raw, i) => {
    const host = normalizeHostPattern(raw);
    if (host === null) {
      report('invalid_host', [...base, 'match', 'hosts', i], `"${raw}" is not a host name or a *.domain wildcard`);
    } else {
      hosts.push(host);
    }
  });
  return hosts;
}

function compileService(
  spec: ServiceConfig,
  index: number,
  hosts: string[] | null,
  config: Config,
  runtimeWeights: Readonly<Record<string, number>> | undefined,
  bind: (origin: string, service: ServiceConfig) => UpstreamTarget,
  report: Report,
  warnings: CompileIssue[],
): CompiledService | null {
  const base: Path = ['services', index];
  const versions: CompiledVersion[] = [];
  const versionsByName = new Map<string, CompiledVersion>();
  // The service object is completed after its versions, which point back to it.
  const service = {} as { -readonly [K in keyof CompiledService]: CompiledService[K] };

  spec.versions.forEach((v, vi) => {
    if (versionsByName.has(v.name)) {
      report('duplicate_version', [...base, 'versions', vi, 'name'], `version name "${v.name}" is used twice in service ${spec.name}`);
      return;
    }
    const urls = typeof v.upstream === 'string' ? [v.upstream] : v.upstream;
    const upstreams: UpstreamTarget[] = [];
    urls.forEach((url, ui) => {
      const path: Path = typeof v.upstream === 'string' ? [...base, 'versions', vi, 'upstream'] : [...base, 'versions', vi, 'upstream', ui];
      const origin = parseOrigin(url);
      if (typeof origin !== 'string') report('invalid_upstream', path, origin.error);
      else upstreams.push(bind(origin, spec));
    });
    const version: CompiledVersion = Object.freeze({
      name: v.name,
      index: vi,
      service: service as CompiledService,
      upstreams: Object.freeze(upstreams),
      cursor: new Uint32Array(1),
    });
    versions.push(version);
    versionsByName.set(v.name, version);
  });

  const rules = compileRules(spec, base, versionsByName, report);
  const split = compileSplit(spec, base, versions, versionsByName, runtimeWeights, report, warnings);

  if (spec.rollout) {
    const canary = spec.rollout.canary;
    if (!versionsByName.has(canary)) {
      report('unknown_version', [...base, 'rollout', 'canary'], `"${canary}" is not a version of service ${spec.name} (versions: ${[...versionsByName.keys()].join(', ')})`);
    } else if (versions.length < 2) {
      report('invalid_rollout', [...base, 'rollout'], 'a rollout needs at least two versions: the canary and a stable one');
    }
  }

  if (!split) return null;
  Object.assign(service, {
    name: spec.name,
    index,
    hosts: hosts ? Object.freeze(hosts) : null,
    pathPrefix: spec.match.pathPrefix,
    versions: Object.freeze(versions),
    versionsByName,
    rules,
    split,
    timeouts: Object.freeze({
      connectMs: parseDuration(spec.timeouts.connect),
      responseMs: parseDuration(spec.timeouts.response),
    }),
    exposeVersionHeader: spec.exposeVersionHeader ?? config.exposeVersionHeader,
    rollout: spec.rollout ?? null,
  });
  return Object.freeze(service);
}

/** `http://h:p` or `https://h:p`, without path, query or credentials. */
function parseOrigin(text: string): string | { error: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { error: `"${text}" is not a URL (expected e.g. http://127.0.0.1:3001)` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { error: `"${text}" must use http:// or https://` };
  if (url.username || url.password) return { error: `"${text}" must not carry credentials` };
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    return { error: `"${text}" must be an origin only (scheme://host:port), without a path or query` };
  }
  return url.origin;
}

function compileRules(
  spec: ServiceConfig,
  base: Path,
  versionsByName: Map<string, CompiledVersion>,
  report: Report,
): readonly CompiledRule[] {
  const rules: CompiledRule[] = [];
  spec.routes.forEach((rule, ri) => {
    const path: Path = [...base, 'routes', ri];
    const to = versionsByName.get(rule.to);
    if (!to) {
      report('unknown_version', [...path, 'to'], `"${rule.to}" is not a version of service ${spec.name} (versions: ${[...versionsByName.keys()].join(', ')})`);
    }
    const conditions: Matcher[] = [];
    for (const kind of ['header', 'cookie', 'query'] as const) {
      const matcherSpec = rule.match[kind];
      if (!matcherSpec) continue;
      try {
        conditions.push(createMatcher(kind, matcherSpec));
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
  spec: ServiceConfig,
  base: Path,
  versions: CompiledVersion[],
  versionsByName: Map<string, CompiledVersion>,
  runtimeWeights: Readonly<Record<string, number>> | undefined,
  report: Report,
  warnings: CompileIssue[],
): CompiledSplit | null {
  const path: Path = [...base, 'split', 'weights'];
  const configWeights: Record<string, number> = spec.split ? { ...spec.split.weights } : { [versions[0]?.name ?? '']: 100 };
  let issuesBefore = 0;
  for (const name of Object.keys(configWeights)) {
    if (!versionsByName.has(name)) {
      report('unknown_version', [...path, name], `"${name}" is not a version of service ${spec.name} (versions: ${[...versionsByName.keys()].join(', ')})`, true);
      issuesBefore++;
    }
  }
  const configTotal = Object.values(configWeights).reduce((a, b) => a + b, 0);
  if (issuesBefore === 0 && !(configTotal > 0)) {
    report('invalid_weights', path, 'all weights are 0: at least one version must get split traffic');
    return null;
  }
  if (issuesBefore > 0 || versions.length === 0) return null;

  let weights = configWeights;
  let source: 'config' | 'runtime' = 'config';
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
      warnings.push({
        code: 'runtime_weights_ignored',
        path,
        message: `runtime weights for ${spec.name} no longer fit the config (${why}); using the config's weights`,
      });
    }
  }

  const ordered = versions.map((v) => weights[v.name] ?? 0);
  const total = ordered.reduce((a, b) => a + b, 0);
  const counts = allocateBuckets(ordered);
  const sticky = spec.split?.sticky;
  const seed = spec.split?.seed ?? spec.name;
  const fullWeights: Record<string, number> = {};
  for (const v of versions) fullWeights[v.name] = weights[v.name] ?? 0;
  return Object.freeze({
    weights: Object.freeze(fullWeights),
    percents: Object.freeze(ordered.map((w) => Math.round((w / total) * 1e6) / 1e4)),
    ends: bucketEnds(counts),
    versions: Object.freeze([...versions]),
    sticky: sticky
      ? 'header' in sticky
        ? createValueReader('header', sticky.header)
        : 'cookie' in sticky
          ? createValueReader('cookie', sticky.cookie)
          : createValueReader('query', sticky.query)
      : null,
    seed,
    seedState: hashSeed(seed),
    source,
  });
}

/** Groups larger than this get a prefix index; below it a scan is as fast. */
const PREFIX_INDEX_MIN = 8;

/** Groups services by host pattern; each group longest pathPrefix first. */
function indexHosts(services: readonly CompiledService[]): Pick<RouteTable, 'exactHosts' | 'wildcards' | 'anyHost'> {
  const exact = new Map<string, CompiledService[]>();
  const wild = new Map<string, CompiledService[]>();
  const any: CompiledService[] = [];
  for (const service of services) {
    if (!service.hosts) {
      any.push(service);
      continue;
    }
    for (const host of service.hosts) {
      const [map, key] = host.startsWith('*.') ? [wild, host.slice(1)] : [exact, host];
      const group = map.get(key) ?? [];
      group.push(service);
      map.set(key, group);
    }
  }
  const byPrefix = (group: CompiledService[]): HostGroup => {
    const sorted: CompiledService[] & { prefixIndex?: PrefixIndex } = [...group].sort(
      (a, b) => b.pathPrefix.length - a.pathPrefix.length || a.index - b.index,
    );
    // Prefixes are unique within a group (duplicate_route), so a map finds the one that fits.
    if (sorted.length > PREFIX_INDEX_MIN) {
      sorted.prefixIndex = Object.freeze({
        lengths: Object.freeze([...new Set(sorted.map((s) => s.pathPrefix.length))]),
        byPrefix: new Map(sorted.map((s) => [s.pathPrefix, s])),
      });
    }
    return Object.freeze(sorted);
  };
  return {
    exactHosts: new Map([...exact].map(([host, group]) => [host, byPrefix(group)])),
    wildcards: Object.freeze(
      [...wild]
        .sort((a, b) => b[0].length - a[0].length)
        .map(([suffix, group]) => Object.freeze({ suffix, group: byPrefix(group) })),
    ),
    anyHost: byPrefix(any),
  };
}
