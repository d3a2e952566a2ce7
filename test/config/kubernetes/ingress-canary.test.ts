// ingress-nginx's canary e2e scenarios (test/e2e/annotations/canary.go in
// kubernetes/ingress-nginx), served by veer from the same Ingress objects
// through `include:`, against real upstreams on 127.0.0.1.

import t from 'tap';
import type { TestScope } from '../../helpers/http.ts';
import { backends, serveManifests, singleIngress } from './serve.ts';

const CANARY = 'nginx.ingress.kubernetes.io/canary';
const A = (name: string) => `nginx.ingress.kubernetes.io/${name}`;

/** ingress-nginx's e2e fixture: Ingress foo on host foo to http-svc, and its canary Ingress foo-canary to http-svc-canary with `annotations`. */
async function serveCanary(t: TestScope, annotations: Record<string, string>) {
  const p = await backends(t, 'http-svc', 'http-svc-canary');
  return serveManifests(t, {
    'main.yaml': singleIngress('foo', '/', 'foo', 'http-svc', p['http-svc']!),
    'canary.yaml': singleIngress('foo-canary', '/', 'foo', 'http-svc-canary', p['http-svc-canary']!, { [CANARY]: 'true', ...annotations }),
  });
}

t.test('when canary is created: requests without canary signals go to the mainline', async (t) => {
  const s = await serveCanary(t, { [A('canary-by-header')]: 'CanaryByHeader' });
  const r = await s.get('foo');
  t.equal(r.status, 200);
  t.equal(r.upstream, 'http-svc');
});

t.test('should return 404 for requests to the canary if no matching (main) ingress is found', async (t) => {
  const p = await backends(t, 'http-svc-canary');
  const s = await serveManifests(t, {
    'canary.yaml': singleIngress('foo-canary', '/', 'foo', 'http-svc-canary', p['http-svc-canary']!, { [CANARY]: 'true', [A('canary-by-header')]: 'CanaryByHeader' }),
  });
  const r = await s.get('foo', '/', { CanaryByHeader: 'always' });
  t.equal(r.status, 404);
  t.equal(r.upstream, null);
});

t.test('routes to the correct upstream whichever ingress comes first in the files, and after either is modified (reload)', async (t) => {
  const p = await backends(t, 'http-svc', 'http-svc-canary');
  // The canary's file sorts first: order of appearance does not matter.
  const s = await serveManifests(
    t,
    {
      'a-canary.yaml': singleIngress('foo-canary', '/', 'foo', 'http-svc-canary', p['http-svc-canary']!, { [CANARY]: 'true', [A('canary-by-header')]: 'CanaryByHeader' }),
      'b-main.yaml': singleIngress('foo', '/', 'foo', 'http-svc', p['http-svc']!),
    },
  );
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'never' })).upstream, 'http-svc');
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'always' })).upstream, 'http-svc-canary');
  // The mainline ingress is modified (an unrelated annotation).
  s.write('b-main.yaml', singleIngress('foo', '/', 'foo', 'http-svc', p['http-svc']!, { foo: 'bar' }));
  t.equal(await s.veer.reloader.reload('test'), 'success');
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'never' })).upstream, 'http-svc');
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'always' })).upstream, 'http-svc-canary');
  // The canary ingress is modified: another header.
  s.write('a-canary.yaml', singleIngress('foo-canary', '/', 'foo', 'http-svc-canary', p['http-svc-canary']!, { [CANARY]: 'true', [A('canary-by-header')]: 'CanaryByHeader2' }));
  t.equal(await s.veer.reloader.reload('test'), 'success');
  t.equal((await s.get('foo', '/', { CanaryByHeader2: 'never' })).upstream, 'http-svc');
  t.equal((await s.get('foo', '/', { CanaryByHeader2: 'always' })).upstream, 'http-svc-canary');
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'always' })).upstream, 'http-svc', 'the old header no longer counts');
});

t.test('canaried by header with no value: always, never, anything else', async (t) => {
  const s = await serveCanary(t, { [A('canary-by-header')]: 'CanaryByHeader' });
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'always' })).upstream, 'http-svc-canary');
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'never' })).upstream, 'http-svc');
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'badheadervalue' })).upstream, 'http-svc');
});

t.test('canaried by header with value: only the value counts; always and never do not', async (t) => {
  const s = await serveCanary(t, {
    [A('canary-by-header')]: 'CanaryByHeader',
    [A('canary-by-header-value')]: 'DoCanary',
  });
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'DoCanary' })).upstream, 'http-svc-canary');
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'always' })).upstream, 'http-svc');
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'never' })).upstream, 'http-svc');
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'otherheadervalue' })).upstream, 'http-svc');
});

t.test('canaried by header with value and cookie: a header that does not match falls through to the cookie', async (t) => {
  const s = await serveCanary(t, {
    [A('canary-by-header')]: 'CanaryByHeader',
    [A('canary-by-header-value')]: 'DoCanary',
    [A('canary-by-cookie')]: 'CanaryByCookie',
  });
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'otherheadervalue', cookie: 'CanaryByCookie=always' })).upstream, 'http-svc-canary');
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'DoCanary', cookie: 'CanaryByCookie=never' })).upstream, 'http-svc-canary', 'the header comes before the cookie');
});

t.test('canaried by cookie with no value: always, never, anything else', async (t) => {
  const s = await serveCanary(t, { [A('canary-by-cookie')]: 'Canary-By-Cookie' });
  t.equal((await s.get('foo', '/', { cookie: 'Canary-By-Cookie=always' })).upstream, 'http-svc-canary');
  t.equal((await s.get('foo', '/', { cookie: 'Canary-By-Cookie=never' })).upstream, 'http-svc');
  t.equal((await s.get('foo', '/', { cookie: 'Canary-By-Cookie=badcookievalue' })).upstream, 'http-svc');
});

t.test('canaried by header pattern (regex; ignored when a value is given)', async (t) => {
  const s = await serveCanary(t, {
    [A('canary-by-header')]: 'x-region',
    [A('canary-by-header-pattern')]: '^(eu|us)-west$',
  });
  t.equal((await s.get('foo', '/', { 'x-region': 'eu-west' })).upstream, 'http-svc-canary');
  t.equal((await s.get('foo', '/', { 'x-region': 'eu-westx' })).upstream, 'http-svc');
  t.equal((await s.get('foo', '/', { 'x-region': 'always' })).upstream, 'http-svc', 'with a pattern, always is just a value');
});

t.test('canaried by weight: 0 sends nothing to the canary, 100 everything; canary-weight-total scales', async (t) => {
  const p = await backends(t, 'http-svc', 'http-svc-canary');
  const canary = (weight: string, total?: string) =>
    singleIngress('foo-canary', '/', 'foo', 'http-svc-canary', p['http-svc-canary']!, { [CANARY]: 'true', [A('canary-weight')]: weight, ...(total !== undefined && { [A('canary-weight-total')]: total }) });
  const s = await serveManifests(t, { 'main.yaml': singleIngress('foo', '/', 'foo', 'http-svc', p['http-svc']!), 'canary.yaml': canary('0') });
  for (let i = 0; i < 20; i++) t.equal((await s.get('foo')).upstream, 'http-svc');
  s.write('canary.yaml', canary('100'));
  t.equal(await s.veer.reloader.reload('test'), 'success');
  for (let i = 0; i < 20; i++) t.equal((await s.get('foo')).upstream, 'http-svc-canary');
  s.write('canary.yaml', canary('1000', '1000'));
  t.equal(await s.veer.reloader.reload('test'), 'success');
  t.equal((await s.get('foo')).upstream, 'http-svc-canary', '1000 of 1000');
  s.write('canary.yaml', canary('250', '1000'));
  t.equal(await s.veer.reloader.reload('test'), 'success');
  let hits = 0;
  for (let i = 0; i < 400; i++) if ((await s.get('foo')).upstream === 'http-svc-canary') hits += 1;
  t.ok(hits > 400 * 0.25 - 45 && hits < 400 * 0.25 + 45, `250 of 1000: ${hits} of 400 on the canary`);
});

t.test('a single canary Ingress is not a catch-all server, nor a server for its host', async (t) => {
  const p = await backends(t, 'http-svc', 'http-svc-canary');
  const s = await serveManifests(t, {
    'canary.yaml': singleIngress('foo-canary', '/', 'foo', 'http-svc-canary', p['http-svc-canary']!, { [CANARY]: 'true', [A('canary-by-header')]: 'CanaryByHeader' }),
    'bar.yaml': singleIngress('bar', '/', 'bar', 'http-svc', p['http-svc']!),
  });
  t.equal((await s.get('bar', '/', { CanaryByHeader: 'always' })).upstream, 'http-svc');
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'always' })).status, 404);
});

t.test('a canary Ingress with several paths to a backend no main Ingress matches does not break the main one', async (t) => {
  const p = await backends(t, 'http-svc', 'http-svc-canary');
  const multi = singleIngress('foo-canary', '/foo', 'foo', 'http-svc-canary', p['http-svc-canary']!, { [CANARY]: 'true', [A('canary-by-header')]: 'CanaryByHeader' }).replace(
    '      - path: /foo',
    `      - path: /bar\n        pathType: Prefix\n        backend:\n          service:\n            name: http-svc-canary\n            port:\n              number: ${p['http-svc-canary']}\n      - path: /foo`,
  );
  const s = await serveManifests(t, { 'canary.yaml': multi, 'main.yaml': singleIngress('foo', '/', 'foo', 'http-svc', p['http-svc']!) });
  t.equal((await s.get('foo', '/foo', { CanaryByHeader: 'always' })).upstream, 'http-svc');
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'always' })).upstream, 'http-svc');
});

t.test('several paths (one Exact) with a canary on one: the long form keeps header, cookie, weight order per path', async (t) => {
  const p = await backends(t, 'api', 'web', 'web-canary');
  const main = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: shop, namespace: e2e }
spec:
  rules:
  - host: shop
    http:
      paths:
      - { path: /api, pathType: Exact, backend: { service: { name: api, port: { number: ${p.api} } } } }
      - { path: /web, pathType: Prefix, backend: { service: { name: web, port: { number: ${p.web} } } } }
`;
  const canary = singleIngress('shop-canary', '/web', 'shop', 'web-canary', p['web-canary']!, {
    [CANARY]: 'true',
    [A('canary-by-header')]: 'x-canary',
    [A('canary-by-cookie')]: 'canary',
    [A('canary-weight')]: '0',
  });
  const s = await serveManifests(t, { 'main.yaml': main, 'canary.yaml': canary });
  const service = s.veer.config().services.find((x) => x.name === 'e2e.shop')!;
  t.ok(service.rules !== undefined && service.routes.length === 0, 'the long form');
  t.equal((await s.get('shop', '/api')).upstream, 'api');
  t.equal((await s.get('shop', '/api/x')).status, 404, 'Exact');
  t.equal((await s.get('shop', '/web/a')).upstream, 'web');
  t.equal((await s.get('shop', '/web/a', { 'x-canary': 'always' })).upstream, 'web-canary');
  t.equal((await s.get('shop', '/web/a', { cookie: 'canary=always' })).upstream, 'web-canary');
  t.equal((await s.get('shop', '/web/a', { 'x-canary': 'never', cookie: 'canary=always' })).upstream, 'web', 'header before cookie');
  t.equal((await s.get('shop', '/api', { 'x-canary': 'always' })).upstream, 'api', 'the canary is only on its path');
});

t.test('bad canary annotations are refused with the annotation named', async (t) => {
  const p = await backends(t, 'http-svc', 'http-svc-canary');
  const cases: [Record<string, string>, RegExp][] = [
    [{ [CANARY]: 'maybe' }, /canary"\]: "maybe" is not "true" or "false"/],
    [{ [CANARY]: 'true', [A('canary-weight')]: '150' }, /canary-weight"\]: 150 is more than canary-weight-total \(100\)/],
    [{ [CANARY]: 'true', [A('canary-weight-total')]: '0' }, /canary-weight-total"\]: "0" is not a whole number of at least 1/],
    [{ [CANARY]: 'true', [A('canary-by-header-value')]: 'x' }, /canary-by-header-value"\]: needs canary-by-header/],
    [{ [CANARY]: 'true', [A('canary-by-header')]: 'bad header' }, /canary-by-header"\]: "bad header" is not a header name/],
    [{ [CANARY]: 'true', [A('canary-by-header')]: 'x', [A('canary-by-header-pattern')]: '(?=look)' }, /not an RE2 regular expression/],
    [{ [CANARY]: 'true', [A('canary-by-cookie-value')]: 'x' }, /canary-by-cookie-value"\]: veer does not implement this ingress-nginx annotation.*\[not_mapped\]/],
  ];
  for (const [annotations, reason] of cases) {
    const s = await serveManifests(t, {
      'main.yaml': singleIngress('foo', '/', 'foo', 'http-svc', p['http-svc']!),
      'canary.yaml': singleIngress('foo-canary', '/', 'foo', 'http-svc-canary', p['http-svc-canary']!, annotations),
    });
    const loaded = await s.veer.reloader.reload('test');
    t.not(loaded, 'failure', 'the config itself still loads');
    const check = await import('../../../src/main.ts').then((m) => m.checkConfigFile(`${s.dir}/veer.yaml`));
    t.equal(check.ok, false);
    if (!check.ok) t.match(check.issues.map((i) => `${i.path}: ${i.message} [${i.code}]`).join('\n'), reason);
    t.equal((await s.get('foo', '/', { x: 'always', cookie: 'x=always' })).upstream, 'http-svc', 'the main Ingress serves, without the canary');
  }
});
