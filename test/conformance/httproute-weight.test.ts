// Port of Gateway API conformance/tests/httproute-weight.go (and .yaml):
// backendRefs weighted 70/30/0 share the traffic by weight, within ±0.05
// over 500 requests from one client without a sticky key, and the weight-0
// backend gets nothing. Like the suite, a distribution out of tolerance is
// drawn again, up to weight.MaxTestRetries times.

import t from 'tap';
import { expectResponse, startGateway, WEIGHT_ATTEMPTS, weightedDistributionError } from '../helpers/conformance.ts';

t.test('HTTPRouteWeight', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'weighted-backends',
      rules: `      - split: { weights: { v1: 70, v2: 30, v3: 0 } }
`,
    },
  ]);
  await expectResponse(t, gw, { request: { path: '/' }, status: 200 });
  const errors: string[] = [];
  for (let i = 0; i < WEIGHT_ATTEMPTS; i++) {
    const error = await weightedDistributionError(gw, { path: '/' }, { v1: 0.7, v2: 0.3, v3: 0 });
    if (error === null) break;
    errors.push(error);
  }
  t.ok(errors.length < WEIGHT_ATTEMPTS, 'a distribution that matches the weights', { errors });
  t.equal(gw.seen.v3.length, 0, 'the weight-0 backend got no request at all');
});
