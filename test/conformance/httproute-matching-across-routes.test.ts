// Port of Gateway API conformance/tests/httproute-matching-across-routes.go
// (and .yaml): two HTTPRoutes (two veer services) share a hostname; their
// matches compete by precedence across both, each only on its own hostnames.

import t from 'tap';
import { expectResponses, startGateway } from '../helpers/conformance.ts';

t.test('HTTPRouteMatchingAcrossRoutes', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'matching-part1',
      hostnames: ['example.com', 'example.net'],
      rules: `      - matches: [{ path: { type: PathPrefix, value: / } }, { headers: [{ name: version, value: one }] }]
        to: v1
`,
    },
    {
      name: 'matching-part2',
      hostnames: ['example.com'],
      rules: `      - matches: [{ path: { type: PathPrefix, value: /v2 } }, { headers: [{ name: version, value: two }] }]
        to: v2
`,
    },
  ]);
  await expectResponses(t, gw, [
    { request: { host: 'example.com', path: '/' }, backend: 'v1' },
    { request: { host: 'example.com', path: '/example' }, backend: 'v1' },
    { request: { host: 'example.net', path: '/example' }, backend: 'v1' },
    { request: { host: 'example.com', path: '/example', headers: { Version: 'one' } }, backend: 'v1' },
    { request: { host: 'example.com', path: '/v2' }, backend: 'v2' },
    // v2 matches are limited to example.com.
    { request: { host: 'example.net', path: '/v2' }, backend: 'v1' },
    { request: { host: 'example.com', path: '/v2/example' }, backend: 'v2' },
    { request: { host: 'example.com', path: '/', headers: { Version: 'two' } }, backend: 'v2' },
  ]);
});
