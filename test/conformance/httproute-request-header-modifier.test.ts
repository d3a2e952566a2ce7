// Port of Gateway API conformance/tests/httproute-request-header-modifier.go
// (and .yaml): requestHeaderModifier's set (replaces), add (appends to the
// client's value), remove, several at once, and names matched without case.

import t from 'tap';
import { expectResponses, MULTIPLE_EXPECTED, MULTIPLE_MODIFIER, startGateway } from '../helpers/conformance.ts';

t.test('HTTPRouteRequestHeaderModifier', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'request-header-modifier',
      rules: `      - matches: [{ path: { type: PathPrefix, value: /set } }]
        filters: [{ requestHeaderModifier: { set: [{ name: X-Header-Set, value: set-overwrites-values }] } }]
        to: v1
      - matches: [{ path: { type: PathPrefix, value: /add } }]
        filters: [{ requestHeaderModifier: { add: [{ name: X-Header-Add, value: add-appends-values }] } }]
        to: v1
      - matches: [{ path: { type: PathPrefix, value: /remove } }]
        filters: [{ requestHeaderModifier: { remove: [X-Header-Remove] } }]
        to: v1
      - matches: [{ path: { type: PathPrefix, value: /multiple } }]
        filters:
          - requestHeaderModifier:
${MULTIPLE_MODIFIER}        to: v1
      - matches: [{ path: { type: PathPrefix, value: /case-insensitivity } }]
        filters:
          - requestHeaderModifier:
              set: [{ name: X-Header-Set, value: header-set }]
              add: [{ name: X-Header-Add, value: header-add }]
              remove: [X-Header-Remove]
        to: v1
`,
    },
  ]);
  await expectResponses(t, gw, [
    {
      request: { path: '/set', headers: { 'Some-Other-Header': 'val' } },
      expectedRequest: { path: '/set', headers: { 'Some-Other-Header': 'val', 'X-Header-Set': 'set-overwrites-values' } },
      backend: 'v1',
    },
    {
      request: { path: '/set', headers: { 'Some-Other-Header': 'val', 'X-Header-Set': 'some-other-value' } },
      expectedRequest: { path: '/set', headers: { 'Some-Other-Header': 'val', 'X-Header-Set': 'set-overwrites-values' } },
      backend: 'v1',
    },
    {
      request: { path: '/add', headers: { 'Some-Other-Header': 'val' } },
      expectedRequest: { path: '/add', headers: { 'Some-Other-Header': 'val', 'X-Header-Add': 'add-appends-values' } },
      backend: 'v1',
    },
    {
      request: { path: '/add', headers: { 'Some-Other-Header': 'val', 'X-Header-Add': 'some-other-value' } },
      expectedRequest: { path: '/add', headers: { 'Some-Other-Header': 'val', 'X-Header-Add': 'some-other-value,add-appends-values' } },
      backend: 'v1',
    },
    {
      request: { path: '/remove', headers: { 'X-Header-Remove': 'val' } },
      expectedRequest: { path: '/remove', absentHeaders: ['X-Header-Remove'] },
      backend: 'v1',
    },
    {
      request: { path: '/multiple', headers: { 'X-Header-Set-2': 'set-val-2', 'X-Header-Add-2': 'add-val-2', 'X-Header-Remove-2': 'remove-val-2', 'Another-Header': 'another-header-val' } },
      expectedRequest: {
        path: '/multiple',
        headers: MULTIPLE_EXPECTED,
        absentHeaders: ['X-Header-Remove-1', 'X-Header-Remove-2'],
      },
      backend: 'v1',
    },
    {
      // The filter names headers canonically, the request in lowercase.
      request: { path: '/case-insensitivity', headers: { 'x-header-set': 'original-val-set', 'x-header-add': 'original-val-add', 'x-header-remove': 'original-val-remove', 'Another-Header': 'another-header-val' } },
      expectedRequest: {
        path: '/case-insensitivity',
        headers: { 'X-Header-Set': 'header-set', 'X-Header-Add': 'original-val-add,header-add', 'Another-Header': 'another-header-val' },
        absentHeaders: ['x-header-remove', 'X-Header-Remove'],
      },
      backend: 'v1',
    },
  ]);
});
