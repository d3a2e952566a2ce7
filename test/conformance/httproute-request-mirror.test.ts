// Port of Gateway API conformance/tests/httproute-request-mirror.go (and
// .yaml): requestMirror sends a copy to another backend while the real
// request is answered by its own, alone and after a requestHeaderModifier.
// As in the suite, each request carries a unique request-id query parameter
// and the mirror backend must see that path (the suite reads its logs).

import { randomUUID } from 'node:crypto';
import t from 'tap';
import { expectResponse, startGateway, type ExpectedResponse, MODIFIED_HEADERS, MODIFY_HEADERS_FILTER } from '../helpers/conformance.ts';
import { waitFor } from '../helpers/http.ts';

t.test('HTTPRouteRequestMirror', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'request-mirror',
      rules: `      - matches: [{ path: { type: PathPrefix, value: /mirror } }]
        filters: [{ requestMirror: { to: v2 } }]
        to: v1
      - matches: [{ path: { type: PathPrefix, value: /mirror-and-modify-headers } }]
        filters:
${MODIFY_HEADERS_FILTER}          - requestMirror: { to: v2 }
        to: v1
`,
    },
  ]);
  const cases = (id: string): ExpectedResponse[] => [
    { request: { path: `/mirror?request-id=${id}` }, expectedRequest: { path: `/mirror?request-id=${id}` }, backend: 'v1' },
    {
      request: { path: `/mirror-and-modify-headers?request-id=${id}`, headers: { 'X-Header-Remove': 'remove-val', 'X-Header-Add-Append': 'append-val-1' } },
      expectedRequest: {
        path: `/mirror-and-modify-headers?request-id=${id}`,
        headers: MODIFIED_HEADERS,
        absentHeaders: ['X-Header-Remove'],
      },
      backend: 'v1',
    },
  ];
  for (const c of cases(randomUUID())) {
    await t.test(c.request.path, async (t) => {
      await expectResponse(t, gw, c);
      t.ok(await waitFor(() => gw.seen.v2.some((r) => r.path === c.request.path)), 'mirrored to infra-backend-v2');
      t.notOk(gw.seen.v1.filter((r) => r.path === c.request.path).length > 1, 'infra-backend-v1 saw it once');
    });
  }
});
