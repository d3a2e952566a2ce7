// Port of Gateway API conformance/tests/httproute-matching.go (and .yaml):
// PathPrefix by whole segments, ORed path and header matches, the longer
// prefix winning.

import t from 'tap';
import { expectResponses, startGateway } from '../helpers/conformance.ts';

t.test('HTTPRouteMatching', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'matching',
      rules: `      - matches: [{ path: { type: PathPrefix, value: / } }, { headers: [{ name: version, value: one }] }]
        to: v1
      - matches: [{ path: { type: PathPrefix, value: /v2 } }, { headers: [{ name: version, value: two }] }]
        to: v2
`,
    },
  ]);
  await expectResponses(t, gw, [
    { request: { path: '/' }, backend: 'v1' },
    { request: { path: '/example' }, backend: 'v1' },
    { request: { path: '/', headers: { Version: 'one' } }, backend: 'v1' },
    { request: { path: '/v2' }, backend: 'v2' },
    { request: { path: '/v2/example' }, backend: 'v2' },
    { request: { path: '/', headers: { Version: 'two' } }, backend: 'v2' },
    { request: { path: '/v2/' }, backend: 'v2' },
    // Not a path segment prefix, so not under /v2.
    { request: { path: '/v2example' }, backend: 'v1' },
    { request: { path: '/foo/v2/example' }, backend: 'v1' },
  ]);
});
