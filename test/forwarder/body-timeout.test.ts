// A client that sends its request body too slowly (a byte now and then, or
// nothing after the head) must not hold an upstream connection for ever:
// after the client body timeout it is answered 408 request_timeout and
// closed, and the upstream request is aborted. A body that keeps arriving is
// not cut, however long it takes overall.

import { createServer, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import t, { type Test } from 'tap';
import { forwardRequest, UpstreamRegistry } from '../../src/forwarder/index.ts';
import { tableFromYaml } from '../helpers/tables.ts';
import { listenOnLoopback } from '../helpers/upstreams.ts';

const TIMEOUT_MS = 300;

async function setup(t: Test) {
  const received: { ended: boolean; aborted: boolean; bytes: number }[] = [];
  const upstream = createServer((req: IncomingMessage, res) => {
    const seen = { ended: false, aborted: false, bytes: 0 };
    received.push(seen);
    req.on('data', (c: Buffer) => (seen.bytes += c.length));
    req.on('end', () => {
      seen.ended = true;
      res.end('done');
    });
    req.on('close', () => {
      if (!seen.ended) seen.aborted = true;
    });
  });
  const upstreamPort = await listenOnLoopback(upstream);
  const table = tableFromYaml(`services:\n  - name: svc\n    versions: [{ name: v1, upstream: "http://127.0.0.1:${upstreamPort}" }]\n`);
  const registry = new UpstreamRegistry({ clientBodyTimeoutMs: TIMEOUT_MS, retireGraceMs: 0 });
  const proxy = createServer((req, res) => forwardRequest(registry, req, res, table.services[0]!.versions[0]!, null, performance.now()));
  const port = await listenOnLoopback(proxy);
  t.teardown(async () => {
    proxy.closeAllConnections();
    proxy.close();
    upstream.closeAllConnections();
    upstream.close();
    await registry.close(true);
  });
  return { port, received };
}

/** Sends `head` and then `chunks` one every `everyMs`; resolves with what came back and whether the connection closed. */
function slowClient(port: number, head: string, chunks: string[], everyMs: number): Promise<{ text: string; closedAfterMs: number }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const started = Date.now();
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.on('error', () => {});
    socket.on('close', () => resolve({ text, closedAfterMs: Date.now() - started }));
    socket.write(head);
    let i = 0;
    const timer = setInterval(() => {
      if (i >= chunks.length || socket.destroyed) {
        clearInterval(timer);
        return;
      }
      socket.write(chunks[i++]!);
    }, everyMs);
    setTimeout(() => socket.destroy(), 10_000).unref();
  });
}

t.test('a body that stops arriving: 408 request_timeout, closed, upstream request aborted', async (t) => {
  const { port, received } = await setup(t);
  const { text, closedAfterMs } = await slowClient(port, 'POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nab', [], 1000);
  t.match(text, /^HTTP\/1\.1 408 /, '408');
  t.match(text, /"code":"request_timeout"/);
  t.match(text, /connection: close/i);
  t.ok(closedAfterMs >= TIMEOUT_MS && closedAfterMs < TIMEOUT_MS + 2000, `closed after ${closedAfterMs} ms`);
  t.equal(received.length, 1);
  t.ok(received[0]!.aborted, 'the upstream saw its request aborted, not completed');
});

t.test('a chunked body trickling a byte at a time, slower than the timeout: cut', async (t) => {
  const { port, received } = await setup(t);
  const { text } = await slowClient(port, 'PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n', ['1\r\na\r\n', '1\r\nb\r\n'], TIMEOUT_MS * 3);
  t.match(text, /^HTTP\/1\.1 408 /);
  t.notOk(received[0]?.ended, 'never completed upstream');
});

t.test('a body that keeps arriving is not cut, even when it takes longer than the timeout overall', async (t) => {
  const { port, received } = await setup(t);
  const chunks = Array.from({ length: 8 }, () => '1\r\nz\r\n').concat(['0\r\n\r\n']);
  const run = slowClient(port, 'POST /ok HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n', chunks, TIMEOUT_MS / 3);
  const { text } = await run;
  t.match(text, /^HTTP\/1\.1 200 /, `answered 200 after ${chunks.length} chunks over ${(chunks.length * TIMEOUT_MS) / 3} ms`);
  t.equal(received[0]?.bytes, 8);
  t.ok(received[0]?.ended);
});
