// Which services serve which host and path. Built once per config and shared
// by every table compiled from it: the groups hold service positions, not
// service objects, so a weight change that replaces one compiled service
// leaves this index as it is.

import { compareEntries } from './compile-rules.ts';
import type { CompiledService, EntryIndex, HostEntry, HostGroup, HostIndex, PrefixIndex, ServiceLookup } from './types.ts';

/** Groups larger than this get a prefix index; below it a scan is as fast. */
const PREFIX_INDEX_MIN = 8;

/** Whether a service routes by `rules:` rather than one catch-all under its pathPrefix. */
function hasRules(service: CompiledService): boolean {
  return service.entries.length !== 1 || service.entries[0]!.action !== -1;
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
    const sorted: number[] & { prefixIndex?: PrefixIndex; routeEntries?: readonly HostEntry[]; entryIndex?: EntryIndex } = [...group].sort(
      (a, b) => services[b]!.pathPrefix.length - services[a]!.pathPrefix.length || services[a]!.index - services[b]!.index,
    );
    // With `rules:` in the group, every service's entries compete by Gateway API's precedence;
    // a stable sort over config order (services, then their own order) breaks ties.
    if (sorted.some((p) => hasRules(services[p]!))) {
      const inConfigOrder = [...group].sort((a, b) => services[a]!.index - services[b]!.index);
      const entries = inConfigOrder.flatMap((p) => services[p]!.entries.map((entry): HostEntry => Object.freeze({ ...entry, service: p })));
      sorted.routeEntries = Object.freeze(entries.sort(compareEntries));
      if (entries.length > PREFIX_INDEX_MIN) sorted.entryIndex = indexEntries(sorted.routeEntries);
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
