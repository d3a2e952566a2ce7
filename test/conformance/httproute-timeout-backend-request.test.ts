// Port of Gateway API conformance/tests/httproute-timeout-backend-request.go
// (and .yaml): timeouts.backendRequest answers 504 when the backend is
// slower (the echo backend's ?delay=1s, as the suite's), and "0s" disables it.

import t from 'tap';
import { expectResponses, startGateway } from '../helpers/conformance.ts';

t.test('HTTPRouteTimeoutBackendRequest', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'backend-request-timeout',
      rules: `      - matches: [{ path: { type: PathPrefix, value: /backend-timeout } }]
        to: v1
        timeouts: { backendRequest: 500ms }
      - matches: [{ path: { type: PathPrefix, value: /disable-backend-timeout } }]
        to: v1
        timeouts: { backendRequest: "0s" }
`,
    },
  ]);
  await expectResponses(t, gw, [
    { request: { path: '/backend-timeout' }, status: 200 },
    { request: { path: '/backend-timeout?delay=1s' }, status: 504 },
    { request: { path: '/disable-backend-timeout?delay=1s' }, status: 200 },
  ]);
});
