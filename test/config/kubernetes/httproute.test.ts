// HTTPRoute -> veer services: the translation of the Gateway API docs'
// examples, and routes served end to end through `include:` (matching,
// matching across routes, weights, header modifiers, rewrites, redirects).

import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { DEFAULT_KUBERNETES, translateManifests, type Manifest } from '../../../src/config/index.ts';
import { ROOT } from '../../helpers/veer.ts';
import { backends, serveManifests } from './serve.ts';

function fixture(name: string): Manifest[] {
  return parseAllDocuments(readFileSync(join(ROOT, 'test', 'fixtures', 'kubernetes', name), 'utf8')).map((d) => d.toJS() as Manifest);
}

t.test('the HTTP routing example: hostnames, a path match, a header match before the catch-all', async (t) => {
  const { results } = translateManifests(fixture('gateway-http-routing.yaml'), DEFAULT_KUBERNETES);
  t.same(results.map((r) => r.findings), [[], []]);
  t.same(results[0]!.services, [
    {
      name: 'default.foo-route',
      match: { hosts: ['foo.example.com'] },
      versions: [{ name: 'foo-svc', upstream: 'http://foo-svc.default.svc.cluster.local:8080' }],
      rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/login' } }], to: 'foo-svc' }],
    },
  ]);
  t.same(results[1]!.services[0]!.rules, [{ matches: [{ headers: [{ name: 'env', type: 'Exact', value: 'canary' }] }], to: 'bar-svc-canary' }, { to: 'bar-svc' }]);
});

t.test('traffic splitting: the weights become the service split, which veer weights and rollouts move', async (t) => {
  const { results } = translateManifests(fixture('gateway-traffic-splitting.yaml'), DEFAULT_KUBERNETES);
  t.same(results[0]!.findings, []);
  t.same(results[0]!.services[0]!.split, { weights: { 'foo-v1': 90, 'foo-v2': 10 } });
  t.same(results[0]!.services[0]!.rules, [{}]);
});

t.test('filters: header modifier, URL rewrite; a redirect-only route is reported (a service needs a backend)', async (t) => {
  const header = translateManifests(fixture('gateway-header-modifier.yaml'), DEFAULT_KUBERNETES).results[0]!;
  t.same(header.findings, []);
  t.same((header.services[0]!.rules as unknown[])[0], {
    matches: [{ path: { type: 'PathPrefix', value: '/add-a-request-header' } }],
    filters: [{ requestHeaderModifier: { add: [{ name: 'my-header-name', value: 'my-header-value' }] } }],
    to: 'echo',
  });
  const [redirect, rewrite] = translateManifests(fixture('gateway-redirect-rewrite.yaml'), DEFAULT_KUBERNETES).results;
  t.match(redirect!.findings, [{ code: 'not_mapped', field: 'spec.rules', reason: /redirects only/ }]);
  t.same((rewrite!.services[0]!.rules as { filters: unknown }[])[0]!.filters, [{ urlRewrite: { hostname: 'elsewhere.example', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/fennel' } } }]);
});

t.test('timeouts in Gateway API durations, mirror fractions, cross-namespace refs', async (t) => {
  const route: Manifest = {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'r', namespace: 'shop' },
    spec: {
      rules: [
        {
          backendRefs: [{ name: 'a', port: 80 }],
          timeouts: { request: '1m30s', backendRequest: '500ms' },
          filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'b', port: 80 }, fraction: { numerator: 1, denominator: 4 } } }],
        },
      ],
    },
  };
  const [r] = translateManifests([route], DEFAULT_KUBERNETES).results;
  t.same(r!.findings, []);
  t.same(r!.services[0]!.rules, [{ filters: [{ requestMirror: { to: 'b', percent: 25 } }], to: 'a', timeouts: { request: '90s', backendRequest: '500ms' } }]);
  t.same((r!.services[0]!.versions as { name: string }[]).map((v) => v.name), ['b', 'a']);
});

t.test('served: header match across routes of one host, path precedence, weights, modifiers, rewrite, redirect', async (t) => {
  const p = await backends(t, 'bar-svc', 'bar-svc-canary', 'foo-v1', 'foo-v2', 'login');
  const s = await serveManifests(t, {
    'bar.yaml': `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: bar-route }
spec:
  hostnames: [bar.example.com]
  rules:
  - matches: [{ headers: [{ type: Exact, name: env, value: canary }] }]
    backendRefs: [{ name: bar-svc-canary, port: ${p['bar-svc-canary']} }]
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier: { set: [{ name: x-track, value: canary }] }
  - backendRefs: [{ name: bar-svc, port: ${p['bar-svc']} }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: bar-login }
spec:
  hostnames: [bar.example.com]
  rules:
  - matches: [{ path: { type: Exact, value: /login } }]
    backendRefs: [{ name: login, port: ${p.login} }]
    filters:
    - type: URLRewrite
      urlRewrite: { path: { type: ReplaceFullPath, replaceFullPath: /signin } }
  - matches: [{ path: { type: PathPrefix, value: /old } }]
    filters:
    - type: RequestRedirect
      requestRedirect: { scheme: https, statusCode: 301 }
`,
    'foo.yaml': `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: foo-route }
spec:
  hostnames: [foo.example.com]
  rules:
  - backendRefs:
    - { name: foo-v1, port: ${p['foo-v1']}, weight: 90 }
    - { name: foo-v2, port: ${p['foo-v2']}, weight: 10 }
`,
  });
  t.equal((await s.get('bar.example.com', '/', { env: 'canary' })).upstream, 'bar-svc-canary');
  t.equal((await s.get('bar.example.com', '/', { env: 'prod' })).upstream, 'bar-svc');
  t.equal((await s.get('bar.example.com', '/x')).upstream, 'bar-svc');
  const login = await s.get('bar.example.com', '/login', { env: 'canary' });
  t.equal(login.upstream, 'login', 'an Exact path of another route outranks the header match');
  t.equal(JSON.parse(login.body).url, '/signin', 'rewritten');
  const redirect = await s.get('bar.example.com', '/old/page');
  t.equal(redirect.status, 301);
  t.equal(redirect.upstream, null);
  let v2 = 0;
  const n = 500;
  for (let i = 0; i < n; i++) if ((await s.get('foo.example.com')).upstream === 'foo-v2') v2 += 1;
  t.ok(Math.abs(v2 / n - 0.1) <= 0.05, `foo-v2 got ${v2} of ${n} (10% ± 5%)`);
});
