// Host groups the router walks through an index (table/host-index.ts):
// rules keyed mostly by one header's Exact value, and paths that end in
// known literal text (Exact, regexes with a literal end). Whatever the index
// skips, the router must pick exactly what the plain walk over the group's
// entries in precedence order picks.

import t, { type Test } from 'tap';
import { routeRequest } from '../../src/router/index.ts';
import { entryMatches } from '../../src/router/route.ts';
import { compareEntries } from '../../src/table/compile-rules.ts';
import { pathEndOf, type RequestView, type RouteEntry, type RouteTable } from '../../src/table/index.ts';
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

/** Every entry of the services of `host`, in Gateway API precedence (config order breaking ties), each with its service. */
function entriesOf(table: RouteTable, host: string): { entry: RouteEntry; service: number }[] {
  const all = table.services.flatMap((service, position) => (service.hosts?.includes(host) ? service.entries.map((entry) => ({ entry, service: position })) : []));
  return all.sort((a, b) => compareEntries(a.entry, b.entry));
}

/** What the plain walk over those entries picks: "service/version", or null. */
function plainWalk(table: RouteTable, entries: readonly { entry: RouteEntry; service: number }[], req: RequestView): string | null {
  const url = req.url!;
  const found = entries.find(({ entry }) => entryMatches(entry, req, url, pathEndOf(url)));
  if (found === undefined) return null;
  const service = table.services[found.service]!;
  const version = found.entry.action === -1 ? service.split.versions[0]! : service.actions[found.entry.action]!.to!;
  return `${service.name}/${version.name}`;
}

/**
 * 5000 requests from `draw` (with a pick from its own seeded generator): the router picks what
 * the plain walk picks for each, and the requests reach at least `outcomes` different answers.
 */
function agreesWithPlainWalk(t: Test, yaml: string, host: string, seed: number, outcomes: number, draw: (pick: <T>(xs: readonly T[]) => T, random: () => number) => RequestView): void {
  const table = tableFromYaml(yaml);
  const group = entriesOf(table, host);
  const random = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const seen = new Set<string | null>();
  let mismatches = 0;
  for (let n = 0; n < 5000; n++) {
    const req = draw(pick, random);
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
  t.ok(seen.size >= outcomes, `the requests reached ${seen.size} outcomes: ${[...seen].join(', ')}`);
}

t.test('property: header-keyed rules: the router picks what the plain walk picks', async (t) => {
  agreesWithPlainWalk(t, YAML, 'shop.test', 0xbeef, 9, (pick, random) => {
    const headers: Record<string, string | string[]> = { host: 'shop.test' };
    const region = pick([undefined, 'eu', 'us', 'ap', 'EU', 'sa', '']);
    if (region !== undefined) headers['x-region'] = region;
    if (random() < 0.4) headers['x-tier'] = pick(['gold', 'silver']);
    if (random() < 0.4) headers['x-debug'] = pick(['1', '0']);
    return { url: pick(['/orders', '/orders/7', '/orders/special', '/orders/special?x=1', '/', '/other', '/orders?q']), method: pick(['GET', 'POST']), headers };
  });
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


t.test('property: literal-ending paths: the router picks what the plain walk picks', async (t) => {
  agreesWithPlainWalk(t, PATHS_YAML, 'items.test', 0xfeed, 8, (pick) => {
    const path = `/items/${pick(['7', '42', 'special', 'abc', 'new', 'old', ''])}${pick(['', '/reviews', '/photos', '/edit', '/price', '/x', '/'])}${pick(['', '?q=1', '#f', '?a=/reviews'])}`;
    return { url: pick([path, path, path, '/', '/other/reviews', '/items']), method: pick(['GET', 'POST']), headers: { host: 'items.test' } };
  });
});
