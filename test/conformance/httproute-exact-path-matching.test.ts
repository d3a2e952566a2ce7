// Port of Gateway API conformance/tests/httproute-exact-path-matching.go
// (and .yaml): Exact paths match the whole path, case-sensitively, no
// trailing slash or sub-path.

import t from 'tap';
import { expectResponses, startGateway } from '../helpers/conformance.ts';

t.test('HTTPExactPathMatching', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'exact-matching',
      rules: `      - matches: [{ path: { type: Exact, value: /one } }]
        to: v1
      - matches: [{ path: { type: Exact, value: /two } }]
        to: v2
`,
    },
  ]);
  await expectResponses(t, gw, [
    { request: { path: '/one' }, backend: 'v1' },
    { request: { path: '/two' }, backend: 'v2' },
    { request: { path: '/' }, status: 404 },
    { request: { path: '/one/example' }, status: 404 },
    { request: { path: '/two/' }, status: 404 },
    { request: { path: '/Two' }, status: 404 },
  ]);
});
