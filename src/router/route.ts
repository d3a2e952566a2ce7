// HOT PATH: request -> host group -> service (longest pathPrefix) or route
// entry (Gateway API precedence) -> first matching rule -> sticky bucket ->
// weighted draw. No await, no logging, no allocation beyond what reading a
// cookie or query value needs. Explain (explain.ts) composes the same steps.

import {
  BUCKETS,
  bucketOf,
  endsSegmentAt,
  hasPathPrefix,
  normalizeRequestHost,
  pathEndOf,
  rangeIndexOf,
  type CompiledAction,
  type CompiledRule,
  type CompiledService,
  type CompiledSplit,
  type CompiledVersion,
  type EntryIndex,
  type EntryRun,
  type HostEntry,
  type HostGroup,
  type Matcher,
  type RequestView,
  type RouteEntry,
  type RouteTable,
} from '../table/index.ts';

/** A source of uniform numbers in [0, 1); injected so tests can be exact. */
export type RandomSource = () => number;

/**
 * The service that takes a Host header and request target (its pathPrefix,
 * or with `rules:` its first entry by precedence), or null (404).
 */
export function findService(table: RouteTable, hostHeader: string | undefined, url: string, req?: RequestView): CompiledService | null {
  const view: RequestView = req ?? { headers: hostHeader === undefined ? {} : { host: hostHeader }, url };
  return routeRequest(table, view, firstDraw)?.service ?? null;
}

const firstDraw: RandomSource = () => 0;

function firstByPrefix(services: readonly CompiledService[], group: HostGroup, url: string): CompiledService | null {
  const index = group.prefixIndex;
  if (index !== undefined) {
    const tables = index.tables;
    for (let i = 0; i < tables.length; i++) {
      const table = tables[i]!;
      if (url.length < table.length || !endsSegmentAt(url, table.length)) continue;
      const found = table.find(url);
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

/** HOT PATH. Whether a route entry's path, method and conditions all hold; `end` is where the path ends (pathEndOf). */
export function entryMatches(entry: RouteEntry, req: RequestView, url: string, end: number): boolean {
  return holds(entry, entry.conditions, false, req, url, end);
}

/** HOT PATH. entryMatches with the conditions left to check, and the path check skipped when an index proved it. */
function holds(entry: RouteEntry, conditions: readonly Matcher[], pathHolds: boolean, req: RequestView, url: string, end: number): boolean {
  if (!pathHolds && !entry.path.matchPath(url, end)) return false;
  if (entry.method !== null && req.method !== entry.method) return false;
  for (let c = 0; c < conditions.length; c++) {
    if (!conditions[c]!.match(req)) return false;
  }
  return true;
}

/** Not frozen, like the position lists of host-index.ts: the merge below then loads from plain arrays only. */
const NO_POSITIONS: readonly number[] = [];

/** HOT PATH. The first entry of a run that holds, through its index when it has one (see EntryRun); null when none does. */
function firstInRun(run: EntryRun, req: RequestView, url: string, end: number): HostEntry | null {
  const entries = run.entries;
  const conditions = run.conditions;
  const pathHolds = run.pathHolds;
  let hits: readonly number[];
  let rest: readonly number[];
  const bySuffix = run.bySuffix;
  const keyed = run.keyed;
  if (bySuffix !== null) {
    const at = end - bySuffix.offset;
    const c = at >= 0 ? url.charCodeAt(at) : 128;
    hits = c < 128 ? bySuffix.byChar[c]! : NO_POSITIONS;
    rest = bySuffix.rest;
  } else if (keyed !== null) {
    const value = keyed.reader.read(req);
    hits = value === undefined ? NO_POSITIONS : (keyed.byValue.get(value) ?? NO_POSITIONS);
    rest = keyed.rest;
  } else {
    for (let i = 0; i < entries.length; i++) {
      if (holds(entries[i]!, conditions[i]!, pathHolds, req, url, end)) return entries[i]!;
    }
    return null;
  }
  // A merge of two ascending position lists: the entries in precedence order, less those the index ruled out.
  let h = 0;
  let r = 0;
  while (h < hits.length || r < rest.length) {
    const position = r === rest.length || (h < hits.length && hits[h]! < rest[r]!) ? hits[h++]! : rest[r++]!;
    if (holds(entries[position]!, conditions[position]!, pathHolds, req, url, end)) return entries[position]!;
  }
  return null;
}

/** HOT PATH. The first entry of a large group that holds, through its path index; null when none does. */
function firstIndexedEntry(index: EntryIndex, req: RequestView, url: string, end: number): HostEntry | null {
  if (index.exact.size !== 0) {
    const run = index.exact.get(end === url.length ? url : url.slice(0, end));
    const found = run === undefined ? null : (run.first ?? firstInRun(run, req, url, end));
    if (found !== null) return found;
  }
  if (index.regex.entries.length !== 0) {
    const found = firstInRun(index.regex, req, url, end);
    if (found !== null) return found;
  }
  const tables = index.prefixTables;
  for (let i = 0; i < tables.length; i++) {
    const table = tables[i]!;
    const length = table.length;
    if (url.length < length || !endsSegmentAt(url, length)) continue;
    const run = table.find(url);
    const hit = run === undefined ? null : (run.first ?? firstInRun(run, req, url, end));
    if (hit !== null) return hit;
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

/** HOT PATH. Index of the version a split draws for a request: by its sticky bucket, else at random by weight. */
function drawIndex(split: CompiledSplit, req: RequestView, random: RandomSource): number {
  if (split.versions.length === 1) return 0;
  let bucket = stickyBucketOf(split, req);
  if (bucket === -1) bucket = Math.floor(random() * BUCKETS);
  return rangeIndexOf(split.ends, bucket);
}

/** HOT PATH. The version a request gets within a service, by its `routes:`, then its split. */
export function pickVersion(service: CompiledService, req: RequestView, random: RandomSource): CompiledVersion {
  const rules = service.rules;
  if (rules.length > 0) {
    const r = matchRuleIndex(rules, req);
    if (r !== -1) return rules[r]!.to;
  }
  const split = service.split;
  return split.versions[drawIndex(split, req, random)]!;
}

/**
 * HOT PATH. The version a `rules:` match leads to. The short `routes:` form
 * goes first (its documented first-match order), for requests under the
 * service's pathPrefix; then the rule's `to`, its own split, or the
 * service's split (with the rule's filters).
 */
export function pickByAction(service: CompiledService, action: CompiledAction, req: RequestView, url: string, random: RandomSource): CompiledVersion {
  const rules = service.rules;
  if (rules.length > 0 && hasPathPrefix(url, service.pathPrefix)) {
    const r = matchRuleIndex(rules, req);
    if (r !== -1) return rules[r]!.to;
  }
  if (action.to !== null) return action.to;
  const split = action.split;
  if (split !== null) return split.versions[drawIndex(split, req, random)]!;
  return action.serviceVersions[drawIndex(service.split, req, random)]!;
}

/** HOT PATH. The version for a request, or null when no service (or no rule) takes it. */
export function routeRequest(table: RouteTable, req: RequestView, random: RandomSource = Math.random): CompiledVersion | null {
  const url = req.url ?? '/';
  const services = table.services;
  const hosts = table.hosts;
  // The common table (no host patterns, no rules): one group, no closure.
  if (hosts.exactHosts.size === 0 && hosts.wildcards.length === 0 && hosts.anyHost.routes === undefined) {
    const service = firstByPrefix(services, hosts.anyHost, url);
    return service === null ? null : pickVersion(service, req, random);
  }
  const hostHeader = req.headers.host;
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
    // The exact host, then the wildcards that cover it (longest first), then any host.
    if (exact !== undefined) {
      const found = routeInGroup(services, exact, req, url, random);
      if (found !== null) return found;
    }
    for (let i = 0; i < wildcards.length; i++) {
      const w = wildcards[i]!;
      if (host.length > w.suffix.length && host.endsWith(w.suffix)) {
        const found = routeInGroup(services, w.group, req, url, random);
        if (found !== null) return found;
      }
    }
  }
  return routeInGroup(services, hosts.anyHost, req, url, random);
}

/** HOT PATH. The version within one host group, or null when nothing in it takes the request. */
function routeInGroup(services: readonly CompiledService[], group: HostGroup, req: RequestView, url: string, random: RandomSource): CompiledVersion | null {
  const routes = group.routes;
  if (routes === undefined) {
    const service = firstByPrefix(services, group, url);
    return service === null ? null : pickVersion(service, req, random);
  }
  // Disabled features cost nothing: only a group that reads where the path ends looks for it.
  const end = routes.pathEnd ? pathEndOf(url) : url.length;
  const entry = routes.index !== null ? firstIndexedEntry(routes.index, req, url, end) : firstInRun(routes.run!, req, url, end);
  if (entry === null) return null;
  const service = services[entry.service]!;
  return entry.action === -1 ? pickVersion(service, req, random) : pickByAction(service, service.actions[entry.action]!, req, url, random);
}
