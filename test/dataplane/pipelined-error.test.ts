// Regression: a valid POST followed, in the same write, by a malformed
// request: the POST ran upstream but the client got only the 400 and a
// close, so it believed its POST failed. The 400 now comes after the
// responses the connection owes, in order.

import t from 'tap';
import { sendRawUntilClose } from '../helpers/http.ts';
import { startUpstream } from '../helpers/upstreams.ts';
import { runVeerIn, serviceConfig } from '../helpers/veer.ts';

/** Everything the server sends back for `bytes`, until it closes the connection. */
const raw = async (port: number, bytes: string): Promise<string> => (await sendRawUntilClose(port, bytes)).text;

t.test('a POST pipelined before a malformed request gets its response, then the 400', async (t) => {
  const upstream = await startUpstream('v1', (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    // A slow answer: the malformed request is parsed long before it.
    req.on('end', () => setTimeout(() => res.end(`stored ${body}`), 200));
  });
  t.teardown(() => upstream.close());
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: upstream.url } }));
  const answer = await raw(veer.veer.dataAddress.port, 'POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 5\r\n\r\nhelloGARBAGE\x01 / HTTP/1.1\r\n\r\n');
  const ok = answer.indexOf('HTTP/1.1 200 OK');
  const bad = answer.indexOf('HTTP/1.1 400 Bad Request');
  t.ok(ok !== -1, 'the POST got its response');
  t.match(answer, /stored hello/, 'with its body');
  t.ok(bad > ok, 'and the 400 comes after it');
  t.equal(upstream.seen.length, 1, 'one request reached the upstream');
});

t.test('the same for a GET, and a body cut off by a malformed chunk is answered at once', async (t) => {
  const upstream = await startUpstream('v1', (req, res) => {
    req.resume();
    req.on('end', () => setTimeout(() => res.end('slow answer'), 200));
    req.on('error', () => {});
  });
  t.teardown(() => upstream.close());
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: upstream.url } }));
  const port = veer.veer.dataAddress.port;
  const get = await raw(port, 'GET /a HTTP/1.1\r\nHost: shop\r\n\r\nGARBAGE\x01 / HTTP/1.1\r\n\r\n');
  t.ok(get.indexOf('slow answer') !== -1 && get.indexOf('HTTP/1.1 400') > get.indexOf('slow answer'), 'the GET is answered, then the 400');
  const started = performance.now();
  const cut = await raw(port, 'POST /b HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n');
  t.match(cut, /HTTP\/1\.1 (400|502)/, 'a body broken mid-way is refused');
  t.ok(performance.now() - started < 2500, 'without waiting for an answer that can never come');
});
