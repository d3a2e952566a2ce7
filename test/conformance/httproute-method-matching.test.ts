// Port of Gateway API conformance/tests/httproute-method-matching.go (and
// .yaml): method matches alone and with path and header matches, ORed
// matches, ANDed conditions, and precedence (a longer path before a method,
// a method before headers).

import t from 'tap';
import { expectResponses, startGateway } from '../helpers/conformance.ts';

t.test('HTTPRouteMethodMatching', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'method-matching',
      rules: `      - matches: [{ method: POST }]
        to: v1
      - matches: [{ method: GET }]
        to: v2
      - matches: [{ path: { type: PathPrefix, value: /path1 }, method: GET }]
        to: v1
      - matches: [{ headers: [{ name: version, value: one }], method: PUT }]
        to: v2
      - matches: [{ path: { type: PathPrefix, value: /path2 }, headers: [{ name: version, value: two }], method: POST }]
        to: v3
      - matches:
          - { path: { type: PathPrefix, value: /path3 }, method: PATCH }
          - { path: { type: PathPrefix, value: /path4 }, headers: [{ name: version, value: three }], method: DELETE }
        to: v1
      - matches: [{ path: { type: PathPrefix, value: /path5 } }]
        to: v1
      - matches: [{ method: PATCH }]
        to: v2
      - matches: [{ headers: [{ name: version, value: four }] }]
        to: v3
`,
    },
  ]);
  await expectResponses(t, gw, [
    { request: { method: 'POST', path: '/' }, backend: 'v1' },
    { request: { method: 'GET', path: '/' }, backend: 'v2' },
    { request: { method: 'HEAD', path: '/' }, status: 404 },
    // Combinations with other core matches.
    { request: { method: 'GET', path: '/path1' }, backend: 'v1' },
    { request: { method: 'PUT', path: '/', headers: { version: 'one' } }, backend: 'v2' },
    { request: { method: 'POST', path: '/path2', headers: { version: 'two' } }, backend: 'v3' },
    // ORed matches: either one is enough.
    { request: { method: 'PATCH', path: '/path3' }, backend: 'v1' },
    { request: { method: 'DELETE', path: '/path4', headers: { version: 'three' } }, backend: 'v1' },
    // ANDed conditions: a subset is not enough.
    { request: { method: 'PUT', path: '/' }, status: 404 },
    { request: { method: 'DELETE', path: '/path4' }, status: 404 },
    // Precedence.
    { request: { method: 'PATCH', path: '/path5' }, backend: 'v1' },
    { request: { method: 'PATCH', path: '/', headers: { version: 'four' } }, backend: 'v2' },
  ]);
});
