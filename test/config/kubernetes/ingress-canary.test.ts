// ingress-nginx's canary e2e scenarios (test/e2e/annotations/canary.go in
// kubernetes/ingress-nginx), served by veer from the same Ingress objects
// through `include:`, against real upstreams on 127.0.0.1.

import t from 'tap';
import { backends, serveManifests, singleIngress } from './serve.ts';

const CANARY = 'nginx.ingress.kubernetes.io/canary';
const A = (name: string) => `nginx.ingress.kubernetes.io/${name}`;

t.test('when canary is created: requests without canary signals go to the mainline', async (t) => {
  const p = await backends(t, 'http-svc', 'http-svc-canary');
  const s = await serveManifests(t, {
    'main.yaml': singleIngress('foo', '/', 'foo', 'http-svc', p['http-svc']!),
    'canary.yaml': singleIngress('foo-canary', '/', 'foo', 'http-svc-canary', p['http-svc-canary']!, { [CANARY]: 'true', [A('canary-by-header')]: 'CanaryByHeader' }),
  });
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
  const p = await backends(t, 'http-svc', 'http-svc-canary');
  const s = await serveManifests(t, {
    'main.yaml': singleIngress('foo', '/', 'foo', 'http-svc', p['http-svc']!),
    'canary.yaml': singleIngress('foo-canary', '/', 'foo', 'http-svc-canary', p['http-svc-canary']!, { [CANARY]: 'true', [A('canary-by-header')]: 'CanaryByHeader' }),
  });
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'always' })).upstream, 'http-svc-canary');
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'never' })).upstream, 'http-svc');
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'badheadervalue' })).upstream, 'http-svc');
});

t.test('canaried by header with value: only the value counts; always and never do not', async (t) => {
  const p = await backends(t, 'http-svc', 'http-svc-canary');
  const s = await serveManifests(t, {
    'main.yaml': singleIngress('foo', '/', 'foo', 'http-svc', p['http-svc']!),
    'canary.yaml': singleIngress('foo-canary', '/', 'foo', 'http-svc-canary', p['http-svc-canary']!, {
      [CANARY]: 'true',
      [A('canary-by-header')]: 'CanaryByHeader',
      [A('canary-by-header-value')]: 'DoCanary',
    }),
  });
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'DoCanary' })).upstream, 'http-svc-canary');
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'always' })).upstream, 'http-svc');
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'never' })).upstream, 'http-svc');
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'otherheadervalue' })).upstream, 'http-svc');
});

t.test('canaried by header with value and cookie: a header that does not match falls through to the cookie', async (t) => {
  const p = await backends(t, 'http-svc', 'http-svc-canary');
  const s = await serveManifests(t, {
    'main.yaml': singleIngress('foo', '/', 'foo', 'http-svc', p['http-svc']!),
    'canary.yaml': singleIngress('foo-canary', '/', 'foo', 'http-svc-canary', p['http-svc-canary']!, {
      [CANARY]: 'true',
      [A('canary-by-header')]: 'CanaryByHeader',
      [A('canary-by-header-value')]: 'DoCanary',
      [A('canary-by-cookie')]: 'CanaryByCookie',
    }),
  });
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'otherheadervalue', cookie: 'CanaryByCookie=always' })).upstream, 'http-svc-canary');
  t.equal((await s.get('foo', '/', { CanaryByHeader: 'DoCanary', cookie: 'CanaryByCookie=never' })).upstream, 'http-svc-canary', 'the header comes before the cookie');
});

t.test('canaried by cookie with no value: always, never, anything else', async (t) => {
  const p = await backends(t, 'http-svc', 'http-svc-canary');
  const s = await serveManifests(t, {
    'main.yaml': singleIngress('foo', '/', 'foo', 'http-svc', p['http-svc']!),
    'canary.yaml': singleIngress('foo-canary', '/', 'foo', 'http-svc-canary', p['http-svc-canary']!, { [CANARY]: 'true', [A('canary-by-cookie')]: 'Canary-By-Cookie' }),
  });
  t.equal((await s.get('foo', '/', { cookie: 'Canary-By-Cookie=always' })).upstream, 'http-svc-canary');
  t.equal((await s.get('foo', '/', { cookie: 'Canary-By-Cookie=never' })).upstream, 'http-svc');
  t.equal((await s.get('foo', '/', { cookie: 'Canary-By-Cookie=badcookievalue' })).upstream, 'http-svc');
});

t.test('canaried by header pattern (regex; ignored when a value is given)', async (t) => {
  const p = await backends(t, 'http-svc', 'http-svc-canary');
  const s = await serveManifests(t, {
    'main.yaml': singleIngress('foo', '/', 'foo', 'http-svc', p['http-svc']!),
    'canary.yaml': singleIngress('foo-canary', '/', 'foo', 'http-svc-canary', p['http-svc-canary']!, {
      [CANARY]: 'true',
      [A('canary-by-header')]: 'x-region',
      [A('canary-by-header-pattern')]: '^(eu|us)-west$',
    }),
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
