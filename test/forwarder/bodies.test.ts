// Request and response bodies and framing: content-length and chunked
// uploads, HEAD, 204 and 304 on a reused connection, and large header sets.

import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import t from 'tap';
import { formatRequest, RawHttpConnection, rawRequest, type TestScope } from '../helpers/http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstreams.ts';
import { runVeerIn, serviceConfig } from '../helpers/veer.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** An upstream that answers every request by path; /echo hashes the body it got. */
async function bodyUpstream(t: TestScope): Promise<TestUpstream> {
  const up = await startUpstream('v1', (req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/echo')) {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
      });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ bytes, sha256: hash.digest('hex'), contentLength: req.headers['content-length'] ?? null, transferEncoding: req.headers['transfer-encoding'] ?? null }));
      });
    } else if (url.startsWith('/bytes/')) {
      // /bytes/N/{length|chunked|split}: N bytes of every value 0-255, framed by
      // content-length in one write, chunked, or content-length in two writes apart.
      const [, , size, framing] = url.split('/');
      const body = bytesOf(Number(size));
      if (framing === 'chunked') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.write(body.subarray(0, body.length >> 1));
        setTimeout(() => res.end(body.subarray(body.length >> 1)), 5);
      } else if (framing === 'split') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
        res.write(body.subarray(0, body.length >> 1));
        setTimeout(() => res.end(body.subarray(body.length >> 1)), 5);
      } else {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
        res.end(body);
      }
    } else if (url === '/reject-early') {
      // Answers without reading the body, as an auth or size check would.
      res.writeHead(413, { 'content-type': 'text/plain' });
      res.end('too large');
    } else if (url === '/reset-upload') {
      req.once('data', () => req.socket.destroy());
    } else if (url === '/hints') {
      res.writeEarlyHints({ link: '</app.css>; rel=preload' });
      setTimeout(() => res.end('after hints'), 10);
    } else if (url === '/head') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1234', etag: '"abc"' });
      res.end(req.method === 'HEAD' ? undefined : 'x'.repeat(1234));
    } else if (url === '/no-content') {
      res.writeHead(204, { 'x-done': 'yes' });
      res.end();
    } else if (url === '/cached') {
      res.writeHead(304, { etag: '"abc"', 'cache-control': 'max-age=60' });
      res.end();
    } else if (url === '/many-headers') {
      const headers: [string, string][] = [];
      for (let i = 0; i < 120; i++) headers.push([`x-h-${i}`, `value-${i}-${'v'.repeat(i)}`]);
      for (let i = 0; i < 6; i++) headers.push(['set-cookie', `c${i}=v${i}; Path=/; HttpOnly`]);
      headers.push(['x-dup', 'one'], ['x-dup', 'two']);
      res.writeHead(200, headers.flat());
      res.end('many');
    } else {
      res.end('ok');
    }
  });
  t.teardown(() => up.close());
  return up;
}

/** `size` bytes cycling through every byte value, high bytes included (they must not be re-encoded). */
function bytesOf(size: number): Buffer {
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i++) body[i] = (i * 7 + 255) & 0xff;
  return body;
}

/** POSTs `chunks` through node's client; chunked when `contentLength` is false. */
function post(port: number, chunks: Buffer[], contentLength: boolean): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', path: '/echo', headers: contentLength ? { 'content-length': String(total) } : {} },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(body) as Record<string, unknown> }));
      },
    );
    req.on('error', reject);
    let i = 0;
    // Chunks go out on separate ticks so chunked framing really has several chunks.
    const next = () => {
      if (i === chunks.length) return req.end();
      req.write(chunks[i++]);
      setImmediate(next);
    };
    next();
  });
}

t.test('POST bodies with content-length and with chunked transfer-encoding arrive intact', async (t) => {
  const up = await bodyUpstream(t);
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
  const port = veer.veer.dataAddress.port;
  const chunks = Array.from({ length: 20 }, (_, i) => randomBytes(10_000 + i * 997));
  const whole = Buffer.concat(chunks);

  const fixed = await post(port, chunks, true);
  t.equal(fixed.status, 200);
  t.equal(fixed.json.bytes, whole.length, 'content-length: every byte arrived');
  t.equal(fixed.json.sha256, sha(whole), 'content-length: same bytes');
  t.equal(fixed.json.contentLength, String(whole.length), 'content-length: the upstream got the content-length');
  t.equal(fixed.json.transferEncoding, null, 'content-length: not re-framed as chunked');

  const chunked = await post(port, chunks, false);
  t.equal(chunked.status, 200);
  t.equal(chunked.json.bytes, whole.length, 'chunked: every byte arrived');
  t.equal(chunked.json.sha256, sha(whole), 'chunked: same bytes');
  t.equal(chunked.json.transferEncoding, 'chunked', 'chunked: streamed to the upstream as chunked');

  // A raw chunked request with odd chunk sizes and a chunk extension.
  const raw = await rawRequest(
    port,
    formatRequest('POST', '/echo', [['Host', 'a.test'], ['Transfer-Encoding', 'chunked'], ['Connection', 'close']], '3;ext=1\r\nabc\r\n1\r\nd\r\n0\r\n\r\n'),
  );
  const body = JSON.parse(raw.body.toString()) as { bytes: number; sha256: string };
  t.equal(body.bytes, 4, 'raw chunked: 4 bytes');
  t.equal(body.sha256, sha(Buffer.from('abcd')), 'raw chunked: "abcd"');

  // An empty POST with content-length: 0.
  const empty = await rawRequest(port, formatRequest('POST', '/echo', [['Host', 'a.test'], ['Content-Length', '0'], ['Connection', 'close']]));
  t.equal((JSON.parse(empty.body.toString()) as { bytes: number }).bytes, 0, 'empty body: 0 bytes');
});

t.test('response bodies arrive byte for byte whatever their size and framing, one after another on a reused connection', async (t) => {
  const up = await bodyUpstream(t);
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
  const conn = await RawHttpConnection.open(veer.veer.dataAddress.port);
  t.teardown(() => conn.close());
  // 0 and 1 byte, around the single-write limit (8 KiB), and well past it.
  for (const size of [0, 1, 100, 8191, 8192, 8193, 200_000]) {
    for (const framing of ['length', 'chunked', 'split']) {
      conn.write(formatRequest('GET', `/bytes/${size}/${framing}`, [['Host', 'a.test']]));
      const res = await conn.readResponse();
      t.equal(res.status, 200, `${size} bytes ${framing}: 200`);
      t.equal(sha(res.body), sha(bytesOf(size)), `${size} bytes ${framing}: the same bytes`);
      if (framing !== 'chunked') t.same(res.headers['content-length'], [String(size)], `${size} bytes ${framing}: content-length kept`);
    }
  }
  t.notOk(conn.ended, 'the connection is still open after all of them');
});

t.test('HEAD, 204 and 304 keep their framing on a reused client connection', async (t) => {
  const up = await bodyUpstream(t);
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
  const conn = await RawHttpConnection.open(veer.veer.dataAddress.port);
  t.teardown(() => conn.close());
  const send = (method: string, path: string, extra: [string, string][] = []) => conn.write(formatRequest(method, path, [['Host', 'a.test'], ...extra]));

  send('HEAD', '/head');
  const head = await conn.readResponse({ head: true });
  t.equal(head.status, 200, 'HEAD: 200');
  t.same(head.headers['content-length'], ['1234'], 'HEAD: the upstream content-length is kept');
  t.same(head.headers.etag, ['"abc"'], 'HEAD: headers kept');

  send('GET', '/no-content');
  const noContent = await conn.readResponse();
  t.equal(noContent.status, 204, '204 after HEAD on the same connection: no stray body bytes from the HEAD');
  t.same(noContent.headers['x-done'], ['yes']);
  t.same(noContent.headers['transfer-encoding'], undefined, '204: no transfer-encoding');
  t.same(noContent.headers['content-length'], undefined, '204: no content-length');

  send('GET', '/cached', [['If-None-Match', '"abc"']]);
  const cached = await conn.readResponse();
  t.equal(cached.status, 304, '304');
  t.same(cached.headers.etag, ['"abc"'], '304: etag kept');
  t.same(cached.headers['transfer-encoding'], undefined, '304: no transfer-encoding');

  send('GET', '/head');
  const full = await conn.readResponse();
  t.equal(full.status, 200, 'GET after 204/304 on the same connection');
  t.equal(full.body.length, 1234, 'GET: the whole body');

  send('HEAD', '/head');
  send('GET', '/plain');
  const pipelinedHead = await conn.readResponse({ head: true });
  const pipelinedGet = await conn.readResponse();
  t.equal(pipelinedHead.status, 200, 'pipelined HEAD');
  t.equal(pipelinedGet.body.toString(), 'ok', 'pipelined GET after HEAD reads its own body');
  t.notOk(conn.ended, 'the connection is still open');
});

t.test('a large set of response headers, with several set-cookie and repeated headers, survives', async (t) => {
  const up = await bodyUpstream(t);
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
  const res = await rawRequest(veer.veer.dataAddress.port, formatRequest('GET', '/many-headers', [['Host', 'a.test'], ['Connection', 'close']]));
  t.equal(res.status, 200);
  t.equal(res.body.toString(), 'many');
  let missing = 0;
  for (let i = 0; i < 120; i++) if (res.headers[`x-h-${i}`]?.[0] !== `value-${i}-${'v'.repeat(i)}`) missing++;
  t.equal(missing, 0, 'all 120 custom headers arrive with their values');
  t.same(
    res.headers['set-cookie'],
    Array.from({ length: 6 }, (_, i) => `c${i}=v${i}; Path=/; HttpOnly`),
    'every set-cookie arrives as its own header line, in order',
  );
  t.same(res.headers['x-dup']?.join(', ').split(/,\s*/), ['one', 'two'], 'a repeated header keeps both values in order');
});

t.test('a large set of request headers reaches the upstream', async (t) => {
  const up = await bodyUpstream(t);
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
  const headers: [string, string][] = [['Host', 'a.test'], ['Connection', 'close']];
  for (let i = 0; i < 100; i++) headers.push([`X-Req-${i}`, `r${i}`]);
  headers.push(['Cookie', 'a=1'], ['Cookie', 'b=2']);
  const res = await rawRequest(veer.veer.dataAddress.port, formatRequest('GET', '/plain', headers));
  t.equal(res.status, 200);
  const seen = up.seen.at(-1)!;
  let missing = 0;
  for (let i = 0; i < 100; i++) if (seen.headers[`x-req-${i}`] !== `r${i}`) missing++;
  t.equal(missing, 0, 'all 100 request headers arrive');
  t.match(seen.headers.cookie, /a=1.*b=2/, 'both cookie headers arrive');
});

t.test('an upstream that answers before reading the whole body: the client gets the answer and its connection does not hang', async (t) => {
  const up = await bodyUpstream(t);
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
  const size = 8 * 1024 * 1024;
  for (const c of [
    { path: '/reject-early', status: 413 },
    { path: '/reset-upload', status: 502 },
  ]) {
    const conn = await RawHttpConnection.open(veer.veer.dataAddress.port);
    t.teardown(() => conn.close());
    conn.write(formatRequest('POST', c.path, [['Host', 'a.test'], ['Content-Length', String(size)]]));
    conn.write(Buffer.alloc(size, 7));
    const res = await conn.readResponse({ timeoutMs: 3000 });
    t.equal(res.status, c.status, `${c.path}: the client gets ${c.status}`);
    // The rest of the body will never be read: veer must say so and close, or read it and go on.
    conn.write(formatRequest('GET', '/plain', [['Host', 'a.test']]));
    const next = await conn.readResponse({ timeoutMs: 3000 }).then(
      (r) => `answered ${r.status}`,
      (err: Error) => (conn.ended ? 'closed' : `hung: ${err.message}`),
    );
    t.ok(next === 'closed' || next === 'answered 200', `${c.path}: the connection is closed or still usable, not stuck (${next})`);
    if (next === 'closed') t.same(res.headers.connection, ['close'], `${c.path}: the answer announced connection: close`);
    conn.close();
  }
});

t.test('Expect: 100-continue and 1xx informational responses', async (t) => {
  const up = await bodyUpstream(t);
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
  const conn = await RawHttpConnection.open(veer.veer.dataAddress.port);
  t.teardown(() => conn.close());
  conn.write(formatRequest('POST', '/echo', [['Host', 'a.test'], ['Content-Length', '5'], ['Expect', '100-continue']]));
  const cont = await conn.readResponse({ timeoutMs: 3000 });
  t.equal(cont.status, 100, 'the client is told to continue');
  conn.write('hello');
  const done = await conn.readResponse({ timeoutMs: 3000 });
  t.equal(done.status, 200);
  t.equal((JSON.parse(done.body.toString()) as { bytes: number }).bytes, 5, 'the body sent after 100 Continue arrives');
  t.equal(up.seen.at(-1)?.headers.expect, undefined, 'the upstream does not get Expect (veer already answered it)');

  conn.write(formatRequest('GET', '/hints', [['Host', 'a.test']]));
  const final = await conn.readResponse({ timeoutMs: 3000 });
  t.equal(final.status, 200, 'a 103 from the upstream does not break the response');
  t.equal(final.body.toString(), 'after hints');
});
