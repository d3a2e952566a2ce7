import t from 'tap';
import { explainChoice, routeRequest } from '../../src/router/index.ts';
import type { GroupRoutes, RequestView, RouteTable } from '../../src/table/index.ts';
import { mulberry32 } from '../helpers/prng.ts';
import { tableFromYaml } from '../helpers/tables.ts';

/** A service under rules.test with one version per rule, so the version a request gets names the rule that took it. */
function rulesTable(rules: readonly string[]): RouteTable {
  const versions = rules.map((_, i) => `{ name: v${i}, upstream: "http://127.0.0.1:${3001 + i}" }`).join(', ');
  const lines = rules.map((match, i) => `      - { matches: [${match}], to: v${i} }`);
  return tableFromYaml(`services:
  - name: svc
    match: { hosts: [rules.test] }
    versions: [${versions}]
    split: { weights: { v0: 1 } }
    rules:
${lines.join('\n')}
`);
}

const routesOf = (table: RouteTable): GroupRoutes => table.hosts.exactHosts.get('rules.test')!.routes!;
const get = (url: string, headers: Record<string, string> = {}, method = 'GET'): RequestView => ({ url, method, headers: { host: 'rules.test', ...headers } });

t.test('a run keyed on a header that most of its entries test for an Exact value', async (t) => {
  const table = rulesTable([
    '{ headers: [{ name: x-region, value: eu }] }',
    '{ headers: [{ name: x-region, value: us }, { name: x-team, value: qa }] }',
    '{ headers: [{ name: x-team, value: qa }] }',
    '{ headers: [{ name: x-region, value: eu }, { name: x-tier, value: gold }] }',
    '{ headers: [{ name: x-region, value: ap }] }',
    '{ path: { value: / } }',
  ]);
  // In precedence order (two header matches, then one, then none): rules 1 3 0 2 4 5.
  const run = routesOf(table).run!;
  t.equal(run.keyed?.reader.name, 'x-region');
  t.same([...run.keyed!.byValue], [['us', [0]], ['eu', [1, 2]], ['ap', [4]]]);
  t.same(run.keyed!.rest, [3, 5]);
  t.same(
    run.conditions.map((c) => c.map((m) => m.description)),
    [['header x-team = "qa"'], ['header x-tier = "gold"'], [], ['header x-team = "qa"'], [], []],
    'the keyed condition is dropped from the entries the index picks',
  );
  // Precedence (more header matches first) and config order, through the merge.
  const versionOf = (headers: Record<string, string>) => routeRequest(table, get('/x', headers), () => 0)?.name ?? null;
  t.equal(versionOf({ 'x-region': 'eu', 'x-tier': 'gold' }), 'v3', 'two header matches outrank one');
  t.equal(versionOf({ 'x-region': 'eu' }), 'v0');
  t.equal(versionOf({ 'x-region': 'us', 'x-team': 'qa' }), 'v1');
  t.equal(versionOf({ 'x-region': 'us' }), 'v5', 'a keyed entry that fails its other conditions falls through to the rest');
  t.equal(versionOf({ 'x-team': 'qa' }), 'v2', 'no such header: only the rest');
  t.equal(versionOf({ 'x-region': 'mars' }), 'v5');
  const explained = explainChoice(table.services[0]!, get('/x', { 'x-region': 'eu', 'x-tier': 'gold' }));
  t.equal(explained.version, 'v3', 'explain names the same rule');
  t.same(explained.outranked?.map((o) => o.rule), [0, 5]);
});

t.test('a run of regex paths indexed by a character of their literal suffixes', async (t) => {
  const table = rulesTable(['/users', '/orders', '/items', '/carts', '/[a-z]+'].map((s) => `{ path: { type: RegularExpression, value: "/api/v[0-9]+${s}" } }`));
  const run = routesOf(table).run!;
  t.ok(run.bySuffix !== null);
  // users, orders, items, carts: the 4th character from the end tells them apart (s, d, t, a).
  t.equal(run.bySuffix!.offset, 4);
  t.same(run.bySuffix!.rest, [4], 'a regex without a literal suffix is always tried');
  for (const [url, version] of [
    ['/api/v2/users', 'v0'],
    ['/api/v2/orders?x=1', 'v1'],
    ['/api/v10/items#f', 'v2'],
    ['/api/v1/carts', 'v3'],
    ['/api/v1/other', 'v4'],
    ['/api/vx/users', null],
    ['/s', null],
    ['/', null],
  ] as const) {
    t.equal(routeRequest(table, get(url), () => 0)?.name ?? null, version, url);
  }
});

// Random rule sets and requests: the router (indexes, merges, proved paths) must pick
// the rule that a plain walk of the entries in precedence order picks, every time.
const PATHS = [
  '{ value: / }',
  '{ value: /a }',
  '{ value: /a/b }',
  '{ value: /a/c }',
  '{ value: /b/b }',
  '{ value: /ab }',
  '{ type: Exact, value: /a }',
  '{ type: Exact, value: /a/b }',
  '{ type: RegularExpression, value: "/a/[0-9]+/x" }',
  '{ type: RegularExpression, value: "/a/[0-9]+/y" }',
  '{ type: RegularExpression, value: "/[a-z]+/b" }',
  '{ type: RegularExpression, value: "/a/.*" }',
  '{ type: RegularExpression, value: "(/a)+/b" }',
  '{ type: RegularExpression, value: "/a/1/x|/b" }',
];
const URLS = ['/', '/a', '/a?q', '/a/b', '/a/b?x=1', '/a/1/x', '/a/22/y', '/b', '/b/b', '/a/1/x#y', '/c/b', '/a/a/b', '/ab', '/a/c/d', '/b/b#f', '/abc', '/b/c', '/ab?q'];

t.test('differential: indexed runs pick what a plain walk picks', async (t) => {
  const random = mulberry32(0x1de5);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  let checked = 0;
  let matched = 0;
  const seen = { keyed: 0, bySuffix: 0, indexed: 0 };
  for (let round = 0; round < 150; round++) {
    const count = 3 + Math.floor(random() * 18);
    const rules = Array.from({ length: count }, () => {
      const parts: string[] = [];
      if (random() < 0.8) parts.push(`path: ${pick(PATHS)}`);
      if (random() < 0.3) parts.push(`method: ${pick(['GET', 'POST'])}`);
      const headers: string[] = [];
      if (random() < 0.7) headers.push(`{ name: x-region, value: ${pick(['r1', 'r2', 'r3'])} }`);
      if (random() < 0.3) headers.push(`{ name: x-team, value: qa }`);
      if (random() < 0.2) headers.push(`{ name: x-tier, type: RegularExpression, value: "gold|silver" }`);
      if (headers.length > 0) parts.push(`headers: [${headers.join(', ')}]`);
      return `{ ${parts.join(', ')} }`;
    });
    const table = rulesTable(rules);
    const service = table.services[0]!;
    const routes = routesOf(table);
    const runs = routes.index === null ? [routes.run!] : [...routes.index.exact.values(), routes.index.regex, ...routes.index.prefixes.values()];
    if (routes.index !== null) seen.indexed++;
    if (runs.some((run) => run.keyed !== null)) seen.keyed++;
    if (runs.some((run) => run.bySuffix !== null)) seen.bySuffix++;
    for (let i = 0; i < 40; i++) {
      const headers: Record<string, string> = {};
      if (random() < 0.8) headers['x-region'] = pick(['r1', 'r2', 'r3', 'r4']);
      if (random() < 0.5) headers['x-team'] = pick(['qa', 'dev']);
      if (random() < 0.5) headers['x-tier'] = pick(['gold', 'bronze']);
      const req = get(pick(URLS), headers, pick(['GET', 'POST']));
      const routed = routeRequest(table, req, () => 0)?.name ?? null;
      const explained = explainChoice(service, req);
      const plain = explained.by === 'none' ? null : explained.version;
      if (routed !== plain) {
        t.fail(`rules ${JSON.stringify(rules)}, request ${JSON.stringify(req)}: routed to ${routed}, a plain walk says ${plain}`);
        return;
      }
      checked++;
      if (routed !== null) matched++;
    }
  }
  t.ok(matched > checked / 4 && matched < checked, `${matched} of ${checked} requests matched a rule`);
  t.ok(seen.keyed > 20 && seen.bySuffix > 5 && seen.indexed > 20, `rule sets with each kind of index: ${JSON.stringify(seen)}`);
});
