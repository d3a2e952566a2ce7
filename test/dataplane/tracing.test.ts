// Traces that start at the edge, and request ids: W3C traceparent parsed as
// the spec says, continued or started, veer's span the upstream's parent,
// spans exported over OTLP/HTTP to a receiver in the test with the routing
// decision, a dead collector that costs traffic nothing, the trace id in the
// access log; x-request-id kept or made, passed upstream, returned, and in
// veer's error bodies.

import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { parseTraceParent } from '../../src/dataplane/index.ts';
import { until } from '../helpers/admin.ts';
import { REFUSED_PORT, startUpstream, type TestUpstream } from '../helpers/upstreams.ts';
import { runVeerIn, serveInChild, writeConfig } from '../helpers/veer.ts';
import { parsePromText, sumOf } from '../metrics/prom-text.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const CLIENT_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CLIENT_PARENT = 'b7ad6b7169203331';

t.test('traceparent is parsed as W3C Trace Context says', async (t) => {
  t.same(parseTraceParent(`00-${CLIENT_TRACE}-${CLIENT_PARENT}-01`), { traceId: CLIENT_TRACE, parentId: CLIENT_PARENT, sampled: true });
  t.same(parseTraceParent(`00-${CLIENT_TRACE}-${CLIENT_PARENT}-00`), { traceId: CLIENT_TRACE, parentId: CLIENT_PARENT, sampled: false });
  t.same(parseTraceParent(`00-${CLIENT_TRACE}-${CLIENT_PARENT}-03`)?.sampled, true, 'only the sampled bit counts');
  t.same(parseTraceParent(`01-${CLIENT_TRACE}-${CLIENT_PARENT}-01-future`)?.traceId, CLIENT_TRACE, 'a later version: its first four fields');
  for (const bad of [
    undefined,
    '',
    `00-${CLIENT_TRACE}-${CLIENT_PARENT}-01-extra`, // version 00 has exactly four fields
    `ff-${CLIENT_TRACE}-${CLIENT_PARENT}-01`, // version ff is invalid
    `00-${'0'.repeat(32)}-${CLIENT_PARENT}-01`, // all-zero trace id
    `00-${CLIENT_TRACE}-${'0'.repeat(16)}-01`, // all-zero parent id
    `00-${CLIENT_TRACE.toUpperCase()}-${CLIENT_PARENT}-01`, // lowercase hex only
    `00-${CLIENT_TRACE}-${CLIENT_PARENT}-0g`,
    `00_${CLIENT_TRACE}-${CLIENT_PARENT}-01`,
    `01-${CLIENT_TRACE}-${CLIENT_PARENT}-01x`,
  ]) {
    t.equal(parseTraceParent(bad), null, `invalid: ${JSON.stringify(bad)}`);
  }
});

interface Received {
  readonly spans: Record<string, unknown>[];
  readonly resources: Record<string, unknown>[];
  readonly url: string;
}

/** An OTLP/HTTP receiver: collects the spans of every POST. */
async function startReceiver(t: Test): Promise<Received> {
  const spans: Record<string, unknown>[] = [];
  const resources: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { resourceSpans: { resource: Record<string, unknown>; scopeSpans: { spans: Record<string, unknown>[] }[] }[] };
      for (const rs of body.resourceSpans) {
        resources.push(rs.resource);
        for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { spans, resources, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces` };
}

/** An upstream that answers with the headers it saw. */
async function headersUpstream(t: Test, name: string): Promise<TestUpstream> {
  const up = await startUpstream(name, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'the-upstream-own' });
    res.end(JSON.stringify(req.headers));
  });
  t.teardown(() => up.close());
  return up;
}

const attributesOf = (span: Record<string, unknown>) =>
  Object.fromEntries((span.attributes as { key: string; value: { stringValue?: string; intValue?: number | string } }[]).map((a) => [a.key, a.value.stringValue ?? Number(a.value.intValue)]));

async function get(url: string, headers: Record<string, string | string[]> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const res = await request(url, { headers });
  return { status: res.statusCode, headers: res.headers as IncomingHttpHeaders, body: await res.body.text() };
}

t.test('a trace is continued or started at veer; the upstream sees veer span as its parent; spans reach the collector', async (t) => {
  const receiver = await startReceiver(t);
  const v1 = await headersUpstream(t, 'v1');
  const v2 = await headersUpstream(t, 'v2');
  const veer = await runVeerIn(
    t,
    `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: silent }
tracing: { serviceName: edge, otlp: { endpoint: ${receiver.url}, headers: { x-collector-token: t0k } } }
services:
  - name: shop
    versions: [{ name: v1, upstream: ${v1.url} }, { name: v2, upstream: ${v2.url} }]
    routes: [{ match: { header: { name: x-canary, value: "1" } }, to: v2 }]
    split: { weights: { v1: 100, v2: 0 }, sticky: { header: x-user } }
`,
  );
  // Continued: the client's trace id, veer's span between the client's and the upstream's.
  const continued = await get(`${veer.url}/cart?x=1`, { traceparent: `00-${CLIENT_TRACE}-${CLIENT_PARENT}-01`, tracestate: 'vendor=abc', 'x-canary': '1' });
  const seen = JSON.parse(continued.body) as Record<string, string>;
  const upstreamParent = parseTraceParent(seen.traceparent)!;
  t.equal(upstreamParent.traceId, CLIENT_TRACE, 'the trace continues');
  t.not(upstreamParent.parentId, CLIENT_PARENT, "the upstream's parent is veer's span, not the client's");
  t.equal(upstreamParent.sampled, true);
  t.equal(seen.tracestate, 'vendor=abc', 'tracestate passes through');

  // Started: no traceparent (or a malformed one) starts a trace here.
  const started = JSON.parse((await get(`${veer.url}/`, { traceparent: 'garbage', 'x-user': 'u1' })).body) as Record<string, string>;
  const startedParent = parseTraceParent(started.traceparent)!;
  t.ok(startedParent, 'a malformed traceparent is replaced by a new one');
  t.not(startedParent.traceId, CLIENT_TRACE);

  // Not sampled by the client: propagated with the flag, never exported.
  const unsampled = JSON.parse((await get(`${veer.url}/`, { traceparent: `00-${'1'.repeat(32)}-${CLIENT_PARENT}-00` })).body) as Record<string, string>;
  t.equal(parseTraceParent(unsampled.traceparent)?.sampled, false);

  t.ok(await until(() => receiver.spans.length >= 2, 5000), 'the sampled spans were exported');
  await new Promise((resolve) => setTimeout(resolve, 1200));
  t.equal(receiver.spans.length, 2, 'the unsampled one was not');
  const [first, second] = receiver.spans;
  t.match(first, { traceId: CLIENT_TRACE, parentSpanId: CLIENT_PARENT, spanId: upstreamParent.parentId, kind: 2, name: 'GET shop' });
  t.same(
    attributesOf(first!),
    {
      'http.request.method': 'GET',
      'url.path': '/cart?x=1',
      'server.address': `127.0.0.1:${new URL(veer.url).port}`,
      'network.protocol.version': '1.1',
      'http.response.status_code': 200,
      'veer.service': 'shop',
      'veer.version': 'v2',
      'veer.route': 'rule 0',
      'veer.upstream': v2.url,
      'veer.retries': 0,
    },
    'the span says who served it and how the router decided',
  );
  t.equal(second!.parentSpanId, undefined, 'a trace started at veer: its span is the root');
  t.equal(second!.spanId, startedParent.parentId);
  t.match(attributesOf(second!)['veer.route'], /^sticky bucket \d+$/);
  t.ok(BigInt(String(second!.endTimeUnixNano)) >= BigInt(String(second!.startTimeUnixNano)));
  const resourceAttributes = attributesOf(receiver.resources[0]!);
  t.equal(resourceAttributes['service.name'], 'edge');
});

t.test('a dead collector costs traffic nothing but a counter', async (t) => {
  const v1 = await headersUpstream(t, 'v1');
  const dead = REFUSED_PORT;
  const veer = await runVeerIn(
    t,
    `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: silent }
tracing: { otlp: { endpoint: http://127.0.0.1:${dead}/v1/traces, timeout: 200ms } }
services:
  - name: shop
    versions: [{ name: v1, upstream: ${v1.url} }]
`,
  );
  const started = performance.now();
  for (let i = 0; i < 50; i++) t.equal((await get(`${veer.url}/`)).status, 200);
  const ms = performance.now() - started;
  t.ok(ms < 5000, `50 requests served in ${ms.toFixed(0)} ms while the collector is down`);
  t.ok(
    await until(async () => sumOf(parsePromText(await (await fetch(`${veer.adminUrl}/metrics`)).text()), 'veer_trace_spans_dropped_total') >= 50, 5000),
    'every span was counted as dropped',
  );
});

t.test('x-request-id: kept or made, passed upstream, returned, in error bodies', async (t) => {
  const v1 = await headersUpstream(t, 'v1');
  const dead = REFUSED_PORT;
  const veer = await runVeerIn(
    t,
    `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: silent }
services:
  - name: shop
    match: { hosts: [shop.test] }
    versions: [{ name: v1, upstream: ${v1.url} }]
  - name: down
    match: { hosts: [down.test] }
    versions: [{ name: v1, upstream: http://127.0.0.1:${dead} }]
`,
  );
  const kept = await get(`${veer.url}/`, { host: 'shop.test', 'x-request-id': 'req-42' });
  t.equal((JSON.parse(kept.body) as Record<string, string>)['x-request-id'], 'req-42', "the client's id reaches the upstream");
  t.equal(kept.headers['x-request-id'], 'req-42', "and comes back, not the upstream's own");

  const made = await get(`${veer.url}/`, { host: 'shop.test' });
  const madeId = String(made.headers['x-request-id']);
  t.match(madeId, UUID, 'without one, veer makes a UUID v4');
  t.equal((JSON.parse(made.body) as Record<string, string>)['x-request-id'], madeId, 'the same id upstream');

  const twice = await get(`${veer.url}/`, { host: 'shop.test', 'x-request-id': ['a', 'b'] });
  const twiceSeen = (JSON.parse(twice.body) as Record<string, string>)['x-request-id'];
  t.match(twiceSeen, UUID, 'two ids (joined with a comma) are replaced by one new id');
  t.equal(twice.headers['x-request-id'], twiceSeen);
  const tooLong = await get(`${veer.url}/`, { host: 'shop.test', 'x-request-id': 'x'.repeat(200) });
  t.match(tooLong.headers['x-request-id'], UUID, 'an id over 128 characters is replaced');

  const noRoute = await get(`${veer.url}/`, { host: 'nobody.test', 'x-request-id': 'r-404' });
  t.equal(noRoute.status, 404);
  t.same(JSON.parse(noRoute.body), { error: { code: 'no_route', message: 'no service matches this host and path', requestId: 'r-404' } });
  t.equal(noRoute.headers['x-request-id'], 'r-404');
  const down = await get(`${veer.url}/`, { host: 'down.test' });
  t.equal(down.status, 502);
  const downBody = JSON.parse(down.body) as { error: { requestId: string } };
  t.match(downBody.error.requestId, UUID, 'a 502 body names the request');
  t.equal(down.headers['x-request-id'], downBody.error.requestId);
});

t.test('the access log carries the trace id with tracing on', async (t) => {
  const v1 = await headersUpstream(t, 'v1');
  const configPath = writeConfig(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: true }
tracing: { sampleRatio: 0 }
services:
  - name: shop
    versions: [{ name: v1, upstream: ${v1.url} }]
`);
  const { veer, serving } = await serveInChild(t, configPath);
  const listen = String(serving.listen);
  const answer = await get(`http://${listen}/`, { traceparent: `00-${CLIENT_TRACE}-${CLIENT_PARENT}-01`, 'x-request-id': 'log-1' });
  t.equal(parseTraceParent((JSON.parse(answer.body) as Record<string, string>).traceparent)?.traceId, CLIENT_TRACE, 'propagated without a collector');
  const line = await veer.waitForLog('access', 5000);
  t.match(line, { requestId: 'log-1', traceId: CLIENT_TRACE });
});
