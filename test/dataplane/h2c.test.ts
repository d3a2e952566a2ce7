// `h2c: true`: the plain listener takes HTTP/2 with prior knowledge (RFC 9113
// 3.3) beside HTTP/1.1 on the same port, told apart by the connection's first
// bytes. Real clients: node:http2, curl --http2-prior-knowledge, and HTTP/1.1
// keep-alive and pipelined requests on the same listener.

import { execFile } from 'node:child_process';
import { connect, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { admin } from '../helpers/admin.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstreams.ts';
import { runVeerIn, type RunningVeer } from '../helpers/veer.ts';

/** An upstream that answers with what it saw, as JSON. */
async function echoUpstream(t: Test, name: string): Promise<TestUpstream> {
  const up = await startUpstream(name, (req, res) => {
    let length = 0;
    req.on('data', (c: Buffer) => (length += c.length));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ name, url: req.url, host: req.headers.host, proto: req.headers['x-forwarded-proto'], bodyLength: length }));
    });
  });
  t.teardown(() => up.close());
  return up;
}

async function startVeer(t: Test, v1: TestUpstream, v2: TestUpstream, h2c: boolean): Promise<RunningVeer> {
  return runVeerIn(
    t,
    `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: silent }
drainTimeout: 5s
h2c: ${h2c}
services:
  - name: shop
    match: { hosts: [shop.test] }
    versions:
      - { name: v1, upstream: ${v1.url} }
      - { name: v2, upstream: ${v2.url} }
    routes:
      - match: { header: { name: x-canary, value: "1" } }
        to: v2
    split: { weights: { v1: 100, v2: 0 } }
`,
  );
}

function h2get(session: ClientHttp2Session, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      resolve({ status, json: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : { text } });
    });
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

t.test('h2c: HTTP/2 with prior knowledge and HTTP/1.1 on one plain port, routed alike', async (t) => {
  const v1 = await echoUpstream(t, 'v1');
  const v2 = await echoUpstream(t, 'v2');
  const veer = await startVeer(t, v1, v2, true);
  const port = veer.veer.dataAddress.port;

  const session = connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  t.teardown(() => session.destroy());
  const plain = await h2get(session, { ':path': '/a?q=1', ':authority': 'shop.test' });
  t.equal(plain.status, 200);
  t.match(plain.json, { name: 'v1', url: '/a?q=1', host: 'shop.test', proto: 'http' }, ':authority is the host; x-forwarded-proto http');
  const canary = await h2get(session, { ':path': '/b', ':authority': 'shop.test', 'x-canary': '1' });
  t.match(canary.json, { name: 'v2' }, 'the rule sends the h2c request to v2');
  const big = Buffer.alloc(300_000, 7);
  const posted = await h2get(session, { ':path': '/up', ':method': 'POST', ':authority': 'shop.test' }, big);
  t.match(posted.json, { name: 'v1', bodyLength: big.length }, 'a body larger than the flow-control window arrives whole');
  const many = await Promise.all(Array.from({ length: 20 }, (_, i) => h2get(session, { ':path': `/m${i}`, ':authority': 'shop.test' })));
  t.same(new Set(many.map((a) => a.status)), new Set([200]), '20 concurrent streams on one connection');
  const unknown = await h2get(session, { ':path': '/', ':authority': 'nobody.test' });
  t.equal(unknown.status, 404, 'no route: 404 as on HTTP/1.1');

  // HTTP/1.1 on the very same port: keep-alive, then two requests pipelined in one write.
  const one = await request(`http://127.0.0.1:${port}/h1`, { headers: { host: 'shop.test' } });
  t.match(await one.body.json(), { name: 'v1', url: '/h1' }, 'HTTP/1.1 is served beside h2c');
  const pipelined = await new Promise<string>((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1', () => {
      socket.write('GET /p1 HTTP/1.1\r\nHost: shop.test\r\n\r\nGET /p2 HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n');
    });
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
  t.equal(pipelined.match(/HTTP\/1\.1 200 OK/g)?.length, 2, 'both pipelined requests answered');
  t.ok(pipelined.indexOf('"/p1"') < pipelined.indexOf('"/p2"'), 'in order');

  const curl = await promisify(execFile)('curl', ['-s', '--max-time', '10', '--http2-prior-knowledge', '-H', 'host: shop.test', '-w', '\\n%{http_version} %{http_code}', `http://127.0.0.1:${port}/curl`], { encoding: 'utf8' });
  const [body, outcome] = curl.stdout.split('\n');
  t.equal(outcome, '2 200', 'curl --http2-prior-knowledge spoke HTTP/2 and got 200');
  t.match(JSON.parse(body!), { url: '/curl' });

  const metrics = (await admin<string>(veer.adminUrl, 'GET', '/metrics')).body;
  t.match(metrics, /veer_requests_total\{service="shop",version="v2",[^}]*\} 1\b/, 'h2c requests are counted per version like any other');
});

t.test('h2c: a connection that closes or stalls before its first bytes costs nothing; off by default', async (t) => {
  const v1 = await echoUpstream(t, 'v1');
  const v2 = await echoUpstream(t, 'v2');
  const veer = await startVeer(t, v1, v2, true);
  const port = veer.veer.dataAddress.port;
  // Two bytes, then gone: neither parser ever sees it, and the listener keeps serving.
  await new Promise<void>((resolve) => {
    const socket = netConnect(port, '127.0.0.1', () => socket.end('PR'));
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  });
  const after = await request(`http://127.0.0.1:${port}/after`, { headers: { host: 'shop.test' } });
  t.equal(after.statusCode, 200, 'served after a client that said two bytes and left');
  await after.body.dump();

  const off = await startVeer(t, v1, v2, false);
  const session = connect(`http://127.0.0.1:${off.veer.dataAddress.port}`);
  const refused = await new Promise<string>((resolve) => {
    session.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    session.on('close', () => resolve('closed'));
    const stream = session.request({ ':path': '/', ':authority': 'shop.test' });
    stream.on('error', () => {});
    stream.on('response', () => resolve('answered'));
  });
  session.destroy();
  t.not(refused, 'answered', `without h2c the plain listener does not speak HTTP/2 (${refused})`);
});
