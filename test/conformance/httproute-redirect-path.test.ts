// Port of Gateway API conformance/tests/httproute-redirect-path.go (and
// .yaml): requestRedirect's path (ReplacePrefixMatch, ReplaceFullPath),
// alone and with a hostname or a status code.

import t from 'tap';
import { expectResponses, startGateway } from '../helpers/conformance.ts';

t.test('HTTPRouteRedirectPath', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'redirect-path',
      rules: `      - matches: [{ path: { type: PathPrefix, value: /original-prefix } }]
        filters: [{ requestRedirect: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix } } }]
      - matches: [{ path: { type: PathPrefix, value: /full } }]
        filters: [{ requestRedirect: { path: { type: ReplaceFullPath, replaceFullPath: /full-path-replacement } } }]
      - matches: [{ path: { type: PathPrefix, value: /path-and-host } }]
        filters: [{ requestRedirect: { hostname: example.org, path: { type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix } } }]
      - matches: [{ path: { type: PathPrefix, value: /path-and-status } }]
        filters: [{ requestRedirect: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix }, statusCode: 301 } }]
      - matches: [{ path: { type: PathPrefix, value: /full-path-and-host } }]
        filters: [{ requestRedirect: { hostname: example.org, path: { type: ReplaceFullPath, replaceFullPath: /replacement-full } } }]
      - matches: [{ path: { type: PathPrefix, value: /full-path-and-status } }]
        filters: [{ requestRedirect: { path: { type: ReplaceFullPath, replaceFullPath: /replacement-full }, statusCode: 301 } }]
`,
    },
  ]);
  // The suite's listener is on port 80, so its Locations carry 80 or no port:
  // the listener's port, which for veer here is a free one.
  const port = String(gw.port);
  await expectResponses(t, gw, [
    { request: { path: '/original-prefix/lemon' }, status: 302, redirect: { path: '/replacement-prefix/lemon', port } },
    { request: { path: '/full/path/original' }, status: 302, redirect: { path: '/full-path-replacement', port } },
    { request: { path: '/path-and-host' }, status: 302, redirect: { host: 'example.org', path: '/replacement-prefix', port } },
    { request: { path: '/path-and-status' }, status: 301, redirect: { path: '/replacement-prefix', port } },
    { request: { path: '/full-path-and-host' }, status: 302, redirect: { host: 'example.org', path: '/replacement-full', port } },
    { request: { path: '/full-path-and-status' }, status: 301, redirect: { path: '/replacement-full', port } },
  ]);
});
