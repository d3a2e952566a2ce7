import { join } from 'node:path';
import t from 'tap';
import { findService, pickVersion, routeRequest, type RandomSource } from '../../src/router/index.ts';
import { BUCKETS, hasPathPrefix, normalizePathPrefix, type RouteTable } from '../../src/table/index.ts';
import { FIXTURES, readFixture } from '../helpers/fixtures.ts';
import { mulberry32 } from '../helpers/prng.ts';
import { request, splitYaml, tableFromYaml } from '../helpers/tables.ts';

/** A random source that must not be consulted. */
const NO_RANDOM: RandomSource = () => {
  throw new Error('random() was called');
};
/** A random source that always returns `x`. */
const always = (x: number): RandomSource => () => x;

const serviceFor = (table: RouteTable, host: string | undefined, url: string) => findService(table, host, url)?.name ?? null;

t.test('host matching: exact beats wildcard beats any host; longest prefix first', async (t) => {
  const table = tableFromYaml(readFixture(join(FIXTURES, 'valid', 'hosts.yaml')).text);
  const cases: [string | undefined, string, string | null][] = [
    ['shop.example.com', '/', 'shop-root'],
    ['shop.example.com', '/cart', 'shop-root'],
    ['shop.example.com', '/api', 'shop-api'],
    ['shop.example.com', '/api/items?x=1', 'shop-api'],
    ['shop.example.com', '/apiary', 'shop-root'], // pathPrefix matches whole segments, as Kubernetes' Prefix and Gateway API's PathPrefix
    ['shop.example.com', '/api?x=1', 'shop-api'],
    ['shop.example.com', '/api/', 'shop-api'],
    ['shop.example.com:8080', '/api', 'shop-api'],
    ['SHOP.Example.COM', '/api', 'shop-api'],
    ['shop.example.com.', '/api', 'shop-api'],
    ['Shop.Example.Com.:443', '/', 'shop-root'],
    ['x.example.com', '/', 'tenants'],
    ['a.b.example.com', '/', 'tenants'],
    ['a.eu.example.com', '/', 'eu-tenants'], // longest wildcard suffix first
    ['A.EU.example.com:80', '/static/x', 'eu-tenants'],
    ['eu.example.com', '/', 'tenants'], // *.eu.example.com needs a label before .eu
    ['example.com', '/', 'fallback'], // *.example.com does not match example.com itself
    ['badexample.com', '/', 'fallback'],
    ['[::1]:8080', '/six/x', 'local6'],
    ['[::1]', '/six', 'local6'],
    ['[::1]:8080', '/seven', 'fallback'], // the exact group has no matching prefix
    ['other.org', '/static/app.js', 'fallback-static'],
    ['other.org', '/static', 'fallback-static'], // pathPrefix /static/ is /static, whole segments
    ['other.org', '/staticx', 'fallback'],
    [undefined, '/', 'fallback'],
    ['', '/static/x', 'fallback-static'],
  ];
  for (const [host, url, expected] of cases) t.equal(serviceFor(table, host, url), expected, `${host} ${url}`);
});

t.test('pathPrefix matches whole segments; a trailing slash is ignored', async (t) => {
  const table = tableFromYaml(`services:
  - { name: v2, match: { pathPrefix: /v2 }, versions: [{ name: v, upstream: "http://127.0.0.1:1" }] }
  - { name: docs, match: { pathPrefix: /docs/ }, versions: [{ name: v, upstream: "http://127.0.0.1:2" }] }
  - { name: root, versions: [{ name: v, upstream: "http://127.0.0.1:3" }] }
`);
  const cases: [string, string][] = [
    ['/v2', 'v2'],
    ['/v2/', 'v2'],
    ['/v2/users', 'v2'],
    ['/v2?x=1', 'v2'],
    ['/v2#frag', 'v2'],
    ['/v2example', 'root'],
    ['/v23', 'root'],
    ['/docs', 'docs'],
    ['/docs/', 'docs'],
    ['/docs/a', 'docs'],
    ['/docsx', 'root'],
    ['/', 'root'],
  ];
  for (const [url, expected] of cases) t.equal(serviceFor(table, undefined, url), expected, url);
  t.equal(table.servicesByName.get('docs')!.pathPrefix, '/docs', 'the trailing slash is not part of the prefix');
});

t.test('a less specific host group serves what the exact group does not', async (t) => {
  const table = tableFromYaml(`services:
  - { name: exact-api, match: { hosts: [a.example.com], pathPrefix: /api }, versions: [{ name: v, upstream: "http://127.0.0.1:1" }] }
  - { name: wild-web, match: { hosts: ["*.example.com"], pathPrefix: /web }, versions: [{ name: v, upstream: "http://127.0.0.1:2" }] }
  - { name: any-root, versions: [{ name: v, upstream: "http://127.0.0.1:3" }] }
`);
  t.equal(serviceFor(table, 'a.example.com', '/api/x'), 'exact-api');
  t.equal(serviceFor(table, 'a.example.com', '/web/x'), 'wild-web');
  t.equal(serviceFor(table, 'a.example.com', '/other'), 'any-root');
  t.equal(serviceFor(table, 'b.example.com', '/api/x'), 'any-root');

  const strict = tableFromYaml(`services:
  - { name: only, match: { hosts: [a.example.com], pathPrefix: /api }, versions: [{ name: v, upstream: "http://127.0.0.1:1" }] }
`);
  t.equal(serviceFor(strict, 'a.example.com', '/web'), null, 'no service: null (404)');
  t.equal(serviceFor(strict, 'b.example.com', '/api'), null);
  t.equal(serviceFor(strict, undefined, '/api'), null, 'no Host header and no any-host service');
  t.equal(routeRequest(strict, request('/api', { host: 'b.example.com' }), NO_RANDOM), null);
});

const RULES = `${splitYaml({ stable: 100, canary: 0, other: 0 })}    routes:
      - match: { header: { name: x-canary, value: always } }
        to: canary
      - match: { header: { name: x-canary, value: always } }
        to: other
      - match: { header: { name: x-team, value: qa }, cookie: { name: beta, value: "1" }, query: { name: preview, present: true } }
        to: other
      - match: { header: { name: x-version, regex: "^v2(\\\\.[0-9]+)?$" } }
        to: canary
      - match: { cookie: { name: opt-out, present: true } }
        to: stable
      - match: { query: { name: force, value: "other one" } }
        to: other
`;

t.test('rules: config order, first match wins; all conditions of a rule must match', async (t) => {
  const table = tableFromYaml(RULES);
  const pick = (url: string, headers: Record<string, string> = {}) => routeRequest(table, request(url, headers), NO_RANDOM)?.name;
  // A matching rule decides before the split: these never draw (NO_RANDOM would throw).
  t.equal(pick('/', { 'x-canary': 'always' }), 'canary', 'the first of two matching rules');
  t.equal(pick('/?preview', { 'x-team': 'qa', cookie: 'a=b; beta=1' }), 'other', 'header AND cookie AND query');
  t.equal(pick('/?preview=yes&x=1#f', { 'x-team': 'qa', cookie: 'beta=1', 'x-canary': 'always' }), 'canary', 'an earlier rule still wins');
  t.equal(pick('/', { 'x-version': 'v2' }), 'canary', 'regex');
  t.equal(pick('/', { 'x-version': 'v2.13' }), 'canary');
  t.equal(pick('/?force=other+one', {}), 'other', 'decoded query value');
  t.equal(pick('/?force=other%20one', {}), 'other');
  t.equal(pick('/', { cookie: 'opt-out' }), 'stable', 'present: true on a bare cookie');

  const split = (url: string, headers: Record<string, string> = {}) => routeRequest(table, request(url, headers), always(0.5))?.name;
  t.equal(split('/?preview', { 'x-team': 'qa' }), 'stable', 'cookie missing: the AND rule does not match');
  t.equal(split('/', { 'x-team': 'qa', cookie: 'beta=1' }), 'stable', 'query missing');
  t.equal(split('/?preview', { 'x-team': 'dev', cookie: 'beta=1' }), 'stable', 'header differs');
  t.equal(split('/', { 'x-version': 'v20' }), 'stable', 'regex does not match');
  t.equal(split('/', { 'x-canary': 'ALWAYS' }), 'stable', 'values are case-sensitive');
});

t.test('present: false matches when the value is absent', async (t) => {
  const table = tableFromYaml(`${splitYaml({ a: 100, b: 0 })}    routes:
      - match: { header: { name: x-debug, present: false } }
        to: b
`);
  t.equal(routeRequest(table, request('/'), NO_RANDOM)?.name, 'b');
  t.equal(routeRequest(table, request('/', { 'x-debug': '1' }), always(0))?.name, 'a');
});

t.test('weight 0 gets no split traffic but a rule reaches it', async (t) => {
  const table = tableFromYaml(`${splitYaml({ a: 50, b: 0, c: 50 })}    routes:
      - match: { cookie: { name: pin, value: b } }
        to: b
`);
  const service = table.services[0]!;
  const picks: Record<string, number> = { a: 0, b: 0, c: 0 };
  // One draw at the middle of every bucket: each version's exact bucket count.
  for (let b = 0; b < BUCKETS; b++) picks[pickVersion(service, request('/'), always((b + 0.5) / BUCKETS)).name]!++;
  t.same(picks, { a: 5000, b: 0, c: 5000 });
  t.equal(pickVersion(service, request('/', { cookie: 'pin=b' }), NO_RANDOM).name, 'b');
});

t.test('weighted random: exact picks at the range boundaries', async (t) => {
  const service = tableFromYaml(splitYaml({ v1: 90, v2: 10 })).services[0]!;
  const pick = (r: number) => pickVersion(service, request('/'), always(r)).name;
  t.equal(pick(0), 'v1', 'bucket 0');
  t.equal(pick(0.9 - 1e-12), 'v1', 'bucket 8999');
  t.equal(pick(0.9), 'v2', 'bucket 9000');
  t.equal(pick(0.99995), 'v2', 'bucket 9999');
  t.equal(pick(1 - Number.EPSILON), 'v2', 'the largest random value');

  const fine = tableFromYaml(splitYaml({ a: 1, b: 9999 })).services[0]!;
  const picks: Record<string, number> = { a: 0, b: 0 };
  for (let b = 0; b < BUCKETS; b++) picks[pickVersion(fine, request('/'), always((b + 0.5) / BUCKETS)).name]!++;
  t.same(picks, { a: 1, b: 9999 }, 'weight 1 of 10000 owns exactly one bucket');
});

t.test('weighted random: 100k seeded draws land within 0.5 pp of each weight', async (t) => {
  const weights = { a: 70, b: 20, c: 7.5, d: 2.5, e: 0 };
  const service = tableFromYaml(splitYaml(weights)).services[0]!;
  const random = mulberry32(20240601);
  const counts: Record<string, number> = { a: 0, b: 0, c: 0, d: 0, e: 0 };
  const n = 100_000;
  const req = request('/');
  for (let i = 0; i < n; i++) counts[pickVersion(service, req, random).name]!++;
  for (const [name, w] of Object.entries(weights)) {
    const share = (counts[name]! / n) * 100;
    t.ok(Math.abs(share - w) < 0.5, `${name}: ${share.toFixed(2)}% for weight ${w}%`);
  }
  t.equal(counts.e, 0, 'weight 0 never drawn');
});

t.test('random is consulted only when needed', async (t) => {
  const sticky = tableFromYaml(splitYaml({ a: 50, b: 50 }, 'sticky: { header: x-user-id }'));
  t.ok(routeRequest(sticky, request('/', { 'x-user-id': 'u1' }), NO_RANDOM), 'a sticky key decides alone');
  let calls = 0;
  const counting: RandomSource = () => {
    calls++;
    return 0.25;
  };
  t.equal(routeRequest(sticky, request('/'), counting)?.name, 'a', 'no key: weighted random');
  t.equal(routeRequest(sticky, request('/', { 'x-user-id': '' }), counting)?.name, 'a', 'an empty key counts as none');
  t.equal(calls, 2, 'one draw per request');
  const single = tableFromYaml(splitYaml({ only: 1 }));
  t.equal(routeRequest(single, request('/'), NO_RANDOM)?.name, 'only', 'a single version needs no draw');
});

t.test('routeRequest reads Host and url from the request', async (t) => {
  const table = tableFromYaml(`services:
  - { name: api, match: { hosts: [api.test], pathPrefix: /v1 }, versions: [{ name: x, upstream: "http://127.0.0.1:1" }] }
  - { name: web, versions: [{ name: y, upstream: "http://127.0.0.1:2" }] }
`);
  t.equal(routeRequest(table, request('/v1/users', { host: 'API.test:8443' }), NO_RANDOM)?.service.name, 'api');
  t.equal(routeRequest(table, request('/v2/users', { host: 'api.test' }), NO_RANDOM)?.service.name, 'web');
  t.equal(routeRequest(table, { headers: { host: 'api.test' } }, NO_RANDOM)?.service.name, 'web', 'no url reads as /');
});

t.test('many prefixes under one host: the prefix index finds the same service as a scan', async (t) => {
  const rand = mulberry32(7);
  const alphabet = 'ab/';
  const word = (n: number) => Array.from({ length: n }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
  // Distinct as compared: `/a/` is `/a`.
  const prefixes = [...new Set(['/', ...Array.from({ length: 60 }, () => normalizePathPrefix(`/${word(1 + Math.floor(rand() * 5))}`))])];
  const services = prefixes
    .map((p, i) => `  - { name: s${i}, match: { hosts: [api.test], pathPrefix: "${p}" }, versions: [{ name: v, upstream: "http://127.0.0.1:1" }] }`)
    .join('\n');
  const table = tableFromYaml(`services:\n${services}\n`);
  const group = table.hosts.exactHosts.get('api.test')!;
  t.ok(group.prefixIndex, 'a large group is indexed');
  const scan = (url: string) => {
    let best: string | null = null;
    let bestLength = -1;
    prefixes.forEach((p, i) => {
      if (hasPathPrefix(url, p) && p.length > bestLength) {
        best = `s${i}`;
        bestLength = p.length;
      }
    });
    return best;
  };
  for (let i = 0; i < 3000; i++) {
    const url = `/${word(Math.floor(rand() * 8))}${rand() < 0.3 ? '?q=/a' : ''}`;
    const got = serviceFor(table, 'api.test', url);
    if (got !== scan(url)) {
      t.fail(`${url}: index says ${got}, scan says ${scan(url)}`);
      return;
    }
  }
  t.pass('3000 random paths agree');
  const small = tableFromYaml(`services:\n${services.split('\n').slice(0, 3).join('\n')}\n`);
  t.equal(small.hosts.exactHosts.get('api.test')!.prefixIndex, undefined, 'a small group is scanned');
});
