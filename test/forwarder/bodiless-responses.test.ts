// Regressions: a valid 304 or 204 that carries Content-Length is relayed
// whole (it used to become an empty reply), and an upstream that fails after
// its head still lets the client see that head before the connection ends.

import t from 'tap';
import { onRequestHeads, sendRawUntilClose, startRawUpstream } from '../helpers/http.ts';
import { runVeerIn, serviceConfig } from '../helpers/veer.ts';

const exchange = sendRawUntilClose;

for (const [status, reason] of [
  [304, 'Not Modified'],
  [204, 'No Content'],
] as const) {
  t.test(`a ${status} with Content-Length is relayed with its headers, and the connection stays usable`, async (t) => {
    const upstream = await startRawUpstream((socket) =>
      onRequestHeads(socket, () => socket.write(`HTTP/1.1 ${status} ${reason}\r\nContent-Length: 12\r\nETag: "abc"\r\n\r\n`)),
    );
    t.teardown(() => upstream.close());
    const veer = await runVeerIn(t, serviceConfig({ versions: { v1: upstream.url } }));
    const request = 'GET /x HTTP/1.1\r\nHost: shop\r\nIf-None-Match: "abc"\r\n\r\n';
    const { text } = await exchange(veer.veer.dataAddress.port, request + request, 1000);
    const heads = text.split(`HTTP/1.1 ${status} ${reason}\r\n`).length - 1;
    t.equal(heads, 2, `both pipelined requests got their ${status}`);
    t.match(text, /etag: "abc"/i, 'with the upstream headers');
    t.notMatch(text, /"error"/, 'and no error body');
  });
}

t.test('the answer to HEAD with Content-Length is relayed as is', async (t) => {
  const upstream = await startRawUpstream((socket) => onRequestHeads(socket, () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nContent-Type: text/plain\r\n\r\n')));
  t.teardown(() => upstream.close());
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: upstream.url } }));
  const { text } = await exchange(veer.veer.dataAddress.port, 'HEAD /x HTTP/1.1\r\nHost: shop\r\n\r\n', 800);
  t.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  t.match(text, /content-length: 5000/i, 'the length of the body a GET would get');
});

t.test('an upstream that resets after its head: the client gets the head, then the connection ends', async (t) => {
  const upstream = await startRawUpstream((socket) =>
    onRequestHeads(socket, () => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\nX-From: upstream\r\n\r\n');
      setTimeout(() => socket.resetAndDestroy(), 50);
    }),
  );
  t.teardown(() => upstream.close());
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: upstream.url } }));
  const { text, closed } = await exchange(veer.veer.dataAddress.port, 'GET /x HTTP/1.1\r\nHost: shop\r\n\r\n', 3000);
  t.match(text, /^HTTP\/1\.1 200 OK\r\n/, 'the head reached the client');
  t.match(text, /x-from: upstream/i);
  t.ok(closed, 'and the connection was closed: the client sees a truncated body, never a hang');
  t.notMatch(text, /HTTP\/1\.1 502/, 'no second answer after the head');
});
