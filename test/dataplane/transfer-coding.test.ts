// Regressions on request framing (RFC 9112 6.1):
// - `Transfer-Encoding: gzip, chunked` was forwarded with its body un-chunked
//   and the gzip coding silently lost. Any coding but `chunked` alone is now
//   501 unsupported_transfer_coding and the connection is closed, as nginx
//   answers; nothing is forwarded.
// - HTTP/1.0 with Transfer-Encoding kept the connection open, and a request
//   pipelined behind it was forwarded too. Its framing is faulty: the message
//   is processed, then the connection is closed and nothing after it is read.

import t from 'tap';
import { RawHttpConnection, sendRawUntilClose, type TestScope } from '../helpers/http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstreams.ts';
import { runVeerIn, serviceConfig } from '../helpers/veer.ts';

/** An upstream that records each request's method, path and body, and answers `got BODY`. */
async function recordingUpstream(t: TestScope): Promise<{ up: TestUpstream; got: string[] }> {
  const got: string[] = [];
  const up = await startUpstream('v1', (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push(`${req.method} ${req.url} ${body}`);
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(`got ${body}`) });
      res.end(`got ${body}`);
    });
  });
  t.teardown(() => up.close());
  return { up, got };
}

const CHUNKED_HELLO = '5\r\nhello\r\n0\r\n\r\n';

t.test('a Transfer-Encoding other than chunked alone is a 501 and closes; nothing is forwarded', async (t) => {
  const { up, got } = await recordingUpstream(t);
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
  const port = veer.veer.dataAddress.port;
  for (const [what, te] of [
    ['gzip, chunked', 'Transfer-Encoding: gzip, chunked\r\n'],
    ['gzip then chunked on two lines', 'Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n'],
    ['gzip alone', 'Transfer-Encoding: gzip\r\n'],
    ['chunked, identity', 'Transfer-Encoding: chunked, identity\r\n'],
    ['chunked twice', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n'],
  ] as const) {
    // A request pipelined behind it must not be served either: where it starts is in doubt.
    const answer = await sendRawUntilClose(port, `POST /upload HTTP/1.1\r\nHost: shop\r\n${te}\r\n${CHUNKED_HELLO}GET /after HTTP/1.1\r\nHost: shop\r\n\r\n`);
    t.match(answer.text, /^HTTP\/1\.1 501 /, `${what}: 501`);
    t.match(answer.text, /"code":"unsupported_transfer_coding"/, `${what}: unsupported_transfer_coding`);
    t.match(answer.text, /connection: close/i, `${what}: connection: close`);
    t.ok(answer.closed, `${what}: the connection is closed`);
    t.equal(answer.text.match(/HTTP\/1\.1 /g)?.length, 1, `${what}: one answer, none for the pipelined GET`);
  }
  t.same(got, [], 'nothing reached the upstream');
  t.equal(up.seen.length, 0, 'not even a head');
  const plain = await sendRawUntilClose(port, `POST /upload HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding:  Chunked \r\nConnection: close\r\n\r\n${CHUNKED_HELLO}`);
  t.match(plain.text, /^HTTP\/1\.1 200 [^]*got hello$/, 'chunked alone (any case) is forwarded');
  t.same(got, ['POST /upload hello'], 'with its body');
});

t.test('HTTP/1.0 with Transfer-Encoding: the message is processed, then the connection is closed', async (t) => {
  const { up, got } = await recordingUpstream(t);
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
  const port = veer.veer.dataAddress.port;
  const head = 'POST /one HTTP/1.0\r\nHost: shop\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n';

  const alone = await sendRawUntilClose(port, head + CHUNKED_HELLO);
  t.match(alone.text, /^HTTP\/1\.1 200 /, 'processed: 200');
  t.match(alone.text, /got hello$/, 'with the body forwarded');
  t.match(alone.text, /connection: close/i, 'connection: close on the response');
  t.ok(alone.closed, 'and the connection is closed');
  t.same(got, ['POST /one hello'], 'the upstream got the message once');

  // What follows the faulty message on the connection is never read as a request.
  const smuggled = await sendRawUntilClose(port, head + CHUNKED_HELLO + 'GET /smuggled HTTP/1.1\r\nHost: shop\r\n\r\n');
  t.match(smuggled.text, /^HTTP\/1\.1 200 [^]*got hello$/, 'the first message is answered');
  t.equal(smuggled.text.match(/HTTP\/1\.1 /g)?.length, 1, 'and nothing else');
  t.ok(smuggled.closed, 'the connection is closed');
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.same(got, ['POST /one hello', 'POST /one hello'], 'the pipelined request never reached the upstream');

  // Control: HTTP/1.0 keep-alive with a Content-Length keeps its connection.
  const conn = await RawHttpConnection.open(port);
  t.teardown(() => conn.close());
  conn.write('POST /two HTTP/1.0\r\nHost: shop\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello');
  const first = await conn.readResponse();
  t.equal(first.status, 200, 'HTTP/1.0 with Content-Length: 200');
  t.notMatch(first.headers.connection?.join(',') ?? '', /close/i, 'not closed');
  conn.write('POST /three HTTP/1.0\r\nHost: shop\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi');
  t.equal((await conn.readResponse()).status, 200, 'a second request on it is served');
});
