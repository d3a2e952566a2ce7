// HOT PATH: request -> service -> first matching rule -> sticky bucket ->
// weighted draw. No await, no logging, no allocation beyond what reading a
// cookie or query value needs. Explain (explain.ts) composes the same steps.

import {
  BUCKETS,
  bucketOf,
  endsSegmentAt,
  hasPathPrefix,
  normalizeRequestHost,
  rangeIndexOf,
  type CompiledRule,
  type CompiledService,
  type CompiledSplit,
  type CompiledVersion,
  type HostGroup,
  type RequestView,
  type RouteTable,
} from '../table/index.ts';

/** A source of uniform numbers in [0, 1); injected so tests can be exact. */
export type RandomSource = () => number;

/** HOT PATH. The service for a Host header and request target, or null (404). */
export function findService(table: RouteTable, hostHeader: string | undefined, url: string): CompiledService | null {
  const services = table.services;
  const hosts = table.hosts;
  const exactHosts = hosts.exactHosts;
  const wildcards = hosts.wildcards;
  // Disabled features cost nothing: a table without host patterns skips the Host header.
  if (hostHeader !== undefined && hostHeader !== '' && (exactHosts.size !== 0 || wildcards.length !== 0)) {
    // Most Host headers are already lowercase without a port: try them as sent first.
    let host = hostHeader;
    let exact = exactHosts.get(host);
    if (exact === undefined) {
      host = normalizeRequestHost(hostHeader);
      if (host !== hostHeader) exact = exactHosts.get(host);
    }
    if (exact !== undefined) {
      const found = firstByPrefix(services, exact, url);
      if (found !== null) return found;
    }
    for (let i = 0; i < wildcards.length; i++) {
      const w = wildcards[i]!;
      if (host.length > w.suffix.length && host.endsWith(w.suffix)) {
        const found = firstByPrefix(services, w.group, url);
        if (found !== null) return found;
      }
    }
  }
  return firstByPrefix(services, hosts.anyHost, url);
}

function firstByPrefix(services: readonly CompiledService[], group: HostGroup, url: string): CompiledService | null {
  const index = group.prefixIndex;
  if (index !== undefined) {
    const lengths = index.lengths;
    for (let i = 0; i < lengths.length; i++) {
      const length = lengths[i]!;
      if (url.length < length || !endsSegmentAt(url, length)) continue;
      const found = index.byPrefix.get(url.length === length ? url : url.slice(0, length));
      if (found !== undefined) return services[found]!;
    }
    return null;
  }
  for (let i = 0; i < group.length; i++) {
    const service = services[group[i]!]!;
    if (hasPathPrefix(url, service.pathPrefix)) return service;
  }
  return null;
}

/** HOT PATH. Index of the first rule whose conditions all match, or -1. */
export function matchRuleIndex(rules: readonly CompiledRule[], req: RequestView): number {
  outer: for (let i = 0; i < rules.length; i++) {
    const conditions = rules[i]!.conditions;
    for (let c = 0; c < conditions.length; c++) {
      if (!conditions[c]!.match(req)) continue outer;
    }
    return i;
  }
  return -1;
}

/** HOT PATH. The sticky bucket of a request, or -1 when it carries no key. */
export function stickyBucketOf(split: CompiledSplit, req: RequestView): number {
  const sticky = split.sticky;
  if (sticky === null) return -1;
  const key = sticky.read(req);
  if (key === undefined || key === '') return -1;
  return bucketOf(split.seedState, key);
}

/** HOT PATH. The version a request gets within a service. */
export function pickVersion(service: CompiledService, req: RequestView, random: RandomSource): CompiledVersion {
  const rules = service.rules;
  if (rules.length > 0) {
    const r = matchRuleIndex(rules, req);
    if (r !== -1) return rules[r]!.to;
  }
  const split = service.split;
  if (split.versions.length === 1) return split.versions[0]!;
  let bucket = stickyBucketOf(split, req);
  if (bucket === -1) bucket = Math.floor(random() * BUCKETS);
  return split.versions[rangeIndexOf(split.ends, bucket)]!;
}

/** HOT PATH. The version for a request, or null when no service matches. */
export function routeRequest(table: RouteTable, req: RequestView, random: RandomSource = Math.random): CompiledVersion | null {
  const service = findService(table, req.headers.host, req.url ?? '/');
  return service === null ? null : pickVersion(service, req, random);
}
