// Regression: a mirrored request that carries no body to copy (a GET, or a
// body too large or unsized to mirror) re-entered the mirror decision for
// its real exchange, forever (stack overflow, no answer). Each is answered
// by its own version once, and counted once.

import t from 'tap';
import { startGateway } from '../helpers/conformance.ts';
import { formatRequest, rawRequest, waitFor } from '../helpers/http.ts';

t.test('a GET and an oversized POST on a mirroring rule are answered once', async (t) => {
  const gw = await startGateway(t, [{ name: 'shop', rules: '      - filters: [{ requestMirror: { to: v2 } }]\n        to: v1\n' }]);
  const get = await rawRequest(gw.port, formatRequest('GET', '/get', [['Host', 'shop.test'], ['Connection', 'close']]), { timeoutMs: 5000 });
  t.equal(get.status, 200);
  t.ok(await waitFor(() => gw.seen.v2.some((r) => r.path === '/get')), 'the GET is mirrored');
  const big = 'x'.repeat(100 * 1024);
  const post = await rawRequest(gw.port, formatRequest('POST', '/big', [['Host', 'shop.test'], ['Content-Length', String(big.length)], ['Connection', 'close']], big), { timeoutMs: 5000 });
  t.equal(post.status, 200, 'a body over the mirror bound still reaches its version');
  t.equal(gw.seen.v1.filter((r) => r.path === '/big').length, 1, 'once');
  t.equal(gw.seen.v2.filter((r) => r.path === '/big').length, 0, 'and is not mirrored');
  const metrics = await (await fetch(`${gw.veer.adminUrl}/metrics`)).text();
  t.match(metrics, /veer_mirror_requests_total\{service="shop",version="v2",result="skipped"\} 1\n/, 'counted skipped once');
});
