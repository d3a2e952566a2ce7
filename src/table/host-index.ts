// Which services serve which host and path. Built once per config and shared
// by every table compiled from it: the groups hold service positions, not
// service objects, so a weight change that replaces one compiled service
// leaves this index as it is.

import { compareEntries } from './compile-rules.ts';
import type { ValueReader } from './matchers.ts';
import type { CompiledService, EntryIndex, HeaderIndex, HostEntry, PathEndIndex, HostGroup, HostIndex, PrefixIndex, ServiceLookup } from './types.ts';

/** Groups larger than this get a prefix index; below it a scan is as fast. */
const PREFIX_INDEX_MIN = 8;

/** Whether a service routes by `rules:` rather than one catch-all under its pathPrefix. */
function hasRules(service: CompiledService): boolean {
  return service.entries.length !== 1 || service.entries[0]!.action !== -1;
}

/** A header index pays once at least this many entries are keyed by the header... */
const HEADER_INDEX_MIN = 4;
/** ...and at most this many are not (each is tried on every request). */
const HEADER_INDEX_MAX_OTHERS = 4;

/** The Exact header condition of an entry on `name`, if it has one. */
function exactHeaderOf(entry: HostEntry, name: string): string | undefined {
  for (const c of entry.conditions) if (c.exact?.reader.kind === 'header' && c.exact.reader.name === name) return c.exact.value;
  return undefined;
}

/**
 * Indexes entries (in precedence order) by the header most of them match
 * with Exact, when that leaves few others; see HeaderIndex. undefined when
 * no header keys enough of them.
 */
function indexByHeader(entries: readonly HostEntry[]): HeaderIndex | undefined {
  const readers = new Map<string, { reader: ValueReader; count: number }>();
  for (const entry of entries) {
    const seen = new Set<string>();
    for (const c of entry.conditions) {
      const reader = c.exact?.reader;
      if (reader?.kind !== 'header' || seen.has(reader.name)) continue;
      seen.add(reader.name);
      const known = readers.get(reader.name);
      if (known) known.count++;
      else readers.set(reader.name, { reader, count: 1 });
    }
  }
  const best = [...readers.values()].sort((a, b) => b.count - a.count)[0];
  if (best === undefined || best.count < HEADER_INDEX_MIN || entries.length - best.count > HEADER_INDEX_MAX_OTHERS) return undefined;
  const byValue = new Map<string, number[]>();
  const others: number[] = [];
  entries.forEach((entry, position) => {
    const value = exactHeaderOf(entry, best.reader.name);
    if (value === undefined) others.push(position);
    else byValue.set(value, [...(byValue.get(value) ?? []), position]);
  });
  return Object.freeze({ reader: best.reader, byValue, others: Object.freeze(others) });
}

/** Indexes entries (in precedence order) by the last character of their paths, when most have one; see PathEndIndex. */
function indexByPathEnd(entries: readonly HostEntry[]): PathEndIndex | undefined {
  const others = entries.flatMap((entry, position) => (entry.path.lastChar === -1 ? [position] : []));
  if (entries.length - others.length < HEADER_INDEX_MIN || others.length > HEADER_INDEX_MAX_OTHERS) return undefined;
  const byLastChar = new Map<number, number[]>();
  entries.forEach((entry, position) => {
    const c = entry.path.lastChar;
    if (c !== -1) byLastChar.set(c, [...(byLastChar.get(c) ?? []), position]);
  });
  // Keyed, but by too few characters to narrow anything: the plain walk is as good.
  if (byLastChar.size < 2) return undefined;
  // Many Exact paths are better found by the path index's map (one lookup, not a bucket per last character).
  if (entries.length > PREFIX_INDEX_MIN && entries.some((entry) => entry.path.kind === 'Exact')) return undefined;
  return Object.freeze({ byLastChar, others: Object.freeze(others) });
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
  const lengths = [...new Set([...prefixes.keys()].map((p) => p.length))].sort((a, b) => b - a);
  return Object.freeze({ exact, regex: Object.freeze(regex), prefixLengths: Object.freeze(lengths), prefixes });
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
    const sorted: number[] & { prefixIndex?: PrefixIndex; routeEntries?: readonly HostEntry[]; entryIndex?: EntryIndex; headerIndex?: HeaderIndex; pathEndIndex?: PathEndIndex; readsPathEnd?: boolean } = [...group].sort(
      (a, b) => services[b]!.pathPrefix.length - services[a]!.pathPrefix.length || services[a]!.index - services[b]!.index,
    );
    // With `rules:` in the group, every service's entries compete by Gateway API's precedence;
    // a stable sort over config order (services, then their own order) breaks ties.
    if (sorted.some((p) => hasRules(services[p]!))) {
      const inConfigOrder = [...group].sort((a, b) => services[a]!.index - services[b]!.index);
      const entries = inConfigOrder.flatMap((p) => services[p]!.entries.map((entry): HostEntry => Object.freeze({ ...entry, service: p })));
      sorted.routeEntries = Object.freeze(entries.sort(compareEntries));
      sorted.readsPathEnd = entries.some((entry) => entry.path.kind !== 'PathPrefix');
      // Entries keyed mostly by one header's value are found by it; else a large group by path.
      const byHeader = indexByHeader(sorted.routeEntries);
      const byPathEnd = byHeader === undefined ? indexByPathEnd(sorted.routeEntries) : undefined;
      if (byHeader !== undefined) sorted.headerIndex = byHeader;
      else if (byPathEnd !== undefined) sorted.pathEndIndex = byPathEnd;
      else if (entries.length > PREFIX_INDEX_MIN) sorted.entryIndex = indexEntries(sorted.routeEntries);
      return Object.freeze(sorted);
    }
    // Prefixes are unique within a group (duplicate_route), so a map finds the one that fits.
    if (sorted.length > PREFIX_INDEX_MIN) {
      sorted.prefixIndex = Object.freeze({
        lengths: Object.freeze([...new Set(sorted.map((p) => services[p]!.pathPrefix.length))]),
        byPrefix: new Map(sorted.map((p) => [services[p]!.pathPrefix, p])),
      });
    }
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
