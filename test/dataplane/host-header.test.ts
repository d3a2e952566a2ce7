// Regression: two Host headers let any client abort a rollout (veer routed
// by the first, undici refused the request, and the 502 counted against the
// chosen version). A Host that is repeated, empty or not a host is the
// client's fault: 400, closed, never routed, never counted.

import t from 'tap';
import { sendRawUntilClose } from '../helpers/http.ts';
import { startUpstream } from '../helpers/upstreams.ts';
import { runVeerIn, serviceConfig } from '../helpers/veer.ts';

/** Everything the server sends back for `bytes`, until it closes the connection. */
const raw = async (port: number, bytes: string): Promise<string> => (await sendRawUntilClose(port, bytes)).text;

t.test('a repeated, empty or malformed Host is answered 400 and closed, and counted against no version', async (t) => {
  const upstream = await startUpstream('v1');
  t.teardown(() => upstream.close());
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: upstream.url } }));
  const port = veer.veer.dataAddress.port;
  for (const [what, head] of [
    ['two Host lines', 'Host: shop.example.com\r\nHost: x\r\n'],
    ['two Host lines, same value', 'Host: shop\r\nHost: shop\r\n'],
    ['an empty Host', 'Host: \r\n'],
    ['a Host with a slash', 'Host: a/b\r\n'],
    ['a Host with userinfo', 'Host: user@shop\r\n'],
  ] as const) {
    const answer = await raw(port, `GET / HTTP/1.1\r\n${head}\r\n`);
    t.match(answer, /^HTTP\/1\.1 400 /, `${what}: 400`);
    t.match(answer, /"code":"bad_request"/, `${what}: the bad_request code`);
    t.match(answer, /connection: close/i, `${what}: and the connection is closed`);
  }
  t.equal(upstream.seen.length, 0, 'nothing reached the upstream');
  t.same([...veer.veer.metrics.recorder.records()], [], 'and no version counted a request or an error');
  const good = await raw(port, 'GET / HTTP/1.1\r\nHost: shop.example.com:8080\r\nConnection: close\r\n\r\n');
  t.match(good, /^HTTP\/1\.1 200 /, 'a host with a port is fine');
  const v6 = await raw(port, 'GET / HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n');
  t.match(v6, /^HTTP\/1\.1 200 /, 'and so is an IPv6 literal');
});
