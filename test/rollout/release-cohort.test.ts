// One cohort across a release's members: with the release's seed and the
// canary's range at the top of every member's split, a sticky user is on
// every member's canary or on none, at every weight; and bad `releases:`
// are refused with their path and code.

import t from 'tap';
import { parseConfigText } from '../../src/config/index.ts';
import { routeRequest } from '../../src/router/index.ts';
import { compileTable, type CompileIssue } from '../../src/table/index.ts';
import { mulberry32 } from '../helpers/prng.ts';
import { compileOrThrow, loadYaml, request } from '../helpers/tables.ts';

// frontend lists its canary first and cart last, with a third version in between: the release must still align them.
const config = (extra = '') => `services:
  - name: frontend
    match: { hosts: [front.test] }
    versions:
      - { name: v2, upstream: "http://127.0.0.1:3002" }
      - { name: v1, upstream: "http://127.0.0.1:3001" }
    split: { weights: { v1: 100 }, sticky: { header: x-user } }
  - name: cart
    match: { hosts: [cart.test] }
    versions:
      - { name: v4, upstream: "http://127.0.0.1:3004" }
      - { name: v3, upstream: "http://127.0.0.1:3003" }
      - { name: v5, upstream: "http://127.0.0.1:3005" }
    split: { weights: { v4: 100 }, sticky: { header: x-user }, seed: cart-own }
releases:
  - name: checkout-2.3
    services: { frontend: v2, cart: v5 }
    steps: [{ weight: 50 }]
${extra}`;

const issuesOf = (yaml: string): readonly CompileIssue[] => {
  const loaded = parseConfigText(yaml, {});
  if (!loaded.ok) throw new Error(loaded.issues.map((i) => i.message).join('; '));
  const result = compileTable(loaded.config);
  return result.ok ? [] : result.issues;
};
const brief = (issues: readonly CompileIssue[]) => issues.map((i) => `${i.path.join('.')} ${i.code}`).sort();

t.test('a user is on every member canary or on none, over thousands of users and several weights', async (t) => {
  const base = loadYaml(config());
  const random = mulberry32(16);
  const users = Array.from({ length: 5000 }, (_, i) => `user-${i}-${Math.floor(random() * 1e9)}`);
  for (const weight of [0.5, 1, 5, 12.34, 33, 50, 77.7, 99]) {
    const table = compileOrThrow(base, { runtimeWeights: { frontend: { v1: 100 - weight, v2: weight }, cart: { v3: 0, v4: 100 - weight, v5: weight } } });
    let onCanary = 0;
    let mismatched = 0;
    for (const user of users) {
      const front = routeRequest(table, request('/', { host: 'front.test', 'x-user': user }), () => 0.5)!.name;
      const cart = routeRequest(table, request('/', { host: 'cart.test', 'x-user': user }), () => 0.5)!.name;
      if ((front === 'v2') !== (cart === 'v5')) mismatched++;
      if (front === 'v2') onCanary++;
    }
    t.equal(mismatched, 0, `at ${weight}%: no user is on one canary without the other`);
    const share = (onCanary / users.length) * 100;
    t.ok(Math.abs(share - weight) < Math.max(2, weight * 0.2), `at ${weight}%: ${share.toFixed(2)}% of users are on the canaries`);
  }
  const table = compileOrThrow(base);
  t.equal(table.servicesByName.get('cart')!.split.seed, 'checkout-2.3', "a member hashes with the release's seed (the release name by default)");
  t.same(table.servicesByName.get('frontend')!.split.versions.map((v) => v.name), ['v1', 'v2'], "the canary's range is the last one");
});

t.test('a ramp only moves users onto the canaries', async (t) => {
  const base = loadYaml(config());
  const users = Array.from({ length: 3000 }, (_, i) => `u${i}`);
  let before = new Set<string>();
  for (const weight of [5, 20, 50, 100]) {
    const table = compileOrThrow(base, { runtimeWeights: { cart: { v4: 100 - weight, v5: weight } } });
    const now = new Set(users.filter((u) => routeRequest(table, request('/', { host: 'cart.test', 'x-user': u }))!.name === 'v5'));
    t.ok([...before].every((u) => now.has(u)), `at ${weight}% every earlier canary user stays`);
    before = now;
  }
  t.equal(before.size, users.length);
});

t.test('rules that fall back to the service split draw from the same ranges', async (t) => {
  const yaml = config().replace('    split: { weights: { v1: 100 }, sticky: { header: x-user } }', `    split: { weights: { v1: 100 }, sticky: { header: x-user } }
    rules:
      - matches: [{ path: { type: PathPrefix, value: / } }]`);
  const table = compileOrThrow(loadYaml(yaml), { runtimeWeights: { frontend: { v1: 50, v2: 50 }, cart: { v4: 50, v5: 50 } } });
  let mismatched = 0;
  let onCanary = 0;
  for (let i = 0; i < 2000; i++) {
    const front = routeRequest(table, request('/', { host: 'front.test', 'x-user': `r${i}` }))!.name;
    const cart = routeRequest(table, request('/', { host: 'cart.test', 'x-user': `r${i}` }))!.name;
    if ((front === 'v2') !== (cart === 'v5')) mismatched++;
    if (front === 'v2') onCanary++;
  }
  t.equal(mismatched, 0);
  t.ok(onCanary > 800 && onCanary < 1200, `${onCanary} of 2000 on the canaries`);
});

t.test('bad releases are refused with their path and code', async (t) => {
  t.same(
    brief(
      issuesOf(
        config(`  - name: other
    services: { nope: v1, frontend: v9 }
    steps: [{ weight: 10 }]`),
      ),
    ),
    ['releases.1.services.frontend invalid_release', 'releases.1.services.frontend unknown_version', 'releases.1.services.nope unknown_service'].sort(),
  );
  const mixed = config().replace('sticky: { header: x-user }, seed: cart-own', 'sticky: { cookie: uid }');
  const issues = issuesOf(mixed);
  t.same(brief(issues), ['releases.0.services.cart invalid_release']);
  t.match(issues[0]!.message, /must share the sticky key/);
  t.same(brief(issuesOf(config().replace('{ frontend: v2, cart: v5 }', '{ frontend: v2, cart: v9 }'))), ['releases.0.services.cart unknown_version']);
  const twice = issuesOf(config(`  - name: again
    services: { cart: v5 }
    steps: [{ weight: 10 }]`));
  t.same(brief(twice), ['releases.1.services.cart invalid_release']);
  t.match(twice[0]!.message, /already in release checkout-2.3/);
});

t.test("a release's metric checks and hooks are checked at load as a rollout's are", async (t) => {
  const release = (body: string) => config(`  - name: checks
    services: { frontend: v2 }
${body}`).replace('services: { frontend: v2, cart: v5 }', 'services: { cart: v5 }');
  const prom = 'prometheus: { address: "http://127.0.0.1:9090" }';
  const cases: [string, string, RegExp][] = [
    [`    steps: [{ weight: 10 }]\n    analysis: { metrics: [{ name: a, query: x, min: 1 }] }`, 'releases.1.analysis.metrics invalid_analysis', /need analysis\.prometheus/],
    [`    steps: [{ weight: 10 }]\n    analysis: { prometheus: { address: "ftp://p" } }`, 'releases.1.analysis.prometheus.address invalid_analysis', /not an http/],
    [`    steps: [{ weight: 10 }]\n    analysis: { ${prom}, metrics: [{ name: a, query: "x{v=\\"{{version}}\\"}", min: 1 }] }`, 'releases.1.analysis.metrics.0.query invalid_analysis', /unknown placeholder \{\{version\}\}/],
    [`    steps: [{ weight: 10, analysis: { metrics: [{ name: a, query: x, max: 1 }] } }]\n    analysis: { ${prom}, metrics: [{ name: a, query: y, max: 2 }] }`, 'releases.1.steps.0.analysis.metrics.0.name invalid_analysis', /./],
    [`    steps: [{ weight: 10 }]\n    hooks: [{ type: rollout, url: "file:///etc/passwd" }]`, 'releases.1.hooks.0.url invalid_hook', /not an http/],
    [`    steps: [{ weight: 10 }]\n    hooks: [{ type: pre-rollout, url: "http://127.0.0.1:1/", timeout: 1h }]`, 'releases.1.hooks.0.timeout invalid_hook', /longest a hook may take/],
    [`    steps: [{ weight: 10 }]\n    hooks: [{ type: rollout, url: "http://127.0.0.1:1/", headers: { Host: x } }]`, 'releases.1.hooks.0.headers.Host invalid_hook', /sets host itself/],
  ];
  for (const [body, expected, message] of cases) {
    const issues = issuesOf(release(body));
    t.same(brief(issues), [expected], body);
    t.match(issues[0]?.message, message, body);
  }
  t.same(issuesOf(release(`    steps: [{ weight: 10 }]\n    analysis: { ${prom}, metrics: [{ name: a, query: "sum(rate(x{service=\\"{{service}}\\"}[{{interval}}]))", max: 1 }] }\n    hooks: [{ type: rollout, url: "http://127.0.0.1:1/" }]`)), [], 'a good one passes');
});
