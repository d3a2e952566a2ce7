// Port of Gateway API conformance/tests/httproute-rewrite-path.go (and
// .yaml): urlRewrite's ReplacePrefixMatch (including `/`, which strips the
// prefix) and ReplaceFullPath, alone and with a requestHeaderModifier.

import t from 'tap';
import { expectResponses, startGateway, MODIFIED_HEADERS, MODIFY_HEADERS_FILTER } from '../helpers/conformance.ts';

t.test('HTTPRouteRewritePath', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'rewrite-path',
      rules: `      - matches: [{ path: { type: PathPrefix, value: /prefix/one } }]
        filters: [{ urlRewrite: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /one } } }]
        to: v1
      - matches: [{ path: { type: PathPrefix, value: /strip-prefix } }]
        filters: [{ urlRewrite: { path: { type: ReplacePrefixMatch, replacePrefixMatch: / } } }]
        to: v1
      - matches: [{ path: { type: PathPrefix, value: /full/one } }]
        filters: [{ urlRewrite: { path: { type: ReplaceFullPath, replaceFullPath: /one } } }]
        to: v1
      - matches: [{ path: { type: PathPrefix, value: /full/rewrite-path-and-modify-headers } }]
        filters:
          - urlRewrite: { path: { type: ReplaceFullPath, replaceFullPath: /test } }
${MODIFY_HEADERS_FILTER}        to: v1
      - matches: [{ path: { type: PathPrefix, value: /prefix/rewrite-path-and-modify-headers } }]
        filters:
          - urlRewrite: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /prefix } }
${MODIFY_HEADERS_FILTER}        to: v1
`,
    },
  ]);
  const sent = { 'X-Header-Remove': 'remove-val', 'X-Header-Add-Append': 'append-val-1', 'X-Header-Set': 'set-val' };
  await expectResponses(t, gw, [
    { request: { path: '/prefix/one/two' }, expectedRequest: { path: '/one/two' }, backend: 'v1' },
    { request: { path: '/strip-prefix/three' }, expectedRequest: { path: '/three' }, backend: 'v1' },
    { request: { path: '/strip-prefix' }, expectedRequest: { path: '/' }, backend: 'v1' },
    { request: { path: '/full/one/two' }, expectedRequest: { path: '/one' }, backend: 'v1' },
    {
      request: { path: '/full/rewrite-path-and-modify-headers/test', headers: sent },
      expectedRequest: { path: '/test', headers: MODIFIED_HEADERS, absentHeaders: ['X-Header-Remove'] },
      backend: 'v1',
    },
    {
      request: { path: '/prefix/rewrite-path-and-modify-headers/one', headers: sent },
      expectedRequest: { path: '/prefix/one', headers: MODIFIED_HEADERS, absentHeaders: ['X-Header-Remove'] },
      backend: 'v1',
    },
  ]);
});
