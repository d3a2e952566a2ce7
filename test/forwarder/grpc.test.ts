// gRPC through veer with real @grpc/grpc-js servers (h2c upstreams) and
// clients (TLS, ALPN h2, a CA made by openssl in the test): unary and server
// streaming calls through a weighted split, statuses and trailers passed
// through, veer's own errors as gRPC statuses, grpc-timeout deadlines,
// veer_grpc_responses_total, and a failing canary rolled back by analysis.

import { writeFileSync } from 'node:fs';
import { connect, type ClientHttp2Session } from 'node:http2';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import t, { type Test } from 'tap';
import { encodeGrpcMessage, grpcStatusForHttp, parseGrpcTimeout, readGrpcStatus } from '../../src/forwarder/grpc.ts';
import { admin, until } from '../helpers/admin.ts';
import { makePki, makeServerCert, opensslMissing, type TestPki } from '../helpers/certs.ts';
import { REFUSED_PORT } from '../helpers/upstreams.ts';
import { runVeerIn, type RunningVeer } from '../helpers/veer.ts';
import { parsePromText, sumOf } from '../metrics/prom-text.ts';

const skip = opensslMissing();

t.test('grpc-timeout, grpc-message and the status mapping', async (t) => {
  t.equal(parseGrpcTimeout('100m'), 100);
  t.equal(parseGrpcTimeout('2S'), 2000);
  t.equal(parseGrpcTimeout('1M'), 60_000);
  t.equal(parseGrpcTimeout('1H'), 3_600_000);
  t.equal(parseGrpcTimeout('1500u'), 2, 'rounded up to whole milliseconds');
  t.equal(parseGrpcTimeout('1n'), 1, 'at least 1 ms');
  t.equal(parseGrpcTimeout('99999999H'), 2 ** 31 - 1, 'capped at what a timer takes');
  for (const bad of [undefined, '', 'm', '10', '10x', '-1m', '123456789m', '1.5S', ' 1S']) t.equal(parseGrpcTimeout(bad), -1, `malformed: ${JSON.stringify(bad)}`);
  t.equal(encodeGrpcMessage('no route: 100% sure ü'), 'no route: 100%25 sure %C3%BC');
  t.equal(readGrpcStatus({ 'grpc-status': '14' }), 14);
  t.equal(readGrpcStatus({ 'grpc-status': 'x' }), -1);
  t.equal(readGrpcStatus(null), -1);
  t.same(
    [404, 503, 502, 504, 408, 400, 401, 403, 429, 500].map(grpcStatusForHttp),
    [12, 14, 14, 4, 4, 13, 16, 7, 14, 2],
  );
});

const PROTO = `syntax = "proto3";
package veertest;
service Echo {
  rpc Say (Ping) returns (Pong);
  rpc Count (Ping) returns (stream Pong);
}
message Ping { string text = 1; int32 n = 2; int32 delay_ms = 3; int32 fail_with = 4; }
message Pong { string text = 1; string version = 2; int32 i = 3; }
`;

interface Ping {
  text?: string;
  n?: number;
  delayMs?: number;
  failWith?: number;
}
interface Pong {
  text: string;
  version: string;
  i: number;
}
type EchoClient = grpc.Client & {
  Say(ping: Ping, metadata: grpc.Metadata, options: grpc.CallOptions, done: (err: grpc.ServiceError | null, pong?: Pong) => void): grpc.ClientUnaryCall;
  Count(ping: Ping): grpc.ClientReadableStream<Pong>;
};

function loadEcho(dir: string): grpc.GrpcObject {
  const file = join(dir, 'echo.proto');
  writeFileSync(file, PROTO);
  return grpc.loadPackageDefinition(protoLoader.loadSync(file, { keepCase: false, defaults: true }));
}

interface EchoServer {
  readonly url: string;
  readonly calls: { cancelled: number; served: number };
}

/** A gRPC server for one version: Say answers (or fails with `failWith`, or the version's `failAll`), Count streams n messages. */
async function startEchoServer(t: Test, proto: grpc.GrpcObject, version: string, failAll = 0): Promise<EchoServer> {
  const server = new grpc.Server();
  const calls = { cancelled: 0, served: 0 };
  const service = ((proto.veertest as grpc.GrpcObject).Echo as grpc.ServiceClientConstructor).service;
  server.addService(service, {
    Say(call: grpc.ServerUnaryCall<Ping, Pong>, done: grpc.sendUnaryData<Pong>) {
      calls.served++;
      call.on('cancelled', () => calls.cancelled++);
      const fail = call.request.failWith || failAll;
      const answer = () => {
        if (fail) done({ code: fail, details: `${version} fails: ${call.request.text}` });
        else done(null, { text: call.request.text ?? '', version, i: 0 });
      };
      if (call.request.delayMs) setTimeout(answer, call.request.delayMs);
      else answer();
    },
    Count(call: grpc.ServerWritableStream<Ping, Pong>) {
      calls.served++;
      for (let i = 0; i < (call.request.n ?? 0); i++) call.write({ text: call.request.text ?? '', version, i });
      const trailer = new grpc.Metadata();
      trailer.set('x-counted', String(call.request.n));
      call.end(trailer);
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  t.teardown(() => server.forceShutdown());
  return { url: `http://127.0.0.1:${port}`, calls };
}

interface GrpcEdge {
  readonly pki: TestPki;
  readonly veer: RunningVeer;
  readonly port: number;
  client(authority?: string): EchoClient;
  metric(name: string, labels: Record<string, string>): Promise<number>;
}

/** veer in front of gRPC services: clients over TLS (ALPN h2), or with `plain` over h2c on the plain listener. */
async function startGrpcEdge(t: Test, proto: grpc.GrpcObject, services: string, plain = false): Promise<GrpcEdge> {
  const pki = makePki();
  t.teardown(() => pki.destroy());
  const pair = makeServerCert(pki, 'grpc', ['grpc.test', 'nobody.test']);
  const veer = await runVeerIn(
    t,
    `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: silent }
drainTimeout: 2s
h2c: ${plain}
tls:
  listen: 127.0.0.1:0
  certificates: [{ cert: ${pair.cert}, key: ${pair.key} }]
services:
${services}`,
  );
  const port = plain ? veer.veer.dataAddress.port : veer.veer.tlsAddress!.port;
  const Echo = (proto.veertest as grpc.GrpcObject).Echo as grpc.ServiceClientConstructor;
  const credentials = plain ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(readFileSync(pki.ca));
  return {
    pki,
    veer,
    port,
    client(authority = 'grpc.test') {
      const client = new Echo(`127.0.0.1:${port}`, credentials, { 'grpc.ssl_target_name_override': authority, 'grpc.default_authority': authority }) as unknown as EchoClient;
      t.teardown(() => client.close());
      return client;
    },
    async metric(name, labels) {
      return sumOf(parsePromText(await (await fetch(`${veer.adminUrl}/metrics`)).text()), name, labels);
    },
  };
}

function say(client: EchoClient, ping: Ping, deadlineMs = 5000): Promise<{ pong?: Pong; error?: grpc.ServiceError; version?: string }> {
  return new Promise((resolve) => {
    let version: string | undefined;
    const call = client.Say(ping, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (error, pong) => resolve({ ...(pong && { pong }), ...(error && { error }), ...(version !== undefined && { version }) }));
    call.on('metadata', (m) => (version = String(m.get('x-veer-version')[0] ?? '')));
  });
}

const grpcService = (name: string, versions: Record<string, string>, split: string, extra = '') => `  - name: ${name}
    match: { hosts: [grpc.test] }
    versions:
${Object.entries(versions)
  .map(([v, url]) => `      - { name: ${v}, upstream: { urls: [${url}], protocol: h2c } }`)
  .join('\n')}
    split: ${split}
${extra}`;

t.test('unary and server streaming through a weighted split, statuses and trailers passed through', { skip: skip ?? false }, async (t) => {
  const proto = loadEcho(t.testdir());
  const v1 = await startEchoServer(t, proto, 'v1');
  const v2 = await startEchoServer(t, proto, 'v2');
  const edge = await startGrpcEdge(t, proto, grpcService('echo', { v1: v1.url, v2: v2.url }, '{ weights: { v1: 50, v2: 50 } }'));
  const client = edge.client();

  const seen = new Map<string, number>();
  for (let i = 0; i < 60; i++) {
    const { pong, error, version } = await say(client, { text: `hi ${i}` });
    t.equal(error, undefined);
    if (pong === undefined) break;
    t.equal(pong.text, `hi ${i}`);
    t.equal(version, pong.version, 'x-veer-version arrives in the initial metadata');
    seen.set(pong.version, (seen.get(pong.version) ?? 0) + 1);
  }
  t.ok((seen.get('v1') ?? 0) > 10 && (seen.get('v2') ?? 0) > 10, `both versions served (${JSON.stringify(Object.fromEntries(seen))})`);

  // Server streaming: every message, then the trailers with the status and the server's own metadata.
  const stream = client.Count({ text: 'n', n: 200 });
  const pongs: Pong[] = [];
  stream.on('data', (p: Pong) => pongs.push(p));
  const status = await new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
  t.equal(status.code, grpc.status.OK);
  t.equal(pongs.length, 200, 'every streamed message arrived');
  t.same(
    pongs.map((p) => p.i),
    Array.from({ length: 200 }, (_, i) => i),
    'in order',
  );
  t.same(status.metadata.get('x-counted'), ['200'], "the upstream's trailers reached the client");

  // An error status from the upstream is the client's, with its message.
  const notFound = await say(client, { text: 'gone', failWith: grpc.status.NOT_FOUND });
  t.equal(notFound.error?.code, grpc.status.NOT_FOUND);
  t.match(notFound.error?.details, /fails: gone/);

  t.equal(await edge.metric('veer_grpc_responses_total', { service: 'echo', grpc_status: '0' }), 61, '60 unary calls and the stream, OK');
  t.equal(await edge.metric('veer_grpc_responses_total', { service: 'echo', grpc_status: '5' }), 1);
  t.equal(await edge.metric('veer_requests_total', { service: 'echo', code: '200' }), 62, 'code is the HTTP status, 200 for every call');
  const stats = (await admin<{ services: Record<string, { versions: Record<string, { requests: number; errors: number }> }> }>(edge.veer.adminUrl, 'GET', '/api/v1/stats?window=1m')).body;
  const versions = Object.values(stats.services.echo!.versions);
  t.equal(versions.reduce((sum, v) => sum + v.requests, 0), 62, 'the analysis windows saw every call');
  const errors = versions.reduce((sum, v) => sum + v.errors, 0);
  t.equal(errors, 0, 'NOT_FOUND is an answer, not an error of the version');
});

t.test('h2c: gRPC with prior knowledge on the plain listener, as clients behind a TLS-terminating load balancer send it', { skip: skip ?? false }, async (t) => {
  const proto = loadEcho(t.testdir());
  const v1 = await startEchoServer(t, proto, 'v1');
  const edge = await startGrpcEdge(t, proto, grpcService('echo', { v1: v1.url }, '{ weights: { v1: 100 } }'), true);
  const client = edge.client();
  for (let i = 0; i < 5; i++) {
    const { pong, error, version } = await say(client, { text: `plain ${i}` });
    t.equal(error, undefined);
    t.equal(pong?.text, `plain ${i}`);
    t.equal(version, 'v1');
  }
  t.equal(await edge.metric('veer_grpc_responses_total', { service: 'echo', version: 'v1', grpc_status: '0' }), 5, 'counted as gRPC answers');
  const noRoute = await say(edge.client('nobody.test'), { text: 'x' });
  t.equal(noRoute.error?.code, grpc.status.UNIMPLEMENTED, "veer's own error is a gRPC status over h2c too");
});

t.test("veer's own errors are gRPC statuses: no route UNIMPLEMENTED, upstream down UNAVAILABLE", { skip: skip ?? false }, async (t) => {
  const proto = loadEcho(t.testdir());
  const dead = `http://127.0.0.1:${REFUSED_PORT}`;
  const edge = await startGrpcEdge(t, proto, grpcService('down', { v1: dead }, '{ weights: { v1: 100 } }'));
  const down = await say(edge.client(), { text: 'x' });
  t.equal(down.error?.code, grpc.status.UNAVAILABLE, 'a version whose upstream refuses: UNAVAILABLE');
  t.match(down.error?.details, /refused|connect/i);
  const noRoute = await say(edge.client('nobody.test'), { text: 'x' });
  t.equal(noRoute.error?.code, grpc.status.UNIMPLEMENTED, 'no service for the host: UNIMPLEMENTED');
  t.equal(await edge.metric('veer_grpc_responses_total', { service: 'down', version: 'v1', grpc_status: '14' }), 1);
  t.equal(await edge.metric('veer_upstream_errors_total', { service: 'down', version: 'v1', kind: 'connect' }), 1);
});

/** A raw HTTP/2 gRPC call that does not enforce its own deadline: what veer does with grpc-timeout alone. */
function rawCall(session: ClientHttp2Session, headers: Record<string, string>): Promise<{ headers: Record<string, unknown>; trailers: Record<string, unknown> | null; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/veertest.Echo/Say', ':authority': 'grpc.test', 'content-type': 'application/grpc', te: 'trailers', ...headers });
    let head: Record<string, unknown> = {};
    let trailers: Record<string, unknown> | null = null;
    stream.on('response', (h) => (head = h));
    stream.on('trailers', (tr) => (trailers = tr));
    stream.on('data', () => {});
    stream.on('end', () => resolve({ headers: head, trailers, ms: performance.now() - started }));
    stream.on('error', reject);
    // One gRPC message: uncompressed, length 5, Ping { text: "hello" }... with delay_ms 3000 (field 3).
    const message = Buffer.from([0x0a, 0x05, ...Buffer.from('hello'), 0x18, 0xb8, 0x17]);
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    message.copy(frame, 5);
    stream.end(frame);
  });
}

t.test('grpc-timeout is the call deadline: DEADLINE_EXCEEDED from veer and the upstream call cancelled', { skip: skip ?? false }, async (t) => {
  const proto = loadEcho(t.testdir());
  const v1 = await startEchoServer(t, proto, 'v1');
  const edge = await startGrpcEdge(t, proto, grpcService('slow', { v1: v1.url }, '{ weights: { v1: 100 } }'));
  const session = connect(`https://127.0.0.1:${edge.port}`, { ca: readFileSync(edge.pki.ca), servername: 'grpc.test' });
  session.on('error', () => {});
  t.teardown(() => session.destroy());
  const answer = await rawCall(session, { 'grpc-timeout': '300m' });
  const status = answer.trailers?.['grpc-status'] ?? answer.headers['grpc-status'];
  t.equal(status, '4', 'DEADLINE_EXCEEDED');
  t.ok(answer.ms >= 250 && answer.ms < 2500, `answered at the deadline, not when the upstream would have (${answer.ms.toFixed(0)} ms)`);
  t.ok(await until(() => v1.calls.cancelled === 1, 5000), 'the upstream call was cancelled');
  t.equal(await edge.metric('veer_grpc_responses_total', { service: 'slow', grpc_status: '4' }), 1);
  t.equal(await edge.metric('veer_upstream_errors_total', { service: 'slow', kind: 'timeout' }), 1);

  const inTime = await rawCall(session, { 'grpc-timeout': '10S' });
  t.equal(inTime.trailers?.['grpc-status'], '0', 'a call within its deadline ends OK, its status in the trailers');
});

t.test('a gRPC canary failing with INTERNAL under HTTP 200 is rolled back by its analysis', { skip: skip ?? false }, async (t) => {
  const proto = loadEcho(t.testdir());
  const v1 = await startEchoServer(t, proto, 'v1');
  const v2 = await startEchoServer(t, proto, 'v2', grpc.status.INTERNAL);
  const edge = await startGrpcEdge(
    t,
    proto,
    grpcService(
      'canary',
      { v1: v1.url, v2: v2.url },
      '{ weights: { v1: 100, v2: 0 } }',
      '    rollout: { canary: v2, steps: [{ weight: 50, pause: 1m }, { weight: 100 }], analysis: { interval: 200ms, minRequests: 5, maxErrorRate: 0.05, failureLimit: 2 } }\n',
    ),
  );
  t.equal((await admin(edge.veer.adminUrl, 'POST', '/api/v1/services/canary/rollout')).status, 201);
  const client = edge.client();
  let phase = '';
  const aborted = await until(async () => {
    await Promise.all(Array.from({ length: 10 }, (_, i) => say(client, { text: `c${i}` })));
    phase = String((await admin<{ phase: string }>(edge.veer.adminUrl, 'GET', '/api/v1/services/canary/rollout')).body.phase);
    return phase === 'aborted';
  }, 15_000);
  t.ok(aborted, `the rollout aborted (phase ${phase})`);
  t.ok((await edge.metric('veer_grpc_responses_total', { service: 'canary', version: 'v2', grpc_status: '13' })) >= 5, 'the INTERNAL calls were counted');
  const after = await Promise.all(Array.from({ length: 10 }, () => say(client, { text: 'after' })));
  t.same(new Set(after.map((a) => a.pong?.version)), new Set(['v1']), 'after the rollback every call goes to v1');
});
