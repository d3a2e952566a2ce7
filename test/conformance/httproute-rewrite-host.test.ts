// Port of Gateway API conformance/tests/httproute-rewrite-host.go (and
// .yaml): urlRewrite.hostname sets the Host the backend sees, alone and
// with a requestHeaderModifier; a rule without matches takes the rest.

import t from 'tap';
import { expectResponses, startGateway, MODIFIED_HEADERS, MODIFY_HEADERS_FILTER } from '../helpers/conformance.ts';

t.test('HTTPRouteRewriteHost', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'rewrite-host',
      hostnames: ['rewrite.example'],
      rules: `      - matches: [{ path: { type: PathPrefix, value: /one } }]
        filters: [{ urlRewrite: { hostname: one.example.org } }]
        to: v1
      - filters: [{ urlRewrite: { hostname: example.org } }]
        to: v2
      - matches: [{ path: { type: PathPrefix, value: /rewrite-host-and-modify-headers } }]
        filters:
          - urlRewrite: { hostname: test.example.org }
${MODIFY_HEADERS_FILTER}        to: v2
`,
    },
  ]);
  await expectResponses(t, gw, [
    { request: { host: 'rewrite.example', path: '/one' }, expectedRequest: { path: '/one', host: 'one.example.org' }, backend: 'v1' },
    { request: { host: 'rewrite.example', path: '/two' }, expectedRequest: { path: '/two', host: 'example.org' }, backend: 'v2' },
    {
      request: { host: 'rewrite.example', path: '/rewrite-host-and-modify-headers', headers: { 'X-Header-Remove': 'remove-val', 'X-Header-Add-Append': 'append-val-1' } },
      expectedRequest: {
        path: '/rewrite-host-and-modify-headers',
        host: 'test.example.org',
        headers: MODIFIED_HEADERS,
        absentHeaders: ['X-Header-Remove'],
      },
      backend: 'v2',
    },
  ]);
});
