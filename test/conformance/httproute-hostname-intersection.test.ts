// Port of Gateway API conformance/tests/httproute-hostname-intersection.go
// (and .yaml): each HTTPRoute's hostnames (exact and `*.` wildcards of any
// depth, the Host's port ignored) decide which route can take a request.
//
// veer's listener takes every host: a Gateway listener `hostname` is not
// modelled. Left out, as they depend on the listener's hostname alone (the
// route itself names the host):
//   /s1 on non.matching.com and foo.nonmatchingwildcard.io, /s2 on
//   non.matching.com and wildcard.io, /s3 on non.matching.com and
//   foo.specific.com, and every /s5 case (route no-intersecting-hosts,
//   which no listener accepts); and the listeners' AttachedRoutes status
//   (veer has no Gateway status).

import t from 'tap';
import { expectResponses, startGateway } from '../helpers/conformance.ts';

const prefix = (value: string, to: string) => `      - matches: [{ path: { type: PathPrefix, value: ${value} } }]\n        to: ${to}\n`;

t.test('HTTPRoutes that do intersect with listener hostnames', async (t) => {
  const gw = await startGateway(t, [
    { name: 'specific-host-matches-listener-specific-host', hostnames: ['non.matching.com', '*.nonmatchingwildcard.io', 'very.specific.com'], rules: prefix('/s1', 'v1') },
    { name: 'specific-host-matches-listener-wildcard-host', hostnames: ['non.matching.com', 'wildcard.io', 'foo.wildcard.io', 'bar.wildcard.io', 'foo.bar.wildcard.io'], rules: prefix('/s2', 'v2') },
    { name: 'wildcard-host-matches-listener-specific-host', hostnames: ['non.matching.com', '*.specific.com'], rules: prefix('/s3', 'v3') },
    { name: 'wildcard-host-matches-listener-wildcard-host', hostnames: ['*.anotherwildcard.io'], rules: prefix('/s4', 'v1') },
  ]);
  await expectResponses(t, gw, [
    // specific-host-matches-listener-specific-host
    { request: { host: 'very.specific.com', path: '/s1' }, backend: 'v1' },
    // The port in the Host header is not part of the match.
    { request: { host: 'very.specific.com:1234', path: '/s1' }, backend: 'v1' },
    { request: { host: 'foo.wildcard.io', path: '/s1' }, status: 404 },
    { request: { host: 'very.specific.com', path: '/non-matching-prefix' }, status: 404 },
    // specific-host-matches-listener-wildcard-host
    { request: { host: 'foo.wildcard.io', path: '/s2' }, backend: 'v2' },
    { request: { host: 'bar.wildcard.io', path: '/s2' }, backend: 'v2' },
    { request: { host: 'foo.bar.wildcard.io', path: '/s2' }, backend: 'v2' },
    { request: { host: 'very.specific.com', path: '/s2' }, status: 404 },
    { request: { host: 'foo.wildcard.io', path: '/non-matching-prefix' }, status: 404 },
    // wildcard-host-matches-listener-specific-host
    { request: { host: 'very.specific.com', path: '/s3' }, backend: 'v3' },
    { request: { host: 'foo.wildcard.io', path: '/s3' }, status: 404 },
    { request: { host: 'very.specific.com', path: '/non-matching-prefix' }, status: 404 },
    // wildcard-host-matches-listener-wildcard-host
    { request: { host: 'foo.anotherwildcard.io', path: '/s4' }, backend: 'v1' },
    { request: { host: 'bar.anotherwildcard.io', path: '/s4' }, backend: 'v1' },
    { request: { host: 'foo.bar.anotherwildcard.io', path: '/s4' }, backend: 'v1' },
    { request: { host: 'anotherwildcard.io', path: '/s4' }, status: 404 },
    { request: { host: 'foo.wildcard.io', path: '/s4' }, status: 404 },
    { request: { host: 'very.specific.com', path: '/s4' }, status: 404 },
    { request: { host: 'foo.anotherwildcard.io', path: '/non-matching-prefix' }, status: 404 },
  ]);
});

t.test('HTTPRoutes intersects with an unspecified hostname listener', async (t) => {
  const gw = await startGateway(t, [{ name: 'httproute-hostname-intersection-all', hostnames: ['first.com', 'sub.first.com', 'second.com', 'sub.second.com'], rules: '      - to: v2\n' }]);
  await expectResponses(t, gw, [
    { request: { host: 'first.com', path: '/' }, backend: 'v2' },
    { request: { host: 'sub.first.com', path: '/' }, backend: 'v2' },
    { request: { host: 'second.com', path: '/' }, backend: 'v2' },
    { request: { host: 'sub.second.com', path: '/' }, backend: 'v2' },
    // Hosts the route does not name.
    { request: { host: 'third.com', path: '/' }, status: 404 },
    { request: { host: 'sub.third.com', path: '/' }, status: 404 },
  ]);
});
