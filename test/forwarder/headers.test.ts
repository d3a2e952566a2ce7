// Forwarding and hop-by-hop headers, both directions, over raw sockets so no
// client library adds, merges or drops headers on its own.

import t from 'tap';
import { formatRequest, onRequestHeads, rawHeaderValues, rawRequest, startRawUpstream, type RawUpstream, type TestScope } from '../helpers/http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstreams.ts';
import { runVeerIn, serviceConfig } from '../helpers/veer.ts';

async function recordingUpstream(t: TestScope): Promise<TestUpstream> {
  const up = await startUpstream('v1', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  });
  t.teardown(() => up.close());
  return up;
}

const rawValues = rawHeaderValues;

t.test('the upstream gets forwarding headers and x-veer-version, and no hop-by-hop headers', async (t) => {
  const up = await recordingUpstream(t);
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
  const port = veer.veer.dataAddress.port;

  const res = await rawRequest(
    port,
    formatRequest('GET', '/path?q=1', [
      ['Host', 'Shop.Example.com:8443'],
      ['X-Forwarded-For', '203.0.113.7, 198.51.100.2'],
      ['X-Forwarded-Proto', 'https'],
      ['X-Forwarded-Host', 'spoofed.example'],
      ['X-Veer-Version', 'v9'],
      ['Connection', 'close, X-Secret'],
      ['Keep-Alive', 'timeout=5'],
      ['TE', 'trailers'],
      ['Trailer', 'x-checksum'],
      ['Upgrade', 'h2c'],
      ['Proxy-Authorization', 'Basic c2VjcmV0'],
      ['Proxy-Connection', 'keep-alive'],
      ['X-Secret', 'hunter2'],
      ['X-Kept', 'yes'],
      ['Accept', 'text/plain'],
    ]),
  );
  t.equal(res.status, 200, 'proxied');
  const req = up.seen.at(-1)!;
  t.ok(req, 'the upstream got the request');
  t.equal(req.url, '/path?q=1', 'target unchanged');
  t.same(rawValues(req, 'host'), ['Shop.Example.com:8443'], 'the Host header is passed through as sent');
  t.same(rawValues(req, 'x-forwarded-for'), ['203.0.113.7, 198.51.100.2, 127.0.0.1'], 'x-forwarded-for: client address appended to the incoming list');
  t.same(rawValues(req, 'x-forwarded-proto'), ['http'], 'x-forwarded-proto is what veer was reached over, not the client claim');
  t.same(rawValues(req, 'x-forwarded-host'), ['Shop.Example.com:8443'], 'x-forwarded-host is the Host the client sent');
  t.same(rawValues(req, 'x-veer-version'), ['v1'], 'x-veer-version is the chosen version, the client copy replaced');
  t.equal(req.headers['x-kept'], 'yes', 'end-to-end headers pass');
  t.equal(req.headers.accept, 'text/plain', 'end-to-end headers pass');
  for (const name of ['keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-connection', 'x-secret']) {
    t.same(rawValues(req, name), [], `upstream does not see ${name}`);
  }
  t.notMatch(rawValues(req, 'connection').join(','), /secret|close/i, 'the client Connection header is not passed on');

  // Without any incoming X-Forwarded-For the client address starts the list.
  await rawRequest(port, formatRequest('GET', '/', [['Host', 'a.test'], ['Connection', 'close']]));
  t.same(rawValues(up.seen.at(-1)!, 'x-forwarded-for'), ['127.0.0.1'], 'x-forwarded-for without an incoming one');
});

/** A raw upstream answering every request with a response full of hop-by-hop headers. */
async function hopByHopUpstream(t: TestScope): Promise<RawUpstream> {
  const body = 'hello';
  const up = await startRawUpstream((socket) =>
    onRequestHeads(socket, () => {
      socket.write(
        'HTTP/1.1 200 OK\r\n' +
          'Content-Type: text/plain\r\n' +
          `Content-Length: ${body.length}\r\n` +
          'Connection: keep-alive, X-Up-Secret\r\n' +
          'Keep-Alive: timeout=7, max=3\r\n' +
          'X-Up-Secret: s3cret\r\n' +
          'Proxy-Authenticate: Basic realm="up"\r\n' +
          'Proxy-Connection: keep-alive\r\n' +
          'Trailer: x-checksum\r\n' +
          'Upgrade: h2c\r\n' +
          'X-Veer-Version: forged\r\n' +
          'X-End-To-End: kept\r\n' +
          `\r\n${body}`,
      );
    }),
  );
  t.teardown(() => up.close());
  return up;
}

t.test('the client gets x-veer-version and none of the upstream hop-by-hop headers', async (t) => {
  const up = await hopByHopUpstream(t);
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
  const res = await rawRequest(veer.veer.dataAddress.port, formatRequest('GET', '/', [['Host', 'a.test'], ['Connection', 'close']]));
  t.equal(res.status, 200);
  t.equal(res.body.toString(), 'hello', 'body intact');
  t.same(res.headers['x-veer-version'], ['v1'], 'exactly one x-veer-version, the version veer chose');
  t.same(res.headers['x-end-to-end'], ['kept'], 'end-to-end headers pass');
  for (const name of ['x-up-secret', 'proxy-authenticate', 'proxy-connection', 'trailer', 'upgrade']) {
    t.same(res.headers[name], undefined, `client does not see ${name}`);
  }
  // veer's own server may set Connection/Keep-Alive for its hop; the upstream's must not leak.
  t.notMatch((res.headers.connection ?? []).join(','), /x-up-secret/i, 'upstream Connection tokens do not leak');
  t.notMatch((res.headers['keep-alive'] ?? []).join(','), /timeout=7|max=3/, 'upstream Keep-Alive does not leak');
});

t.test('exposeVersionHeader: false hides x-veer-version from clients, the upstream still gets it', async (t) => {
  const up = await recordingUpstream(t);
  const request = formatRequest('GET', '/', [['Host', 'a.test'], ['Connection', 'close']]);

  const topLevel = await runVeerIn(t, serviceConfig({ versions: { v1: up.url }, top: 'exposeVersionHeader: false' }));
  let res = await rawRequest(topLevel.veer.dataAddress.port, request);
  t.equal(res.status, 200);
  t.same(res.headers['x-veer-version'], undefined, 'top-level false: client does not see x-veer-version');
  t.same(rawValues(up.seen.at(-1)!, 'x-veer-version'), ['v1'], 'top-level false: upstream still gets it');

  const perService = await runVeerIn(t, serviceConfig({ versions: { v1: up.url }, extra: '    exposeVersionHeader: false\n' }));
  res = await rawRequest(perService.veer.dataAddress.port, request);
  t.equal(res.status, 200);
  t.same(res.headers['x-veer-version'], undefined, 'service false: client does not see x-veer-version');
  t.same(rawValues(up.seen.at(-1)!, 'x-veer-version'), ['v1'], 'service false: upstream still gets it');

  const serviceOverrides = await runVeerIn(
    t,
    serviceConfig({ versions: { v1: up.url }, top: 'exposeVersionHeader: false', extra: '    exposeVersionHeader: true\n' }),
  );
  res = await rawRequest(serviceOverrides.veer.dataAddress.port, request);
  t.same(res.headers['x-veer-version'], ['v1'], 'a service true overrides a top-level false');
});

t.test('the upstream cannot forge x-veer-version when exposure is off', async (t) => {
  const up = await hopByHopUpstream(t);
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url }, top: 'exposeVersionHeader: false' }));
  const res = await rawRequest(veer.veer.dataAddress.port, formatRequest('GET', '/', [['Host', 'a.test'], ['Connection', 'close']]));
  t.equal(res.status, 200);
  t.same(res.headers['x-veer-version'], undefined, 'no x-veer-version reaches the client');
});

// Regression: `Connection: Host` made veer drop Host (every name listed in Connection was
// dropped), so undici sent the upstream's own address as Host; `Connection: Content-Length`
// changed the body's framing. A client's Connection header cannot remove what veer forwards.
t.test('Connection cannot remove Host or Content-Length from the forwarded request', async (t) => {
  const up = await startUpstream('v1', (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => res.end(body));
  });
  t.teardown(() => up.close());
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
  const port = veer.veer.dataAddress.port;

  const res = await rawRequest(
    port,
    formatRequest('GET', '/', [
      ['Host', 'shop.example.com'],
      ['Connection', 'Host, X-Secret, X-Forwarded-For, X-Veer-Version, close'],
      ['X-Secret', 's'],
    ]),
  );
  t.equal(res.status, 200, 'forwarded');
  const req = up.seen.at(-1)!;
  t.same(rawValues(req, 'host'), ['shop.example.com'], 'the upstream got the client Host, not its own address');
  t.same(rawValues(req, 'x-forwarded-host'), ['shop.example.com'], 'and x-forwarded-host');
  t.same(rawValues(req, 'x-forwarded-for'), ['127.0.0.1'], 'headers veer sets are still set');
  t.same(rawValues(req, 'x-veer-version'), ['v1'], 'x-veer-version too');
  t.same(rawValues(req, 'x-secret'), [], 'other names listed in Connection are still dropped');

  const post = await rawRequest(port, formatRequest('POST', '/', [['Host', 'shop.example.com'], ['Connection', 'content-length, close'], ['Content-Length', '5']], 'hello'));
  t.equal(post.body.toString(), 'hello', 'the body arrived');
  const got = up.seen.at(-1)!;
  t.same(rawValues(got, 'content-length'), ['5'], 'with its Content-Length');
  t.same(rawValues(got, 'transfer-encoding'), [], 'not re-framed as chunked');
});

// Regression: header names with `_` reached the upstream. CGI-style backends read
// `X_Forwarded_For` and `X-Forwarded-For` as the same variable (HTTP_X_FORWARDED_FOR), so a
// client could forge what veer sets; nginx drops such names by default (underscores_in_headers).
t.test('header names with an underscore are not forwarded', async (t) => {
  const up = await recordingUpstream(t);
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: up.url } }));
  const res = await rawRequest(
    veer.veer.dataAddress.port,
    formatRequest('GET', '/', [
      ['Host', 'shop.example.com'],
      ['X_Forwarded_For', '10.0.0.1'],
      ['X-Real_IP', '10.0.0.2'],
      ['x_veer_version', 'v9'],
      ['Keep_Alive', 'x'],
      ['X-Kept', 'yes'],
      ['Connection', 'close'],
    ]),
  );
  t.equal(res.status, 200, 'the request is still forwarded');
  const req = up.seen.at(-1)!;
  const names = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) names.push(req.rawHeaders[i]!);
  t.same(
    names.filter((n) => n.includes('_')),
    [],
    'no name with an underscore reached the upstream',
  );
  t.same(rawValues(req, 'x-forwarded-for'), ['127.0.0.1'], 'x-forwarded-for is the one veer sets');
  t.same(rawValues(req, 'x-kept'), ['yes'], 'other headers pass');
});
