// Which services serve which host and path. Built once per config and shared
// by every table compiled from it: the groups hold service positions, not
// service objects, so a weight change that replaces one compiled service
// leaves this index as it is.

import { compareEntries } from './compile-rules.ts';
import { PrefixTable } from './prefix-table.ts';
import type { Matcher, ValueReader } from './matchers.ts';
import type { CompiledService, EntryIndex, EntryRun, GroupRoutes, HostEntry, HostGroup, HostIndex, KeyedEntries, PrefixIndex, ServiceLookup, SuffixEntries } from './types.ts';

/** Groups larger than this get a prefix index; below it a scan is as fast. */
const PREFIX_INDEX_MIN = 8;

/** Whether a service routes by `rules:` rather than one catch-all under its pathPrefix. */
function hasRules(service: CompiledService): boolean {
  return service.entries.length !== 1 || service.entries[0]!.action !== -1;
}

/** Fewer entries of a run than this testing one key for an Exact value are walked plainly: the index would not pay for its lookup. */
const KEYED_MIN = 4;

/** The key an Exact condition reads, as one string (`header:x-region`). */
function keyOf(reader: ValueReader): string {
  return `${reader.kind}:${reader.name}`;
}

/**
 * Entries (in precedence order) as a run (see EntryRun): by a suffix
 * character for regex paths that have literal suffixes, else keyed on the key
 * most of them test for an Exact value, else plain. `pathHolds`: the path
 * index that leads to this run already proved their paths.
 *
 * The arrays the router walks (entries, conditions, position lists) are
 * plain copies, typed readonly but not frozen: V8 loads an element of a
 * frozen array, or at a site that also sees plain ones, through a generic
 * keyed IC call (~10 ns) instead of inline. Nothing writes them after this.
 */
function runOf(entries: readonly HostEntry[], pathHolds: boolean): EntryRun {
  const bySuffix = pathHolds ? null : suffixIndexOf(entries);
  const keyed = bySuffix === null ? keyedIndexOf(entries) : null;
  const head = entries[0];
  return Object.freeze({
    entries: [...entries],
    // Nothing left to check on the first entry: it is the run's answer whatever the request.
    first: pathHolds && head !== undefined && head.method === null && head.conditions.length === 0 ? head : null,
    conditions: keyed?.conditions ?? entries.map((e) => [...e.conditions]),
    pathHolds,
    keyed: keyed?.index ?? null,
    bySuffix,
  });
}

/** The key index of a run, and each entry's conditions without the one the index checks; null when no key is shared by KEYED_MIN entries. */
function keyedIndexOf(entries: readonly HostEntry[]): { index: KeyedEntries; conditions: readonly (readonly Matcher[])[] } | null {
  const counts = new Map<string, number>();
  for (const entry of entries) {
    const keys = new Set(entry.conditions.flatMap((c) => (c.exact === undefined ? [] : [keyOf(c.exact.reader)])));
    for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  let best: string | null = null;
  for (const [key, count] of counts) if (count >= KEYED_MIN && (best === null || count > counts.get(best)!)) best = key;
  if (best === null) return null;
  let reader: ValueReader | null = null;
  const byValue = new Map<string, number[]>();
  const rest: number[] = [];
  const conditions: (readonly Matcher[])[] = [];
  entries.forEach((entry, position) => {
    const keyedOn = entry.conditions.find((c) => c.exact !== undefined && keyOf(c.exact.reader) === best);
    if (keyedOn === undefined) {
      rest.push(position);
      conditions.push([...entry.conditions]);
      return;
    }
    const { reader: its, value } = keyedOn.exact!;
    reader ??= its;
    byValue.set(value, [...(byValue.get(value) ?? []), position]);
    conditions.push(entry.conditions.filter((c) => c !== keyedOn));
  });
  return { index: Object.freeze({ reader: reader!, byValue, rest }), conditions };
}

/** Farthest from the end of a literal suffix that the suffix index looks. */
const MAX_SUFFIX_OFFSET = 16;

/**
 * The suffix index of a run of regex paths: the offset from the end whose
 * character leaves the fewest entries to try in the worst case; null when
 * fewer than KEYED_MIN entries have a literal suffix, or no offset helps.
 */
function suffixIndexOf(entries: readonly HostEntry[]): SuffixEntries | null {
  const suffixes = entries.map((e) => e.path.suffix);
  if (suffixes.filter((suffix) => suffix.length > 0).length < KEYED_MIN) return null;
  let best = 0;
  let bestCost = entries.length;
  for (let offset = 1; offset <= MAX_SUFFIX_OFFSET; offset++) {
    const buckets = new Map<number, number>();
    let unindexed = 0;
    for (const suffix of suffixes) {
      if (suffix.length < offset) unindexed++;
      else {
        const c = suffix.charCodeAt(suffix.length - offset);
        buckets.set(c, (buckets.get(c) ?? 0) + 1);
      }
    }
    const cost = unindexed + Math.max(0, ...buckets.values());
    if (cost < bestCost) [best, bestCost] = [offset, cost];
  }
  if (best === 0) return null;
  // Suffixes are ASCII (regex.ts parses only ASCII patterns), so 128 slots hold every character.
  const byChar: number[][] = Array.from({ length: 128 }, () => []);
  const rest: number[] = [];
  suffixes.forEach((suffix, position) => (suffix.length < best ? rest : byChar[suffix.charCodeAt(suffix.length - best)]!).push(position));
  return Object.freeze({ offset: best, byChar, rest: Object.freeze(rest) });
}

/** `byPrefix` as one PrefixTable per prefix length, longest first: the order a longest-prefix walk tries them in. */
function prefixTablesOf<T>(byPrefix: ReadonlyMap<string, T>): PrefixTable<T>[] {
  const lengths = [...new Set([...byPrefix.keys()].map((p) => p.length))].sort((a, b) => b - a);
  return lengths.map((length) => new PrefixTable(new Map([...byPrefix].filter(([prefix]) => prefix.length === length))));
}

/** Indexes entries (already in precedence order) by their path; see EntryIndex. */
function indexEntries(entries: readonly HostEntry[]): EntryIndex {
  const exact = new Map<string, HostEntry[]>();
  const prefixes = new Map<string, HostEntry[]>();
  const regex: HostEntry[] = [];
  for (const entry of entries) {
    const path = entry.path;
    if (path.kind === 'RegularExpression') regex.push(entry);
    else {
      const map = path.kind === 'Exact' ? exact : prefixes;
      const list = map.get(path.value) ?? [];
      list.push(entry);
      map.set(path.value, list);
    }
  }
  // The lookup by path proves an Exact or PathPrefix entry's path: its run skips that check.
  const runs = (map: Map<string, HostEntry[]>) => new Map([...map].map(([path, list]) => [path, runOf(Object.freeze(list), true)]));
  const prefixRuns = runs(prefixes);
  return Object.freeze({ exact: runs(exact), regex: runOf(Object.freeze(regex), false), prefixTables: prefixTablesOf(prefixRuns), prefixes: prefixRuns });
}

/** A group's entries (in precedence order) as the router walks them: one run, or by path when there are many. */
function routesOf(entries: readonly HostEntry[]): GroupRoutes {
  const indexed = entries.length > PREFIX_INDEX_MIN;
  return Object.freeze({
    entries,
    pathEnd: entries.some((e) => e.path.kind === 'RegularExpression' || (indexed && e.path.kind === 'Exact')),
    run: indexed ? null : runOf(entries, false),
    index: indexed ? indexEntries(entries) : null,
  });
}

/** Groups services by host pattern; each group longest pathPrefix first. */
export function indexHosts(services: readonly CompiledService[]): HostIndex {
  const exact = new Map<string, number[]>();
  const wild = new Map<string, number[]>();
  const any: number[] = [];
  const byName = new Map<string, number>();
  services.forEach((service, position) => {
    byName.set(service.name, position);
    if (!service.hosts) {
      any.push(position);
      return;
    }
    for (const host of service.hosts) {
      const [map, key] = host.startsWith('*.') ? [wild, host.slice(1)] : [exact, host];
      const group = map.get(key) ?? [];
      group.push(position);
      map.set(key, group);
    }
  });
  const byPrefix = (group: number[]): HostGroup => {
    const sorted: number[] & { prefixIndex?: PrefixIndex; routes?: GroupRoutes } = [...group].sort(
      (a, b) => services[b]!.pathPrefix.length - services[a]!.pathPrefix.length || services[a]!.index - services[b]!.index,
    );
    // With `rules:` in the group, every service's entries compete by Gateway API's precedence;
    // a stable sort over config order (services, then their own order) breaks ties.
    if (sorted.some((p) => hasRules(services[p]!))) {
      const inConfigOrder = [...group].sort((a, b) => services[a]!.index - services[b]!.index);
      const entries = inConfigOrder.flatMap((p) => services[p]!.entries.map((entry): HostEntry => Object.freeze({ ...entry, service: p })));
      sorted.routes = routesOf(Object.freeze(entries.sort(compareEntries)));
      return Object.freeze(sorted);
    }
    // Prefixes are unique within a group (duplicate_route), so a table per length finds the one that fits.
    if (sorted.length > PREFIX_INDEX_MIN) sorted.prefixIndex = Object.freeze({ tables: prefixTablesOf(new Map(sorted.map((p) => [services[p]!.pathPrefix, p]))) });
    return Object.freeze(sorted);
  };
  return Object.freeze({
    exactHosts: new Map([...exact].map(([host, group]) => [host, byPrefix(group)])),
    wildcards: Object.freeze(
      [...wild]
        .sort((a, b) => b[0].length - a[0].length)
        .map(([suffix, group]) => Object.freeze({ suffix, group: byPrefix(group) })),
    ),
    anyHost: byPrefix(any),
    byName,
  });
}

/** A by-name view of one table's services, through the shared name -> position map. */
export function lookupServices(services: readonly CompiledService[], byName: ReadonlyMap<string, number>): ServiceLookup {
  return Object.freeze({
    get: (name: string) => {
      const position = byName.get(name);
      return position === undefined ? undefined : services[position];
    },
    has: (name: string) => byName.has(name),
    keys: () => byName.keys(),
    size: byName.size,
  });
}
