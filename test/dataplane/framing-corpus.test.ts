// A request-framing corpus: the vectors of public HTTP/1.1 conformance and
// smuggling suites (Http11Probe's compliance and smuggling cases, AWS
// http-desync-guardian's ambiguous-framing list, the CL.TE / TE.CL / TE.TE
// write-ups), sent as raw bytes through veer to a real upstream.
//
// Every case must end one of two ways:
//   reject   a 4xx/5xx from veer itself, the connection closed after it, and
//            nothing forwarded;
//   forward  the request reaches the upstream normalised: exactly the
//            requests veer answered (never a second, smuggled one), each with
//            the body the client framed.
// And whatever happens, the upstream never sees more requests than the
// client got responses: that is what a desync would break.

import { createServer } from 'node:http';
import { connect } from 'node:net';
import t from 'tap';
import { listenOnLoopback } from '../helpers/upstreams.ts';
import { runVeer, serviceConfig } from '../helpers/veer.ts';

type Expect = { kind: 'reject'; status?: number } | { kind: 'forward'; bodies: string[] };

interface Case {
  readonly name: string;
  /** Raw bytes; `{id}` is replaced by the case's path, so the upstream can tell the cases apart. */
  readonly bytes: string;
  readonly expect: Expect;
}

const H = 'Host: corpus.test\r\n';
const reject = (status?: number): Expect => (status === undefined ? { kind: 'reject' } : { kind: 'reject', status });
const forward = (...bodies: string[]): Expect => ({ kind: 'forward', bodies });

const CASES: Case[] = [
  // Content-Length (RFC 9112 6.3, 8.6)
  { name: 'duplicate-cl', bytes: `POST {id} HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`, expect: reject(400) },
  { name: 'cl-comma-different', bytes: `POST {id} HTTP/1.1\r\n${H}Content-Length: 5, 6\r\n\r\nhello!`, expect: reject(400) },
  { name: 'cl-negative', bytes: `POST {id} HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`, expect: reject(400) },
  { name: 'cl-plus', bytes: `POST {id} HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`, expect: reject(400) },
  { name: 'cl-hex-prefix', bytes: `POST {id} HTTP/1.1\r\n${H}Content-Length: 0x5\r\n\r\nhello`, expect: reject(400) },
  { name: 'cl-internal-space', bytes: `POST {id} HTTP/1.1\r\n${H}Content-Length: 1 0\r\n\r\nhellohello`, expect: reject(400) },
  { name: 'cl-underscore', bytes: `POST {id} HTTP/1.1\r\n${H}Content-Length: 1_0\r\n\r\nhellohello`, expect: reject(400) },
  { name: 'cl-overflow', bytes: `POST {id} HTTP/1.1\r\n${H}Content-Length: 99999999999999999999999\r\n\r\n`, expect: reject() },
  { name: 'cl-leading-zeros', bytes: `POST {id} HTTP/1.1\r\n${H}Content-Length: 005\r\n\r\nhello`, expect: forward('hello') },
  { name: 'cl-trailing-space', bytes: `POST {id} HTTP/1.1\r\n${H}Content-Length: 5 \r\n\r\nhello`, expect: forward('hello') },
  { name: 'cl-double-zero', bytes: `POST {id} HTTP/1.1\r\n${H}Content-Length: 00\r\n\r\n`, expect: forward('') },
  // Both framings at once (RFC 9112 6.1: a server MAY reject; veer does, and closes)
  { name: 'cl-te-both', bytes: `POST {id} HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, expect: reject(400) },
  {
    name: 'clte-pipeline (smuggled GET in the body)',
    bytes: `POST {id} HTTP/1.1\r\n${H}Content-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET {id}-smuggled HTTP/1.1\r\n${H}\r\n`,
    expect: reject(400),
  },
  {
    name: 'tecl-pipeline (smuggled GET after the chunks)',
    bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGET {id}-smuggled HTTP/1.1\r\n${H}Content-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n`,
    expect: reject(400),
  },
  // Transfer-Encoding obfuscations (TE.TE)
  { name: 'te-xchunked', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: reject() },
  { name: 'te-identity', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\nhello`, expect: reject() },
  { name: 'te-not-final-chunked', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: reject() },
  { name: 'te-gzip-chunked (a coding veer cannot pass on)', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: reject(501) },
  { name: 'te-double-chunked', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: reject() },
  { name: 'te-duplicate-headers', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: reject() },
  { name: 'te-empty-value', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: \r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: reject() },
  { name: 'te-sp-before-colon', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: reject(400) },
  { name: 'te-obs-fold', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: reject(400) },
  { name: 'te-vtab', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: \x0bchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: reject() },
  { name: 'te-formfeed', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: \x0cchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: reject() },
  { name: 'te-null', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\x00\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: reject(400) },
  { name: 'te-case-mismatch', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: CHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: forward('hello') },
  { name: 'te-trailing-space', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked \r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: forward('hello') },
  { name: 'te-tab-before-value', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding:\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: forward('hello') },
  // Chunked bodies (RFC 9112 7.1)
  { name: 'chunk-negative', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n-1\r\nhello\r\n0\r\n\r\n`, expect: reject(400) },
  { name: 'chunk-hex-prefix', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n`, expect: reject(400) },
  { name: 'chunk-size-plus', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n`, expect: reject(400) },
  { name: 'chunk-leading-sp', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n`, expect: reject(400) },
  { name: 'chunk-underscore', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1_0\r\nhellohello\r\n0\r\n\r\n`, expect: reject(400) },
  { name: 'chunk-spill (more data than the size)', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n`, expect: reject(400) },
  { name: 'chunk-missing-trailing-crlf', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello0\r\n\r\n`, expect: reject(400) },
  { name: 'chunk-lf-term', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n`, expect: reject(400) },
  { name: 'chunk-bare-cr-term', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\rhello\r\n0\r\n\r\n`, expect: reject(400) },
  { name: 'chunk-ext-ctrl', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;a=\x01\r\nhello\r\n0\r\n\r\n`, expect: reject(400) },
  { name: 'chunk-ext-lf', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n`, expect: reject(400) },
  { name: 'chunk-with-extension (valid)', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n0\r\n\r\n`, expect: forward('hello') },
  { name: 'trailer-cl (Content-Length in trailers: refused)', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n`, expect: reject(400) },
  { name: 'trailer-host', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nHost: evil.test\r\n\r\n`, expect: forward('hello') },
  // Bodies on methods that rarely carry one: forwarded as framed, never reread as a request
  { name: 'get-cl-body-desync', bytes: `GET {id} HTTP/1.1\r\n${H}Content-Length: 31\r\n\r\nGET {id}-smuggled HTTP/1.1\r\nX: `, expect: forward('GET {id}-smuggled HTTP/1.1\r\nX: ') },
  { name: 'options-cl-body', bytes: `OPTIONS {id} HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello`, expect: forward('hello') },
  { name: 'cl0-body-poison (two requests by framing: two answers)', bytes: `GET {id} HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\nGET {id}-second HTTP/1.1\r\n${H}\r\n`, expect: forward('', '') },
  { name: 'expect-100-cl', bytes: `POST {id} HTTP/1.1\r\n${H}Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello`, expect: forward('hello') },
  // Header and request-line syntax (RFC 9112 2.2, 3, 5)
  { name: 'sp-before-colon', bytes: `GET {id} HTTP/1.1\r\n${H}X-Test : 1\r\n\r\n`, expect: reject(400) },
  { name: 'obs-fold', bytes: `GET {id} HTTP/1.1\r\n${H}X-Test: a\r\n b\r\n\r\n`, expect: reject(400) },
  { name: 'bare-cr-header-value', bytes: `GET {id} HTTP/1.1\r\n${H}X-Test: a\rb\r\n\r\n`, expect: reject(400) },
  { name: 'nul-in-header-value', bytes: `GET {id} HTTP/1.1\r\n${H}X-Test: a\x00b\r\n\r\n`, expect: reject(400) },
  { name: 'empty-header-name', bytes: `GET {id} HTTP/1.1\r\n${H}: value\r\n\r\n`, expect: reject(400) },
  { name: 'header-without-colon', bytes: `GET {id} HTTP/1.1\r\n${H}X-Test\r\n\r\n`, expect: reject(400) },
  { name: 'missing-host (HTTP/1.1)', bytes: `GET {id} HTTP/1.1\r\nX-Test: 1\r\n\r\n`, expect: reject(400) },
  { name: 'duplicate-host', bytes: `GET {id} HTTP/1.1\r\n${H}${H}\r\n`, expect: reject(400) },
  { name: 'multiple-host-comma', bytes: `GET {id} HTTP/1.1\r\nHost: a.test, b.test\r\n\r\n`, expect: reject(400) },
  // RFC 9112 3: recipients MAY parse the request line on whitespace boundaries; veer forwards it normalised.
  { name: 'request-line-double-space', bytes: `GET  {id} HTTP/1.1\r\n${H}\r\n`, expect: forward('') },
  { name: 'method-with-bad-char', bytes: `G@T {id} HTTP/1.1\r\n${H}\r\n`, expect: reject(400) },
  { name: 'invalid-version', bytes: `GET {id} HTTP/1.x\r\n${H}\r\n`, expect: reject(400) },
  { name: 'binary-garbage', bytes: '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03', expect: reject(400) },
  { name: 'header-too-large', bytes: `GET {id} HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(40_000)}\r\n\r\n`, expect: reject(431) },
  // Well-formed controls: the harness itself must see these forwarded
  { name: 'control: plain GET', bytes: `GET {id} HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, expect: forward('') },
  { name: 'control: chunked POST', bytes: `POST {id} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`, expect: forward('hello world') },
];

/** Writes `bytes`, then reads until the server closes or nothing arrives for `idleMs`. */
function exchange(port: number, bytes: string, idleMs = 400): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    let text = '';
    let timer: NodeJS.Timeout;
    const socket = connect(port, '127.0.0.1', () => socket.write(Buffer.from(bytes, 'latin1')));
    const idle = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        socket.destroy();
        resolve({ text, closed: false });
      }, idleMs);
    };
    idle();
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      idle();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
  });
}

t.test('every framing case is rejected and closed, or forwarded exactly as framed', async (t) => {
  const received: { url: string; body: string }[] = [];
  const upstream = createServer((req, res) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      received.push({ url: req.url ?? '', body });
      res.end('ok');
    });
  });
  const port = await listenOnLoopback(upstream);
  t.teardown(() => {
    upstream.closeAllConnections();
    upstream.close();
  });
  const veer = await runVeer(serviceConfig({ versions: { v1: `http://127.0.0.1:${port}` } }));
  t.teardown(() => veer.stop());
  const veerPort = Number(new URL(veer.url).port);

  const results = await Promise.all(CASES.map((c, i) => exchange(veerPort, c.bytes.replaceAll('{id}', `/c${i}`))));
  for (const [i, c] of CASES.entries()) {
    const { text, closed } = results[i]!;
    const id = `/c${i}`;
    // Final answers only: a 100 Continue is not one. (Not anchored: a response follows the
    // previous body directly, and the upstream's bodies here are only "ok".)
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1])).filter((s) => s >= 200);
    const upstreamSaw = received.filter((r) => r.url === id || r.url.startsWith(`${id}-`));
    t.test(c.name, async (t) => {
      t.ok(upstreamSaw.length <= statuses.length, `the upstream saw no more requests (${upstreamSaw.length}) than the client got answers (${statuses.length})`);
      t.notOk(
        upstreamSaw.some((r) => r.url.endsWith('-smuggled')),
        'no smuggled request reached the upstream',
      );
      if (c.expect.kind === 'reject') {
        t.equal(statuses.length, 1, `one answer: ${statuses.join(', ') || 'none'}`);
        t.ok(statuses[0]! >= 400, `an error status (${statuses[0]})`);
        if (c.expect.status !== undefined) t.equal(statuses[0], c.expect.status);
        t.ok(closed, 'the connection is closed after it');
        t.equal(upstreamSaw.length, 0, 'nothing forwarded');
      } else {
        const want = c.expect.bodies.map((b) => b.replaceAll('{id}', id));
        t.same(
          statuses,
          want.map(() => 200),
          'answered by the upstream',
        );
        t.same(
          upstreamSaw.map((r) => r.body),
          want,
          'forwarded with the body as framed',
        );
      }
    });
  }
});
