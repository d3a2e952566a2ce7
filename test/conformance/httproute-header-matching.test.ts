// Port of Gateway API conformance/tests/httproute-header-matching.go (and
// .yaml): Exact header matches, ANDed within a match, ORed across matches,
// the match with more headers winning; no rule matching: 404.

import t from 'tap';
import { expectResponses, startGateway } from '../helpers/conformance.ts';

t.test('HTTPRouteHeaderMatching', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'header-matching',
      rules: `      - matches: [{ headers: [{ name: version, value: one }] }]
        to: v1
      - matches: [{ headers: [{ name: version, value: two }] }]
        to: v2
      - matches: [{ headers: [{ name: version, value: two }, { name: color, value: orange }] }]
        to: v1
      - matches: [{ headers: [{ name: color, value: blue }] }, { headers: [{ name: color, value: green }] }]
        to: v1
      - matches: [{ headers: [{ name: color, value: red }] }, { headers: [{ name: color, value: yellow }] }]
        to: v2
`,
    },
  ]);
  await expectResponses(t, gw, [
    { request: { path: '/', headers: { Version: 'one' } }, backend: 'v1' },
    { request: { path: '/', headers: { Version: 'two' } }, backend: 'v2' },
    { request: { path: '/', headers: { Version: 'two', Color: 'orange' } }, backend: 'v1' },
    { request: { path: '/', headers: { Version: 'two', Color: 'blue' } }, backend: 'v2' },
    { request: { path: '/', headers: { Color: 'orange' } }, status: 404 },
    { request: { path: '/', headers: { 'Some-Other-Header': 'one' } }, status: 404 },
    { request: { path: '/', headers: { Color: 'blue' } }, backend: 'v1' },
    { request: { path: '/', headers: { Color: 'green' } }, backend: 'v1' },
    { request: { path: '/', headers: { Color: 'red' } }, backend: 'v2' },
    { request: { path: '/', headers: { Color: 'yellow' } }, backend: 'v2' },
    { request: { path: '/', headers: { Color: 'purple' } }, status: 404 },
  ]);
});
