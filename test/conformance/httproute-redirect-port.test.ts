// Port of Gateway API conformance/tests/httproute-redirect-port.go (and
// .yaml): requestRedirect's port, alone and with a hostname and a status.

import t from 'tap';
import { expectResponses, startGateway } from '../helpers/conformance.ts';

t.test('HTTPRouteRedirectPort', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'redirect-port',
      rules: `      - matches: [{ path: { type: PathPrefix, value: /port } }]
        filters: [{ requestRedirect: { port: 8083 } }]
      - matches: [{ path: { type: PathPrefix, value: /port-and-host } }]
        filters: [{ requestRedirect: { hostname: example.org, port: 8083 } }]
      - matches: [{ path: { type: PathPrefix, value: /port-and-status } }]
        filters: [{ requestRedirect: { port: 8083, statusCode: 301 } }]
      - matches: [{ path: { type: PathPrefix, value: /port-and-host-and-status } }]
        filters: [{ requestRedirect: { port: 8083, hostname: example.org, statusCode: 302 } }]
`,
    },
  ]);
  await expectResponses(t, gw, [
    { request: { path: '/port' }, status: 302, redirect: { port: '8083' } },
    { request: { path: '/port-and-host' }, status: 302, redirect: { host: 'example.org', port: '8083' } },
    { request: { path: '/port-and-status' }, status: 301, redirect: { port: '8083' } },
    { request: { path: '/port-and-host-and-status' }, status: 302, redirect: { port: '8083', host: 'example.org' } },
  ]);
});
