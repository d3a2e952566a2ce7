// Port of Gateway API conformance/tests/httproute-path-match-order.go (and
// .yaml): Exact paths before prefixes, the longest prefix first, whatever
// the rules' order.

import t from 'tap';
import { expectResponses, startGateway } from '../helpers/conformance.ts';

t.test('HTTPRoutePathMatchOrder', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'path-matching-order',
      rules: `      - matches: [{ path: { type: Exact, value: /match } }]
        to: v1
      - matches: [{ path: { type: Exact, value: /match/exact } }]
        to: v2
      - matches: [{ path: { type: Exact, value: /match/exact/one } }]
        to: v3
      - matches: [{ path: { type: PathPrefix, value: /match/ } }]
        to: v3
      - matches: [{ path: { type: PathPrefix, value: /match/prefix/ } }]
        to: v1
      - matches: [{ path: { type: PathPrefix, value: /match/prefix/one } }]
        to: v2
`,
    },
  ]);
  await expectResponses(t, gw, [
    { request: { path: '/match/exact/one' }, backend: 'v3' },
    { request: { path: '/match/exact' }, backend: 'v2' },
    { request: { path: '/match' }, backend: 'v1' },
    { request: { path: '/match/prefix/one/any' }, backend: 'v2' },
    { request: { path: '/match/prefix/any' }, backend: 'v1' },
    { request: { path: '/match/any' }, backend: 'v3' },
  ]);
});
