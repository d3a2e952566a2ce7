// The router bench's `rules:` cases (Gateway API matchers), on one table
// next to the N-service tables of router.ts and timed in the same run, so
// each reads against today's `rule` case (the short `routes:` form):
//
//   headers   8 rules under headers.bench.internal, each a GET method and 3
//             header matches (2 Exact, 1 RegularExpression); the request
//             matches the last rule, so 7 are tried and fail first
//   regex     8 rules under regex.bench.internal with RegularExpression paths
//             (/items/[0-9]+/rN); the request matches the last one
//   200-rules 200 PathPrefix rules (/api/r000 ... /api/r199) under
//             many.bench.internal, sent to the service's sticky split; the
//             request takes the middle one (/api/r100/items), 101 tried

import { parseConfigText } from '../src/config/index.ts';
import { compileTable, type RequestView, type RouteTable } from '../src/table/index.ts';

/** The rules scenarios, in the order they are measured. */
export const RULE_SCENARIOS = ['rules: 3 headers + method', 'rules: regex paths', 'rules: 200 under one host'] as const;

const VERSIONS = '    versions: [{ name: v1, upstream: "http://127.0.0.1:3001" }, { name: v2, upstream: "http://127.0.0.1:3002" }]';
const SPLIT = '    split: { weights: { v1: 90, v2: 10 }, sticky: { header: x-user-id } }';

function service(name: string, rules: string[]): string[] {
  return [`  - name: ${name}`, `    match: { hosts: [${name}.bench.internal] }`, VERSIONS, SPLIT, '    rules:', ...rules];
}

/** The YAML of the rules table: the three services above. */
export function buildRulesConfig(): string {
  const headerRules: string[] = [];
  const regexRules: string[] = [];
  for (let i = 0; i < 8; i++) {
    headerRules.push(
      `      - matches: [{ path: { value: /orders }, method: GET, headers: [{ name: x-region, value: region-${i} }, { name: x-team, value: qa }, { name: x-tier, type: RegularExpression, value: "gold|silver" }] }]`,
      '        to: v2',
    );
    regexRules.push(`      - matches: [{ path: { type: RegularExpression, value: "/items/[0-9]+/r${i}" } }]`, '        to: v2');
  }
  const manyRules: string[] = [];
  for (let i = 0; i < 200; i++) manyRules.push(`      - matches: [{ path: { value: /api/r${String(i).padStart(3, '0')} } }]`);
  const lines = ['listen: 127.0.0.1:0', 'log: { level: silent }', 'services:', ...service('headers', headerRules), ...service('regex', regexRules), ...service('many', manyRules)];
  return `${lines.join('\n')}\n`;
}

/** Compiles the rules table as veer does at start. */
export function buildRulesTable(): RouteTable {
  const loaded = parseConfigText(buildRulesConfig(), {});
  if (!loaded.ok) throw new Error(`rules bench config invalid: ${JSON.stringify(loaded.issues[0])}`);
  const compiled = compileTable(loaded.config);
  if (!compiled.ok) throw new Error(`rules bench config does not compile: ${JSON.stringify(compiled.issues[0])}`);
  return compiled.table;
}

/** The requests of one rules scenario: `ring` views differing in their user id. */
export function buildRuleRequests(scenario: (typeof RULE_SCENARIOS)[number], ring: number): RequestView[] {
  return Array.from({ length: ring }, (_, i) => {
    const user = `user-${i * 7919}`;
    if (scenario === 'rules: 3 headers + method') {
      return { method: 'GET', url: '/orders/42', headers: { host: 'headers.bench.internal', 'x-region': 'region-7', 'x-team': 'qa', 'x-tier': 'gold', 'x-user-id': user } };
    }
    if (scenario === 'rules: regex paths') return { method: 'GET', url: '/items/42/r7', headers: { host: 'regex.bench.internal', 'x-user-id': user } };
    return { method: 'GET', url: '/api/r100/items', headers: { host: 'many.bench.internal', 'x-user-id': user } };
  });
}
