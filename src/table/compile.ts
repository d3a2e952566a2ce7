// compile(config, runtime weights) -> immutable RouteTable, or every semantic
// issue with its config path; and the incremental form, reweighTable, that
// recompiles only the services whose runtime weights changed and shares the
// rest of the table. Pure: no I/O, no clock, no environment.
//
//   compileTable(config, weights)       every service + the host index    O(config)
//   reweighTable(table, {svc: weights})  the named services only           O(changed services)
//                                        (+ one copy of the services array of pointers)

import type { Config } from '../config/index.ts';
import { checkReleases, releaseMembership } from './compile-release.ts';
import { compileHosts, compileService, type Path, type Report } from './compile-service.ts';
import { indexHosts, lookupServices } from './host-index.ts';
import { normalizePathPrefix } from './paths.ts';
import type { CompiledService, CompileIssue, HostIndex, RouteTable, RuntimeWeights } from './types.ts';

/** Which weights win over the config's, the generation to stamp, and a table to reuse compiled services from. */
export interface CompileOptions {
  readonly generation?: number;
  readonly runtimeWeights?: RuntimeWeights;
  /**
   * The table this one replaces: a service whose config is the very same
   * object (a reader keeps unchanged services' objects) at the same position,
   * with the same runtime weights, is taken over as compiled.
   */
  readonly previous?: RouteTable;
}

/** The result of compiling: a table, or the issues that refused the config. */
export type CompileResult =
  | { readonly ok: true; readonly table: RouteTable; readonly warnings: readonly CompileIssue[] }
  | { readonly ok: false; readonly issues: readonly CompileIssue[] };

/** Runtime weights for some services: a map sets them, null drops them (the config's apply). */
export type WeightChanges = Readonly<Record<string, Readonly<Record<string, number>> | null>>;

function collector(): { issues: CompileIssue[]; report: Report } {
  const issues: CompileIssue[] = [];
  const report: Report = (code, path, message, atKey) => issues.push(atKey ? { code, path, message, atKey } : { code, path, message });
  return { issues, report };
}

/** Compiles a validated config into a route table. */
export function compileTable(config: Config, options: CompileOptions = {}): CompileResult {
  const { issues, report } = collector();
  const warnings: CompileIssue[] = [];
  const runtimeWeights = options.runtimeWeights ?? {};
  const services: CompiledService[] = [];
  const routeKeys = new Map<string, number>();
  // Reuse needs every config-wide input of a service to be unchanged too.
  const previous =
    options.previous !== undefined &&
    options.previous.config.exposeVersionHeader === config.exposeVersionHeader &&
    JSON.stringify(options.previous.config.resolver) === JSON.stringify(config.resolver)
      ? options.previous
      : null;
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
    // A service with `rules:` has no catch-all: its rules compete by precedence instead.
    for (const host of spec.rules === undefined ? (hosts ?? ['*']) : []) {
      // `/api` and `/api/` are one prefix (whole segments).
      const key = `${host} ${normalizePathPrefix(spec.match.pathPrefix)}`;
      const other = routeKeys.get(key);
      if (other !== undefined) {
        const where = other === index ? 'is listed twice in this service' : `is already served by services[${other}]`;
        report('duplicate_route', [...base, 'match'], `host ${host === '*' ? '(any)' : host} with pathPrefix ${spec.match.pathPrefix} ${where}`);
      }
      routeKeys.set(key, index);
    }
    const service = reusable(previous, config, spec, index, runtimeWeights) ?? compileService(config, index, hosts, runtimeWeights[spec.name], report, warnings);
    if (service) services.push(service);
  });

  checkReleases(config, report);
  if (issues.length > 0) return { ok: false, issues };
  // Same services in the same places: the host index (which names them by place) still holds.
  const hostIndex = previous !== null && services.length === previous.services.length && services.every((s, i) => s === previous.services[i]) ? previous.hosts : indexHosts(services);
  return { ok: true, table: assemble(config, options.generation ?? 0, services, hostIndex, runtimeWeights), warnings };
}

/** The previous table's compiled service when nothing it was compiled from changed. */
function reusable(previous: RouteTable | null, config: Config, spec: Config['services'][number], index: number, runtimeWeights: RuntimeWeights): CompiledService | null {
  if (previous === null || previous.config.services[index] !== spec) return null;
  // A release changes its members' seed and range order.
  if (JSON.stringify(releaseMembership(previous.config, spec.name)) !== JSON.stringify(releaseMembership(config, spec.name))) return null;
  const position = previous.hosts.byName.get(spec.name);
  const old = position === undefined ? undefined : previous.services[position];
  if (old === undefined || old.index !== index || previous.runtimeWeights[spec.name] !== runtimeWeights[spec.name]) return null;
  return old;
}

/**
 * The table with new runtime weights for the services named in `changes`,
 * every other compiled service and the host index shared with `table`.
 * Weights for services the config lacks are kept, not compiled. Issues refuse
 * the change; warnings say which runtime weights were ignored.
 */
export function reweighTable(table: RouteTable, changes: WeightChanges, generation = table.generation + 1): CompileResult {
  const { issues, report } = collector();
  const warnings: CompileIssue[] = [];
  const runtimeWeights: Record<string, Readonly<Record<string, number>>> = { ...table.runtimeWeights };
  const services = [...table.services];
  for (const [name, weights] of Object.entries(changes)) {
    if (weights === null) delete runtimeWeights[name];
    else runtimeWeights[name] = weights;
    // Weights of a service the config does not have (any more) are kept for a reload that brings it back.
    const position = table.hosts.byName.get(name);
    if (position === undefined) continue;
    const previous = table.services[position]!;
    const compiled = compileService(table.config, previous.index, previous.hosts === null ? null : [...previous.hosts], runtimeWeights[name], report, warnings);
    if (compiled !== null) services[position] = compiled;
  }
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, table: assemble(table.config, generation, services, table.hosts, runtimeWeights), warnings };
}

function assemble(config: Config, generation: number, services: CompiledService[], hosts: HostIndex, runtimeWeights: RuntimeWeights): RouteTable {
  const frozen = Object.freeze(services);
  return Object.freeze({
    generation,
    config,
    services: frozen,
    servicesByName: lookupServices(frozen, hosts.byName),
    hosts,
    runtimeWeights: Object.freeze(runtimeWeights),
  });
}
