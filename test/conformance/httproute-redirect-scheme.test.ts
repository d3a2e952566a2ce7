// Port of Gateway API conformance/tests/httproute-redirect-scheme.go (and
// .yaml): requestRedirect's scheme, alone and with a hostname and a status;
// the port becomes the scheme's own (443, left out).

import t from 'tap';
import { expectResponses, startGateway } from '../helpers/conformance.ts';

t.test('HTTPRouteRedirectScheme', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'redirect-scheme',
      rules: `      - matches: [{ path: { type: PathPrefix, value: /scheme } }]
        filters: [{ requestRedirect: { scheme: https } }]
      - matches: [{ path: { type: PathPrefix, value: /scheme-and-host } }]
        filters: [{ requestRedirect: { hostname: example.org, scheme: https } }]
      - matches: [{ path: { type: PathPrefix, value: /scheme-and-status } }]
        filters: [{ requestRedirect: { scheme: https, statusCode: 301 } }]
      - matches: [{ path: { type: PathPrefix, value: /scheme-and-host-and-status } }]
        filters: [{ requestRedirect: { scheme: https, statusCode: 302, hostname: example.org } }]
`,
    },
  ]);
  await expectResponses(t, gw, [
    { request: { path: '/scheme' }, status: 302, redirect: { scheme: 'https' } },
    { request: { path: '/scheme-and-host' }, status: 302, redirect: { host: 'example.org', scheme: 'https' } },
    { request: { path: '/scheme-and-status' }, status: 301, redirect: { scheme: 'https' } },
    { request: { path: '/scheme-and-host-and-status' }, status: 302, redirect: { scheme: 'https', host: 'example.org' } },
  ]);
});
