// Port of Gateway API conformance/tests/httproute-timeout-request.go (and
// .yaml): timeouts.request answers 504 when the backend is slower (the echo
// backend's ?delay=1s, as the suite's), and "0s" disables it.

import t from 'tap';
import { expectResponses, startGateway } from '../helpers/conformance.ts';

t.test('HTTPRouteTimeoutRequest', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'request-timeout',
      rules: `      - matches: [{ path: { type: PathPrefix, value: /request-timeout } }]
        to: v1
        timeouts: { request: 500ms }
      - matches: [{ path: { type: PathPrefix, value: /disable-request-timeout } }]
        to: v1
        timeouts: { request: "0s" }
`,
    },
  ]);
  await expectResponses(t, gw, [
    { request: { path: '/request-timeout' }, status: 200 },
    { request: { path: '/request-timeout?delay=1s' }, status: 504 },
    { request: { path: '/disable-request-timeout?delay=1s' }, status: 200 },
  ]);
});
