// A host group whose rules are keyed mostly by one header's Exact value is
// walked through its header index (table/host-index.ts): the request tries
// only the entries its value can satisfy and those that test no such value.
// One whose paths mostly end in known characters (Exact, regexes with a
// literal end) is walked through its path-end index. Either must pick
// exactly what the plain walk in precedence order picks.

import t from 'tap';
import { routeRequest } from '../../src/router/index.ts';
import { firstEntryIndex } from '../../src/router/route.ts';
import { pathEndOf, type HostGroup, type RequestView, type RouteTable } from '../../src/table/index.ts';
import { mulberry32 } from '../helpers/prng.ts';
import { tableFromYaml } from '../helpers/tables.ts';

const VERSIONS = Array.from({ length: 10 }, (_, i) => `      - { name: r${i}, upstream: "http://127.0.0.1:${3001 + i}" }`).join('\n');

/** Rules keyed by x-region (several per value, some with more conditions), two without it, and a second service under the host. */
const YAML = `services:
  - name: regional
    match: { hosts: [shop.test] }
    versions:
${VERSIONS}
    rules:
      - matches: [{ path: { value: /orders }, headers: [{ name: x-region, value: eu }, { name: x-tier, value: gold }] }]
        to: r0
      - matches: [{ path: { value: /orders }, method: POST, headers: [{ name: x-region, value: eu }] }]
        to: r1
      - matches: [{ path: { value: /orders }, headers: [{ name: x-region, value: us }] }]
        to: r2
      - matches: [{ path: { type: Exact, value: /orders/special }, headers: [{ name: x-region, value: ap }] }]
        to: r3
      - matches: [{ headers: [{ name: x-region, value: eu }] }]
        to: r4
      - matches: [{ headers: [{ name: x-region, value: us }, { name: x-debug, type: Present }] }]
        to: r5
      - matches: [{ path: { value: /orders }, headers: [{ name: x-debug, value: "1" }] }]
        to: r6
      - matches: [{ path: { type: RegularExpression, value: "/orders/[0-9]+" } }]
        to: r7
  - name: fallback
    match: { hosts: [shop.test] }
    versions: [{ name: f, upstream: "http://127.0.0.1:3100" }]
`;

/** What the plain walk over the group's entries picks: "service/version", or null. */
function plainWalk(table: RouteTable, group: HostGroup, req: RequestView): string | null {
  const url = req.url!;
  const i = firstEntryIndex(group.routeEntries!, req, url, pathEndOf(url));
  if (i === -1) return null;
  const entry = group.routeEntries![i]!;
  const service = table.services[entry.service]!;
  const version = entry.action === -1 ? service.split.versions[0]! : service.actions[entry.action]!.to!;
  return `${service.name}/${version.name}`;
}

t.test('the group is indexed by x-region', async (t) => {
  const table = tableFromYaml(YAML);
  const group = table.hosts.exactHosts.get('shop.test')!;
  t.equal(group.headerIndex?.reader.name, 'x-region');
  t.same([...group.headerIndex!.byValue.keys()].sort(), ['ap', 'eu', 'us']);
  t.equal(group.headerIndex!.others.length, 3, 'the x-debug rule, the regex rule and the other service');
  t.equal(group.entryIndex, undefined, 'not also by path');
});

t.test('property: the index picks what the plain walk in precedence order picks', async (t) => {
  const table = tableFromYaml(YAML);
  const group = table.hosts.exactHosts.get('shop.test')!;
  const random = mulberry32(0xbeef);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const seen = new Set<string | null>();
  let mismatches = 0;
  for (let n = 0; n < 5000; n++) {
    const headers: Record<string, string | string[]> = { host: 'shop.test' };
    const region = pick([undefined, 'eu', 'us', 'ap', 'EU', 'sa', '']);
    if (region !== undefined) headers['x-region'] = region;
    if (random() < 0.4) headers['x-tier'] = pick(['gold', 'silver']);
    if (random() < 0.4) headers['x-debug'] = pick(['1', '0']);
    const req: RequestView = { url: pick(['/orders', '/orders/7', '/orders/special', '/orders/special?x=1', '/', '/other', '/orders?q']), method: pick(['GET', 'POST']), headers };
    const expected = plainWalk(table, group, req);
    const version = routeRequest(table, req, () => 0);
    const got = version === null ? null : `${version.service.name}/${version.name}`;
    seen.add(got);
    if (got !== expected) {
      mismatches++;
      if (mismatches <= 5) t.fail(`${JSON.stringify(req)}: index ${got}, plain walk ${expected}`);
    }
  }
  t.equal(mismatches, 0, '5000 requests');
  t.ok(seen.size >= 9, `the requests reached ${seen.size} outcomes: ${[...seen].join(', ')}`);
});

const PATHS_YAML = `services:
  - name: items
    match: { hosts: [items.test] }
    versions:
${VERSIONS}
    rules:
      - matches: [{ path: { type: RegularExpression, value: "/items/[0-9]+/reviews" } }]
        to: r0
      - matches: [{ path: { type: RegularExpression, value: "/items/[0-9]+/photos" } }]
        to: r1
      - matches: [{ path: { type: RegularExpression, value: "/items/[a-z]+/edit" }, method: POST }]
        to: r2
      - matches: [{ path: { type: Exact, value: /items/special/reviews } }]
        to: r3
      - matches: [{ path: { type: RegularExpression, value: "/items/[0-9]+/price" } }]
        to: r4
      - matches: [{ path: { type: RegularExpression, value: "/items/(new|old)" } }]
        to: r5
      - matches: [{ path: { type: RegularExpression, value: "/items/.*" } }]
        to: r6
      - matches: [{ path: { value: /items } }]
        to: r7
`;

t.test('Exact and literal-ending regex paths: indexed by the last character of the path', async (t) => {
  const table = tableFromYaml(PATHS_YAML);
  const group = table.hosts.exactHosts.get('items.test')!;
  t.equal(group.headerIndex, undefined);
  t.same([...group.pathEndIndex!.byLastChar.keys()].map((c) => String.fromCharCode(c)).sort(), ['e', 's', 't'], 'reviews, photos, edit, price');
  t.equal(group.pathEndIndex!.others.length, 3, '(new|old), .* and the PathPrefix may end in anything');
});

t.test('property: the path-end index picks what the plain walk picks', async (t) => {
  const table = tableFromYaml(PATHS_YAML);
  const group = table.hosts.exactHosts.get('items.test')!;
  const random = mulberry32(0xfeed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const seen = new Set<string | null>();
  let mismatches = 0;
  for (let n = 0; n < 5000; n++) {
    const path = `/items/${pick(['7', '42', 'special', 'abc', 'new', 'old', ''])}${pick(['', '/reviews', '/photos', '/edit', '/price', '/x', '/'])}${pick(['', '?q=1', '#f', '?a=/reviews'])}`;
    const req: RequestView = { url: pick([path, path, path, '/', '/other/reviews', '/items']), method: pick(['GET', 'POST']), headers: { host: 'items.test' } };
    const expected = plainWalk(table, group, req);
    const version = routeRequest(table, req, () => 0);
    const got = version === null ? null : `${version.service.name}/${version.name}`;
    seen.add(got);
    if (got !== expected) {
      mismatches++;
      if (mismatches <= 5) t.fail(`${JSON.stringify(req)}: index ${got}, plain walk ${expected}`);
    }
  }
  t.equal(mismatches, 0, '5000 requests');
  t.ok(seen.size >= 8, `the requests reached ${seen.size} outcomes: ${[...seen].join(', ')}`);
});
