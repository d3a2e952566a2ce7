import t from 'tap';
import { compileTable, type CompileIssue } from '../../src/table/index.ts';
import { compileOrThrow, loadYaml, splitYaml, tableFromYaml } from '../helpers/tables.ts';

const TWO = splitYaml({ v1: 90, v2: 10 }, 'sticky: { header: x-user-id }');

function issuesOf(yaml: string): readonly CompileIssue[] {
  const result = compileTable(loadYaml(yaml));
  if (result.ok) throw new Error('expected the config to be refused');
  return result.issues;
}

const brief = (issues: readonly CompileIssue[]) => issues.map((i) => `${i.path.join('.')} ${i.code}`).sort();

t.test('a compiled service: versions, split ranges, sticky key, timeouts', async (t) => {
  const table = tableFromYaml(TWO);
  t.equal(table.services.length, 1);
  const s = table.servicesByName.get('svc')!;
  t.equal(s.name, 'svc');
  t.same(s.versions.map((v) => v.name), ['v1', 'v2']);
  t.equal(s.versionsByName.get('v2'), s.versions[1]);
  t.equal(s.versions[1]!.service, s, 'a version points back to its service');
  t.same(s.versions[0]!.upstream, { key: 'http://127.0.0.1:3001#2000', origins: ['http://127.0.0.1:3001'], connectTimeoutMs: 2000, outlier: null, dns: null, health: null, tls: null, protocol: 'http1' });
  t.same([...s.split.ends], [9000, 10000]);
  t.same(s.split.percents, [90, 10]);
  t.same(s.split.weights, { v1: 90, v2: 10 });
  t.equal(s.split.source, 'config');
  t.equal(s.split.seed, 'svc', 'the seed defaults to the service name');
  t.match(s.split.sticky, { kind: 'header', name: 'x-user-id' });
  t.same(s.timeouts, { connectMs: 2000, responseMs: 30000 });
  t.equal(s.exposeVersionHeader, true);
  t.equal(s.hosts, null);
  t.equal(s.pathPrefix, '/');
  t.equal(s.rollout, null);
  t.equal(table.generation, 0);
});

t.test('the table is frozen', async (t) => {
  const table = tableFromYaml(TWO);
  const s = table.services[0]!;
  for (const part of [table, table.services, s, s.versions, s.versions[0], s.rules, s.split, s.split.weights, s.split.percents, s.timeouts]) {
    t.ok(Object.isFrozen(part));
  }
});

t.test('weights: percents, fractions, zeros, and a service without a split', async (t) => {
  const s = tableFromYaml(splitYaml({ a: 1, b: 2, c: 0, d: 1 })).services[0]!;
  t.same([...s.split.ends], [2500, 7500, 7500, 10000]);
  t.same(s.split.percents, [25, 50, 0, 25]);
  t.same(tableFromYaml(splitYaml({ a: 1, b: 1, c: 1 })).services[0]!.split.percents, [33.3333, 33.3333, 33.3333]);

  const none = tableFromYaml(`services:
  - name: svc
    versions:
      - { name: v1, upstream: "http://127.0.0.1:3001" }
      - { name: v2, upstream: "http://127.0.0.1:3002" }
`).services[0]!;
  t.same(none.split.weights, { v1: 100, v2: 0 }, 'no split: everything on the first version');
  t.same([...none.split.ends], [10000, 10000]);
  t.equal(none.split.sticky, null);
});

t.test('sticky key kinds and seed', async (t) => {
  t.match(tableFromYaml(splitYaml({ a: 1, b: 1 }, 'sticky: { cookie: uid }')).services[0]!.split.sticky, { kind: 'cookie', name: 'uid' });
  t.match(tableFromYaml(splitYaml({ a: 1, b: 1 }, 'sticky: { query: u }')).services[0]!.split.sticky, { kind: 'query', name: 'u' });
  const seeded = tableFromYaml(splitYaml({ a: 1, b: 1 }, 'seed: cohort-2')).services[0]!.split;
  const unseeded = tableFromYaml(splitYaml({ a: 1, b: 1 })).services[0]!.split;
  t.equal(seeded.seed, 'cohort-2');
  t.not(seeded.seedState, unseeded.seedState);
});

t.test('rules compile in config order', async (t) => {
  const table = tableFromYaml(`${TWO}    routes:
      - match: { header: { name: X-A, value: "1" }, cookie: { name: b, present: true } }
        to: v2
      - match: { query: { name: c, regex: "^x" } }
        to: v1
`);
  const rules = table.services[0]!.rules;
  t.same(rules.map((r) => [r.index, r.to.name, r.conditions.map((c) => c.description)]), [
    [0, 'v2', ['header x-a = "1"', 'cookie b is present']],
    [1, 'v1', ['query c ~ /^x/']],
  ]);
});

t.test('origins are normalised; equal upstreams share a key; generation is used', async (t) => {
  const config = loadYaml(`services:
  - name: svc
    versions:
      - name: v1
        upstream: [ "HTTP://Example.COM:80/", "https://127.0.0.1:8443", "http://[::1]:3001" ]
      - name: v2
        upstream: [ "http://example.com", "https://127.0.0.1:8443/", "http://[::1]:3001" ]
      - name: v3
        upstream: "http://example.com"
`);
  const table = compileOrThrow(config, { generation: 7 });
  t.equal(table.generation, 7);
  const [v1, v2, v3] = table.services[0]!.versions;
  t.same(v1!.upstream.origins, ['http://example.com', 'https://127.0.0.1:8443', 'http://[::1]:3001']);
  t.equal(v1!.upstream.key, v2!.upstream.key, 'the same origins, written differently, are one upstream');
  t.not(v1!.upstream.key, v3!.upstream.key);
  t.ok(Object.isFrozen(v1!.upstream), 'the spec is plain frozen data');
});

t.test('timeouts, exposeVersionHeader and rollout are carried over', async (t) => {
  const table = tableFromYaml(`exposeVersionHeader: false
services:
  - name: a
    match: { pathPrefix: /a }
    versions: [{ name: v1, upstream: "http://127.0.0.1:1" }, { name: v2, upstream: "http://127.0.0.1:2" }]
    timeouts: { connect: 250ms, response: 1.5m }
    rollout: { canary: v2, steps: [{ weight: 50, pause: 1m }, { weight: 100 }] }
  - name: b
    match: { pathPrefix: /b }
    exposeVersionHeader: true
    versions: [{ name: v1, upstream: "http://127.0.0.1:3" }]
`);
  const [a, b] = table.services;
  t.same(a!.timeouts, { connectMs: 250, responseMs: 90_000 });
  t.equal(a!.exposeVersionHeader, false, 'inherits the top-level setting');
  t.equal(b!.exposeVersionHeader, true, 'a service can override it');
  t.match(a!.rollout, { canary: 'v2', steps: [{ weight: 50, pause: '1m' }, { weight: 100 }] });
});

t.test('host index: exact, wildcards longest suffix first, any host; each longest prefix first', async (t) => {
  const table = tableFromYaml(`services:
  - { name: root, match: { hosts: [a.example.com], pathPrefix: / }, versions: [{ name: v, upstream: "http://127.0.0.1:1" }] }
  - { name: api, match: { hosts: [A.Example.com.], pathPrefix: /api/ }, versions: [{ name: v, upstream: "http://127.0.0.1:2" }] }
  - { name: wide, match: { hosts: ["*.example.com"] }, versions: [{ name: v, upstream: "http://127.0.0.1:3" }] }
  - { name: narrow, match: { hosts: ["*.eu.example.com"] }, versions: [{ name: v, upstream: "http://127.0.0.1:4" }] }
  - { name: any, versions: [{ name: v, upstream: "http://127.0.0.1:5" }] }
  - { name: any-static, match: { pathPrefix: /static }, versions: [{ name: v, upstream: "http://127.0.0.1:6" }] }
`);
  const names = (group: readonly number[]) => group.map((i) => table.services[i]!.name);
  t.same([...table.hosts.exactHosts.keys()], ['a.example.com']);
  t.same(names(table.hosts.exactHosts.get('a.example.com')!), ['api', 'root']);
  t.same(table.hosts.wildcards.map((w) => [w.suffix, names(w.group)]), [
    ['.eu.example.com', ['narrow']],
    ['.example.com', ['wide']],
  ]);
  t.same(names(table.hosts.anyHost), ['any-static', 'any']);
  t.same(table.servicesByName.get('api')!.hosts, ['a.example.com']);
});

t.test('semantic issues are all reported together, with their paths', async (t) => {
  const issues = issuesOf(`services:
  - name: shop
    match: { hosts: [shop.example.com, "bad host"] }
    versions:
      - { name: v1, upstream: "http://127.0.0.1:1" }
      - { name: v2, upstream: "ftp://127.0.0.1:2" }
      - { name: v2, upstream: "http://127.0.0.1:3" }
    routes:
      - { match: { header: { name: x } }, to: v9 }
      - { match: { cookie: { name: c, regex: "a(?=b)" } }, to: v1 }
    split: { weights: { v1: 1, v3: 1 } }
    rollout: { canary: v7, steps: [{ weight: 10 }] }
  - name: other
    match: { hosts: [shop.example.com] }
    versions: [{ name: v1, upstream: "http://u:p@127.0.0.1:1" }]
    split: { weights: { v1: 0 } }
  - name: shop
    versions: [{ name: v1, upstream: "http://127.0.0.1:1" }]
`);
  t.same(brief(issues), [
    'services.0.match.hosts.1 invalid_host',
    'services.0.rollout.canary unknown_version',
    'services.0.routes.0.match.header invalid_matcher',
    'services.0.routes.0.to unknown_version',
    'services.0.routes.1.match.cookie.regex invalid_regex',
    'services.0.split.weights.v3 unknown_version',
    'services.0.versions.1.upstream invalid_upstream',
    'services.0.versions.2.name duplicate_version',
    'services.1.match duplicate_route',
    'services.1.split.weights invalid_weights',
    'services.1.versions.0.upstream invalid_upstream',
    'services.2.name duplicate_service',
  ]);
  t.ok(issues.find((i) => i.code === 'unknown_version' && i.path.at(-1) === 'v3')!.atKey, 'an unknown weight names the key');
  t.notOk(issues.find((i) => i.code === 'unknown_version' && i.path.at(-1) === 'to')!.atKey, 'an unknown `to` names the value');
});

t.test('semantic checks, one at a time', async (t) => {
  const svc = (body: string) => `services:\n  - name: s\n${body}`;
  const two = '    versions: [{ name: v1, upstream: "http://127.0.0.1:1" }, { name: v2, upstream: "http://127.0.0.1:2" }]\n';
  t.same(brief(issuesOf(svc(`${two}    split: { weights: { v1: 0, v2: 0 } }\n`))), ['services.0.split.weights invalid_weights']);
  t.same(brief(issuesOf(svc(`${two}    rollout: { canary: v3, steps: [{ weight: 1 }] }\n`))), ['services.0.rollout.canary unknown_version']);
  t.same(brief(issuesOf(svc(`    versions: [{ name: v1, upstream: "http://127.0.0.1:1" }]\n    rollout: { canary: v1, steps: [{ weight: 1 }] }\n`))), [
    'services.0.rollout invalid_rollout',
  ]);
  for (const [upstream, why] of [
    ['http://127.0.0.1:1/path', /path/],
    ['http://127.0.0.1:1/?q=1', /query/],
    ['http://127.0.0.1:1#frag', /path or query/],
    ['http://user@127.0.0.1:1', /credentials/],
    ['ftp://127.0.0.1:1', /http:\/\/ or https:\/\//],
    ['ws://127.0.0.1:1', /http:\/\/ or https:\/\//],
    ['127.0.0.1:1', /not a URL|http/],
    ['http://', /not a URL/],
  ] as const) {
    const issues = issuesOf(svc(`    versions: [{ name: v1, upstream: "${upstream}" }]\n`));
    t.match(issues, [{ code: 'invalid_upstream', path: ['services', 0, 'versions', 0, 'upstream'], message: why }], upstream);
  }
  // Regression: the duplicate went unreported when the first service of that name had errors of its own.
  t.same(
    brief(issuesOf(`services:
  - { name: a, versions: [{ name: v, upstream: "http://127.0.0.1:1" }], split: { weights: { nope: 1 } } }
  - { name: a, match: { pathPrefix: /a }, versions: [{ name: v, upstream: "http://127.0.0.1:1" }] }
`)),
    ['services.0.split.weights.nope unknown_version', 'services.1.name duplicate_service'],
    'a duplicate of a service with errors is still a duplicate',
  );
  t.match(issuesOf(`services:
  - { name: a, match: { hosts: [x.com, X.COM] }, versions: [{ name: v, upstream: "http://127.0.0.1:1" }] }
`), [{ code: 'duplicate_route', message: /listed twice/ }], 'a host listed twice in one service');
  t.same(
    brief(issuesOf(`services:
  - { name: a, match: { hosts: ["*.x.com"], pathPrefix: /p }, versions: [{ name: v, upstream: "http://127.0.0.1:1" }] }
  - { name: b, match: { hosts: ["*.X.com."], pathPrefix: /p }, versions: [{ name: v, upstream: "http://127.0.0.1:1" }] }
  - { name: c, match: { hosts: ["*.x.com"], pathPrefix: /p/ }, versions: [{ name: v, upstream: "http://127.0.0.1:1" }] }
  - { name: d, match: { hosts: ["*.x.com"], pathPrefix: /q }, versions: [{ name: v, upstream: "http://127.0.0.1:1" }] }
`)),
    ['services.1.match duplicate_route', 'services.2.match duplicate_route'],
    'wildcards collide too, and /p/ is /p (whole segments); another prefix does not',
  );
});

t.test('runtime weights override the config; ones that no longer fit fall back with a warning', async (t) => {
  const config = loadYaml(TWO);
  const runtime = compileTable(config, { runtimeWeights: { svc: { v1: 50, v2: 50 }, gone: { x: 1 } } });
  t.ok(runtime.ok);
  if (runtime.ok) {
    const split = runtime.table.services[0]!.split;
    t.equal(split.source, 'runtime');
    t.same(split.weights, { v1: 50, v2: 50 });
    t.same([...split.ends], [5000, 10000]);
    t.same(runtime.warnings, [], 'weights of a service that is gone are not this compile\'s business');
  }
  const partial = compileOrThrow(config, { runtimeWeights: { svc: { v2: 3 } } }).services[0]!.split;
  t.same(partial.weights, { v1: 0, v2: 3 }, 'a version missing from runtime weights gets 0');
  t.same([...partial.ends], [0, 10000]);

  for (const [weights, why] of [
    [{ v1: 50, v3: 50 }, /unknown versions: v3/],
    [{ v1: 0, v2: 0 }, /all zero/],
    [{ v1: -10, v2: 20 }, /invalid weights for: v1/],
    [{ v1: Number.NaN, v2: 20 }, /invalid weights for: v1/],
  ] as const) {
    const result = compileTable(config, { runtimeWeights: { svc: weights } });
    t.ok(result.ok, 'still compiles');
    if (!result.ok) continue;
    const split = result.table.services[0]!.split;
    t.equal(split.source, 'config', JSON.stringify(weights));
    t.same(split.weights, { v1: 90, v2: 10 });
    t.match(result.warnings, [{ code: 'runtime_weights_ignored', path: ['services', 0, 'split', 'weights'], message: why }]);
  }
});

t.test('compiling is pure: the same config compiles to the same ranges, and the config is untouched', async (t) => {
  const config = loadYaml(splitYaml({ a: 3, b: 3, c: 1 }, 'sticky: { cookie: uid }'));
  const before = JSON.stringify(config);
  const one = compileOrThrow(config).services[0]!.split;
  const two = compileOrThrow(config).services[0]!.split;
  t.same([...one.ends], [...two.ends]);
  t.equal(one.seedState, two.seedState);
  t.equal(JSON.stringify(config), before);
});
