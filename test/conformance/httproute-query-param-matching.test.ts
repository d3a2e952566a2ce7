// Port of Gateway API conformance/tests/httproute-query-param-matching.go
// (and .yaml): Exact query matches (names and values case-sensitive), with
// path and header matches, ORed matches, ANDed conditions, and precedence
// (a longer path, then more headers, before more query params).

import t from 'tap';
import { expectResponses, startGateway } from '../helpers/conformance.ts';

t.test('HTTPRouteQueryParamMatching', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'query-param-matching',
      rules: `      - matches: [{ queryParams: [{ name: animal, value: whale }] }]
        to: v1
      - matches: [{ queryParams: [{ name: animal, value: dolphin }] }]
        to: v2
      - matches:
          - queryParams: [{ name: animal, value: dolphin }, { name: color, value: blue }]
          - queryParams: [{ name: ANIMAL, value: Whale }]
        to: v3
      - matches: [{ path: { type: PathPrefix, value: /path1 }, queryParams: [{ name: animal, value: whale }] }]
        to: v1
      - matches: [{ headers: [{ name: version, value: one }], queryParams: [{ name: animal, value: whale }] }]
        to: v2
      - matches: [{ path: { type: PathPrefix, value: /path2 }, headers: [{ name: version, value: two }], queryParams: [{ name: animal, value: whale }] }]
        to: v3
      - matches:
          - { path: { type: PathPrefix, value: /path3 }, queryParams: [{ name: animal, value: shark }] }
          - { path: { type: PathPrefix, value: /path4 }, headers: [{ name: version, value: three }], queryParams: [{ name: animal, value: kraken }] }
        to: v1
      - matches: [{ path: { type: PathPrefix, value: /path5 } }]
        to: v1
      - matches: [{ queryParams: [{ name: animal, value: hydra }] }]
        to: v2
      - matches: [{ headers: [{ name: version, value: four }] }]
        to: v3
`,
    },
  ]);
  await expectResponses(t, gw, [
    { request: { path: '/?animal=whale' }, backend: 'v1' },
    { request: { path: '/?animal=dolphin' }, backend: 'v2' },
    { request: { path: '/?animal=dolphin&color=blue' }, backend: 'v3' },
    { request: { path: '/?ANIMAL=Whale' }, backend: 'v3' },
    { request: { path: '/?animal=whale&otherparam=irrelevant' }, backend: 'v1' },
    { request: { path: '/?animal=dolphin&color=yellow' }, backend: 'v2' },
    { request: { path: '/?color=blue' }, status: 404 },
    { request: { path: '/?animal=dog' }, status: 404 },
    { request: { path: '/?animal=whaledolphin' }, status: 404 },
    { request: { path: '/' }, status: 404 },
    // Combinations with other core matches.
    { request: { path: '/path1?animal=whale' }, backend: 'v1' },
    { request: { path: '/?animal=whale', headers: { version: 'one' } }, backend: 'v2' },
    { request: { path: '/path2?animal=whale', headers: { version: 'two' } }, backend: 'v3' },
    // ORed matches: either one is enough.
    { request: { path: '/path3?animal=shark' }, backend: 'v1' },
    { request: { path: '/path4?animal=kraken', headers: { version: 'three' } }, backend: 'v1' },
    // ANDed conditions: a subset is not enough.
    { request: { path: '/?animal=shark' }, status: 404 },
    { request: { path: '/path4?animal=kraken' }, status: 404 },
    // Precedence.
    { request: { path: '/path5?animal=hydra' }, backend: 'v1' },
    { request: { path: '/?animal=hydra', headers: { version: 'four' } }, backend: 'v3' },
  ]);
});
