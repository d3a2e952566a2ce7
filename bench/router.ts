// Microbenchmark of the hot path alone: routeRequest on compiled tables of
// 1, 100 and 1000 services, with a plain Map lookup on the same requests as
// the floor (what any router must at least pay to find a host).
//
//   table of N services: 80% by host (svc-I.bench.internal, pathPrefix /),
//                        20% by prefix under api.bench.internal (/p0000, /p0001, ...)
//   scenarios:  weighted  host match, rule misses, no sticky key -> random draw
//               sticky    host match, rule misses, x-user-id hashed to a bucket
//               rule      host match, x-canary: always -> rule wins
//               prefix    api host, middle of the prefix list, sticky
//   then the `rules:` cases of router-rules.ts (3 headers and a method per
//   rule, regex paths, 200 rules under one host) on their own table, each
//   also as a multiple of the 1-service `rule` case of the same run.
//
//   warm up every case; for rep in 1..R: for case in every case: time it
//
// `node bench/router.ts [--quick] [--json]`; run.ts runs it as a child.

import { parseArgs } from 'node:util';
import { parseConfigText } from '../src/config/index.ts';
import { routeRequest } from '../src/router/index.ts';
import { compileTable, type RequestView, type RouteTable } from '../src/table/index.ts';
import { formatRouterTable, median, type RouterRow } from './lib/table.ts';
import { buildRuleRequests, buildRulesTable, RULE_SCENARIOS } from './router-rules.ts';

/** Table sizes measured. */
export const ROUTER_SIZES = [1, 100, 1000];

const REQUEST_RING = 1024;

/** The YAML of an N-service table shaped like the load bench's config. */
export function buildRouterConfig(services: number): string {
  const byPrefix = Math.floor(services / 5);
  const lines: string[] = ['listen: 127.0.0.1:0', 'log: { level: silent }', 'services:'];
  for (let i = 0; i < services; i++) {
    const prefixed = i >= services - byPrefix;
    const match = prefixed ? `{ hosts: [api.bench.internal], pathPrefix: /p${String(i).padStart(4, '0')} }` : `{ hosts: [svc-${i}.bench.internal] }`;
    lines.push(
      `  - name: svc-${i}`,
      `    match: ${match}`,
      '    versions: [{ name: v1, upstream: "http://127.0.0.1:3001" }, { name: v2, upstream: "http://127.0.0.1:3002" }]',
      '    routes: [{ match: { header: { name: x-canary, value: always } }, to: v2 }]',
      '    split: { weights: { v1: 90, v2: 10 }, sticky: { header: x-user-id } }',
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Compiles the N-service table the way veer does at start. */
export function buildRouterTable(services: number): RouteTable {
  const loaded = parseConfigText(buildRouterConfig(services), {});
  if (!loaded.ok) throw new Error(`bench config invalid: ${JSON.stringify(loaded.issues[0])}`);
  const compiled = compileTable(loaded.config);
  if (!compiled.ok) throw new Error(`bench config does not compile: ${JSON.stringify(compiled.issues[0])}`);
  return compiled.table;
}

/** The requests of one scenario: a ring of views differing in their user id. */
export function buildRequests(services: number, scenario: string): RequestView[] {
  const hostService = Math.floor((services - Math.floor(services / 5)) / 2);
  const prefixed = Math.floor(services / 5);
  const prefixService = services - prefixed + Math.floor(prefixed / 2);
  return Array.from({ length: REQUEST_RING }, (_, i) => {
    const headers: Record<string, string> = { host: `svc-${hostService}.bench.internal`, accept: '*/*' };
    let url = '/orders/42';
    if (scenario !== 'weighted') headers['x-user-id'] = `user-${i * 7919}`;
    if (scenario === 'rule') headers['x-canary'] = 'always';
    if (scenario === 'prefix') {
      headers.host = 'api.bench.internal';
      url = `/p${String(prefixed > 0 ? prefixService : 0).padStart(4, '0')}/items`;
    }
    return { headers, url };
  });
}

/** Scenarios measured for each size (prefix only where the table has prefix services). */
export function scenariosFor(services: number): string[] {
  return services >= 5 ? ['map-floor', 'weighted', 'sticky', 'rule', 'prefix'] : ['map-floor', 'weighted', 'sticky', 'rule'];
}

let sink = 0;

function timeRoute(table: RouteTable, requests: RequestView[], iterations: number): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const v = routeRequest(table, requests[i & (REQUEST_RING - 1)]!);
    if (v !== null) sink += v.index;
  }
  return Number(process.hrtime.bigint() - start) / iterations;
}

function timeMap(map: Map<string, number>, requests: RequestView[], iterations: number): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const v = map.get(requests[i & (REQUEST_RING - 1)]!.headers.host!);
    if (v !== undefined) sink += v;
  }
  return Number(process.hrtime.bigint() - start) / iterations;
}

/** One timed case: a table and the requests of one scenario. */
interface RouterCase {
  readonly key: string;
  readonly services: number;
  readonly scenario: string;
  run(iterations: number): number;
}

/**
 * Measures every size and scenario; ns/decision is the median over `reps`
 * timed loops. Every case is warmed up first, then the repetitions are
 * interleaved (each rep times every case once), so every case, the `rule`
 * case the rules rows are read against included, is timed in the same
 * state of the JIT: call sites that have seen every table shape, as in a
 * veer whose config mixes them. Timing each case only right after its own
 * warm-up favoured the cases measured first, on still monomorphic code.
 */
export function measureRouter(options: { reps: number; iterations: number; sizes?: readonly number[]; rules?: boolean }): { rows: RouterRow[]; samples: Record<string, number[]> } {
  const cases: RouterCase[] = [];
  for (const size of options.sizes ?? ROUTER_SIZES) {
    const table = buildRouterTable(size);
    const hosts = new Map(table.services.map((s, i) => [s.hosts?.[0] ?? '', i]));
    for (const scenario of scenariosFor(size)) {
      const requests = buildRequests(size, scenario);
      const run = (n: number) => (scenario === 'map-floor' ? timeMap(hosts, requests, n) : timeRoute(table, requests, n));
      cases.push({ key: `${size}/${scenario}`, services: size, scenario, run });
    }
  }
  if (options.rules !== false) {
    const table = buildRulesTable();
    for (const scenario of RULE_SCENARIOS) {
      const requests = buildRuleRequests(scenario, REQUEST_RING);
      if (routeRequest(table, requests[0]!) === null) throw new Error(`rules bench: "${scenario}" routes nowhere`);
      cases.push({ key: `rules/${scenario}`, services: table.services.length, scenario, run: (n) => timeRoute(table, requests, n) });
    }
  }
  for (const c of cases) c.run(Math.min(options.iterations, 200_000)); // warm up: let the JIT settle before timing
  const samples: Record<string, number[]> = Object.fromEntries(cases.map((c) => [c.key, [] as number[]]));
  for (let rep = 0; rep < options.reps; rep++) for (const c of cases) samples[c.key]!.push(c.run(options.iterations));
  const rows = cases.map((c): RouterRow => {
    const mid = median(samples[c.key]!);
    return { services: c.services, scenario: c.scenario, nsPerDecision: mid, decisionsPerSecond: 1e9 / mid, reps: options.reps };
  });
  if (sink === 0.5) console.log(sink); // keeps the results observable to the optimiser
  return { rows, samples };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } } });
  const result = measureRouter(values.quick ? { reps: 3, iterations: 200_000 } : { reps: 9, iterations: 2_000_000 });
  if (values.json) process.stdout.write(`${JSON.stringify({ node: process.version, ...result })}\n`);
  else process.stdout.write(`routeRequest, median ns per decision (node ${process.version})\n\n${formatRouterTable(result.rows)}\n`);
}
