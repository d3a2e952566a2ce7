// Port of Gateway API conformance/tests/httproute-redirect-host-and-status.go
// (and .yaml): requestRedirect's hostname, with the default status (302)
// and with statusCode 301; no backend is called.

import t from 'tap';
import { expectResponses, startGateway } from '../helpers/conformance.ts';

t.test('HTTPRouteRedirectHostAndStatus', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'redirect-host-and-status',
      rules: `      - matches: [{ path: { type: PathPrefix, value: /hostname-redirect } }]
        filters: [{ requestRedirect: { hostname: example.org } }]
      - matches: [{ path: { type: PathPrefix, value: /host-and-status } }]
        filters: [{ requestRedirect: { statusCode: 301, hostname: example.org } }]
`,
    },
  ]);
  // The suite's listener is on port 80, so its Locations carry 80 or no port:
  // the listener's port, which for veer here is a free one.
  const port = String(gw.port);
  await expectResponses(t, gw, [
    { request: { path: '/hostname-redirect' }, status: 302, redirect: { host: 'example.org', port } },
    { request: { path: '/host-and-status' }, status: 301, redirect: { host: 'example.org', port } },
  ]);
  t.equal(gw.seen.v1.length + gw.seen.v2.length + gw.seen.v3.length, 0, 'no backend was called');
});
