// Port of Gateway API conformance/tests/httproute-response-header-modifier.go
// (and .yaml): responseHeaderModifier's set, add, remove on the headers the
// backend answers with (asked for with X-Echo-Set-Header, as the suite's
// echo backend does), names of any case, and both modifiers in one rule.

import t from 'tap';
import { expectResponses, MODIFY_HEADERS_FILTER, MULTIPLE_EXPECTED, MULTIPLE_MODIFIER, startGateway } from '../helpers/conformance.ts';

t.test('HTTPRouteResponseHeaderModifier', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'response-header-modifier',
      rules: `      - matches: [{ path: { type: PathPrefix, value: /set } }]
        filters: [{ responseHeaderModifier: { set: [{ name: X-Header-Set, value: set-overwrites-values }] } }]
        to: v1
      - matches: [{ path: { type: PathPrefix, value: /add } }]
        filters: [{ responseHeaderModifier: { add: [{ name: X-Header-Add, value: add-appends-values }] } }]
        to: v1
      - matches: [{ path: { type: PathPrefix, value: /remove } }]
        filters: [{ responseHeaderModifier: { remove: [X-Header-Remove] } }]
        to: v1
      - matches: [{ path: { type: PathPrefix, value: /multiple } }]
        filters:
          - responseHeaderModifier:
${MULTIPLE_MODIFIER}        to: v1
      - matches: [{ path: { type: PathPrefix, value: /case-insensitivity } }]
        filters:
          - responseHeaderModifier:
              set: [{ name: X-Header-Set, value: header-set }]
              add:
                - { name: X-Header-Add, value: header-add }
                - { name: x-lowercase-add, value: lowercase-add }
                - { name: x-Mixedcase-ADD-1, value: mixedcase-add-1 }
                - { name: X-mixeDcase-add-2, value: mixedcase-add-2 }
                - { name: X-UPPERCASE-ADD, value: uppercase-add }
              remove: [X-Header-Remove]
        to: v1
      - matches: [{ path: { type: PathPrefix, value: /response-and-request-header-modifiers } }]
        filters:
          - responseHeaderModifier:
              set: [{ name: X-Header-Set-1, value: header-set-1 }, { name: X-Header-Set-2, value: header-set-2 }]
              add: [{ name: X-Header-Add-1, value: header-add-1 }, { name: X-Header-Add-2, value: header-add-2 }]
              remove: [X-Header-Remove-1, X-Header-Remove-2]
${MODIFY_HEADERS_FILTER}        to: v1
`,
    },
  ]);
  await expectResponses(t, gw, [
    {
      request: { path: '/set' },
      backendSetResponseHeaders: { 'Some-Other-Header': 'val' },
      response: { headers: { 'Some-Other-Header': 'val', 'X-Header-Set': 'set-overwrites-values' } },
      backend: 'v1',
    },
    {
      request: { path: '/set' },
      backendSetResponseHeaders: { 'Some-Other-Header': 'val', 'X-Header-Set': 'some-other-value' },
      response: { headers: { 'Some-Other-Header': 'val', 'X-Header-Set': 'set-overwrites-values' } },
      backend: 'v1',
    },
    {
      request: { path: '/add' },
      backendSetResponseHeaders: { 'Some-Other-Header': 'val' },
      response: { headers: { 'Some-Other-Header': 'val', 'X-Header-Add': 'add-appends-values' } },
      backend: 'v1',
    },
    {
      request: { path: '/add' },
      backendSetResponseHeaders: { 'Some-Other-Header': 'val', 'X-Header-Add': 'some-other-value' },
      response: { headers: { 'Some-Other-Header': 'val', 'X-Header-Add': 'some-other-value,add-appends-values' } },
      backend: 'v1',
    },
    {
      request: { path: '/remove' },
      backendSetResponseHeaders: { 'X-Header-Remove': 'val' },
      response: { absentHeaders: ['X-Header-Remove'] },
      backend: 'v1',
    },
    {
      request: { path: '/multiple' },
      backendSetResponseHeaders: { 'X-Header-Set-2': 'set-val-2', 'X-Header-Add-2': 'add-val-2', 'X-Header-Remove-2': 'remove-val-2', 'Another-Header': 'another-header-val', 'X-Header-Remove-1': 'val' },
      response: {
        headers: MULTIPLE_EXPECTED,
        absentHeaders: ['X-Header-Remove-1', 'X-Header-Remove-2'],
      },
      backend: 'v1',
    },
    {
      request: { path: '/case-insensitivity' },
      backendSetResponseHeaders: { 'x-header-set': 'original-val-set', 'x-header-add': 'original-val-add', 'x-header-remove': 'original-val-remove', 'Another-Header': 'another-header-val' },
      response: {
        headers: {
          'X-Header-Set': 'header-set',
          'X-Header-Add': 'original-val-add,header-add',
          'X-Lowercase-Add': 'lowercase-add',
          'X-Mixedcase-Add-1': 'mixedcase-add-1',
          'X-Mixedcase-Add-2': 'mixedcase-add-2',
          'X-Uppercase-Add': 'uppercase-add',
          'Another-Header': 'another-header-val',
        },
        absentHeaders: ['x-header-remove', 'X-Header-Remove'],
      },
      backend: 'v1',
    },
    {
      request: { path: '/response-and-request-header-modifiers', headers: { 'X-Header-Remove': 'remove-val', 'X-Header-Add-Append': 'append-val-1', 'X-Header-Echo': 'echo' } },
      backendSetResponseHeaders: { 'X-Header-Set-2': 'set-val-2', 'X-Header-Add-2': 'add-val-2', 'X-Header-Remove-2': 'remove-val-2', 'Another-Header': 'another-header-val', 'X-Header-Remove-1': 'remove-val-1', 'X-Header-Echo': 'echo' },
      expectedRequest: {
        path: '/response-and-request-header-modifiers',
        headers: { 'X-Header-Add': 'header-val-1', 'X-Header-Set': 'set-overwrites-values', 'X-Header-Add-Append': 'append-val-1,header-val-2', 'X-Header-Echo': 'echo' },
        absentHeaders: ['X-Header-Remove'],
      },
      response: {
        headers: {
          'X-Header-Set-1': 'header-set-1',
          'X-Header-Set-2': 'header-set-2',
          'X-Header-Add-1': 'header-add-1',
          'X-Header-Add-2': 'add-val-2,header-add-2',
          'Another-Header': 'another-header-val',
          'X-Header-Echo': 'echo',
        },
        absentHeaders: ['X-Header-Remove-1', 'X-Header-Remove-2'],
      },
      backend: 'v1',
    },
  ]);
});
