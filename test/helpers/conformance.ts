// Gateway API's HTTPRoute conformance suite, ported: its backends (echo
// servers named infra-backend-v1..v3), a "gateway" (veer on 127.0.0.1:0 with
// one service per HTTPRoute) and its ExpectedResponse with the same pass
// rules (conformance/utils/http/http.go in kubernetes-sigs/gateway-api).

import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect as connectTls } from 'node:tls';
import type { Test } from 'tap';
import { formatRequest, rawRequest, RawHttpConnection, runLimited, type RawResponse, type ReadOptions, type TestScope } from './http.ts';
import { startUpstream, type TestUpstream } from './upstreams.ts';
import { runVeerIn, type RunningVeer } from './veer.ts';

/** The versions standing for the suite's backend Services: v1 is infra-backend-v1, and so on. */
export const VERSIONS = ['v1', 'v2', 'v3'] as const;
/** One of the suite's backends. */
export type Backend = (typeof VERSIONS)[number];

/** What a backend saw of one request: the conformance echo server's answer. */
export interface EchoedRequest {
  readonly backend: string;
  readonly method: string;
  readonly path: string;
  readonly host: string;
  /** Lowercased name -> every value as received. */
  readonly headers: Readonly<Record<string, string[]>>;
}

/** A running gateway: veer and its backends, with every request each backend saw. */
export interface Gateway {
  readonly veer: RunningVeer;
  readonly port: number;
  /** The HTTPS listener's port, when the gateway has one (`tls:` in `top`). */
  readonly tlsPort: number | null;
  /** The CA file that signed the HTTPS listener's certificate. */
  readonly ca: string | null;
  readonly seen: Readonly<Record<Backend, EchoedRequest[]>>;
}

function echoOf(name: string, req: IncomingMessage): EchoedRequest {
  const headers: Record<string, string[]> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) (headers[req.rawHeaders[i]!.toLowerCase()] ??= []).push(req.rawHeaders[i + 1]!);
  return { backend: name, method: req.method ?? '', path: req.url ?? '', host: req.headers.host ?? '', headers };
}

/**
 * The conformance echo backend: answers JSON describing the request; like
 * the suite's, `?delay=1s` waits before answering and each
 * `X-Echo-Set-Header: Name:Value,...` becomes a response header.
 */
function conformanceHandler(name: string, seen: EchoedRequest[]) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const echo = echoOf(name, req);
    seen.push(echo);
    const delay = /[?&]delay=(\d+)(ms|s)\b/.exec(req.url ?? '');
    const ms = delay === null ? 0 : Number(delay[1]) * (delay[2] === 's' ? 1000 : 1);
    const answer = () => {
      if (res.destroyed) return;
      const out: [string, string][] = [['content-type', 'application/json'], ['x-upstream', name]];
      for (const pair of echo.headers['x-echo-set-header']?.join(',').split(',') ?? []) {
        const colon = pair.indexOf(':');
        if (colon > 0) out.push([pair.slice(0, colon).trim(), pair.slice(colon + 1).trim()]);
      }
      res.writeHead(200, out.flat());
      res.end(JSON.stringify(echo));
    };
    if (ms === 0) answer();
    else setTimeout(answer, ms).unref();
  };
}

/** One HTTPRoute as a veer service: its hostnames and its `rules:` (YAML, indented 6). */
export interface RouteSpec {
  readonly name: string;
  readonly hostnames?: readonly string[];
  readonly rules: string;
}

/**
 * Starts the three backends and veer with one service per route (each
 * service's versions are the backends). Stopped when `t` ends.
 */
export async function startGateway(t: TestScope, routes: readonly RouteSpec[], top = '', ca: string | null = null): Promise<Gateway> {
  const seen = { v1: [], v2: [], v3: [] } as Record<Backend, EchoedRequest[]>;
  const ups: Record<string, TestUpstream> = {};
  for (const v of VERSIONS) {
    ups[v] = await startUpstream(`infra-backend-${v}`, conformanceHandler(`infra-backend-${v}`, seen[v]));
    t.teardown(() => ups[v]!.close());
  }
  const versions = VERSIONS.map((v) => `      - { name: ${v}, upstream: ${ups[v]!.url} }\n`).join('');
  const services = routes
    .map((r) => {
      const hosts = r.hostnames === undefined ? '' : `    match: { hosts: [${r.hostnames.map((h) => JSON.stringify(h)).join(', ')}] }\n`;
      return `  - name: ${r.name}\n${hosts}    versions:\n${versions}    rules:\n${r.rules}`;
    })
    .join('');
  const veer = await runVeerIn(t, `listen: 127.0.0.1:0\nadmin: { listen: 127.0.0.1:0 }\nlog: { level: silent }\n${top}services:\n${services}`);
  return { veer, port: veer.veer.dataAddress.port, tlsPort: veer.veer.tlsAddress?.port ?? null, ca, seen };
}

/**
 * The requestHeaderModifier several of the suite's routes share (rewrite
 * path and host, mirror, response headers), as a `filters:` entry.
 */
export const MODIFY_HEADERS_FILTER = `          - requestHeaderModifier:
              set: [{ name: X-Header-Set, value: set-overwrites-values }]
              add: [{ name: X-Header-Add, value: header-val-1 }, { name: X-Header-Add-Append, value: header-val-2 }]
              remove: [X-Header-Remove]
`;

/** What the backend must see after MODIFY_HEADERS_FILTER, for a request that sent X-Header-Add-Append: append-val-1. */
export const MODIFIED_HEADERS = { 'X-Header-Add': 'header-val-1', 'X-Header-Add-Append': 'append-val-1,header-val-2', 'X-Header-Set': 'set-overwrites-values' } as const;

/** The body of the suite's `/multiple` header modifier (request and response alike), indented for a `- xHeaderModifier:` entry. */
export const MULTIPLE_MODIFIER = `              set: [{ name: X-Header-Set-1, value: header-set-1 }, { name: X-Header-Set-2, value: header-set-2 }]
              add: [{ name: X-Header-Add-1, value: header-add-1 }, { name: X-Header-Add-2, value: header-add-2 }, { name: X-Header-Add-3, value: header-add-3 }]
              remove: [X-Header-Remove-1, X-Header-Remove-2]
`;

/** The headers MULTIPLE_MODIFIER leaves, from X-Header-Add-2: add-val-2 and Another-Header: another-header-val. */
export const MULTIPLE_EXPECTED = {
  'X-Header-Set-1': 'header-set-1',
  'X-Header-Set-2': 'header-set-2',
  'X-Header-Add-1': 'header-add-1',
  'X-Header-Add-2': 'add-val-2,header-add-2',
  'X-Header-Add-3': 'header-add-3',
  'Another-Header': 'another-header-val',
} as const;

/** A request of the suite: Host defaults to the gateway's address, as Go's client sends it. */
export interface ConformanceRequest {
  readonly method?: string;
  readonly host?: string;
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent to the HTTPS listener, with the Host as SNI. */
  readonly https?: boolean;
}

/** Sends a whole raw request over TLS (SNI `servername`, trusting `ca`) and reads one response. */
async function rawTlsRequest(port: number, servername: string, ca: string, request: string, options: ReadOptions): Promise<RawResponse> {
  const socket = connectTls({ host: '127.0.0.1', port, servername, ca: readFileSync(ca) });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  const conn = new RawHttpConnection(socket);
  try {
    conn.write(request);
    return await conn.readResponse(options);
  } finally {
    conn.close();
  }
}

/** The answer to one request. */
export interface Answer {
  readonly status: number;
  /** Lowercased name -> every value. */
  readonly headers: Readonly<Record<string, string[]>>;
  /** What the backend saw, when a backend answered. */
  readonly echo: EchoedRequest | null;
}

/** Sends one request through the gateway and reads the echo. */
export async function send(gw: Gateway, req: ConformanceRequest): Promise<Answer> {
  const host = req.host ?? `127.0.0.1:${req.https === true ? gw.tlsPort : gw.port}`;
  const raw = formatRequest(req.method ?? 'GET', req.path, [['Host', host], ...Object.entries(req.headers ?? {}), ['Connection', 'close']]);
  const options = { head: req.method === 'HEAD', timeoutMs: 10_000 };
  const res = req.https === true ? await rawTlsRequest(gw.tlsPort!, host.replace(/:\d+$/, ''), gw.ca!, raw, options) : await rawRequest(gw.port, raw, options);
  const echo = res.headers['x-upstream'] !== undefined && res.body.length > 0 ? (JSON.parse(res.body.toString()) as EchoedRequest) : null;
  return { status: res.status, headers: res.headers, echo };
}

/** Gateway API's ExpectedResponse, in the fields the ported cases use. */
export interface ExpectedResponse {
  readonly request: ConformanceRequest;
  /** Headers the backend is asked to answer with (X-Echo-Set-Header). */
  readonly backendSetResponseHeaders?: Readonly<Record<string, string>>;
  /** Which backend must answer; with it the status defaults to 200. */
  readonly backend?: Backend;
  readonly status?: number;
  /** What the backend must have seen. */
  readonly expectedRequest?: { readonly path?: string; readonly host?: string; readonly headers?: Readonly<Record<string, string>>; readonly absentHeaders?: readonly string[] };
  readonly response?: { readonly headers?: Readonly<Record<string, string>>; readonly absentHeaders?: readonly string[] };
  /** The Location of a redirect: an unset host, scheme or path is the request's; an unset port must be the scheme's or none. */
  readonly redirect?: { readonly scheme?: string; readonly host?: string; readonly port?: string; readonly path?: string };
}

/** Values of one header joined by ',' with the blanks after commas dropped (the suite's IgnoreWhitespace). */
function joined(values: readonly string[] | undefined): string | undefined {
  return values?.map((v) => v.split(',').map((s) => s.trim()).join(',')).join(',');
}

function describe(c: ExpectedResponse): string {
  const r = c.request;
  return `${r.method ?? 'GET'} ${r.host ?? ''}${r.path}${r.headers ? ` ${JSON.stringify(r.headers)}` : ''}`;
}

function checkHeaders(t: Tap, where: string, got: Readonly<Record<string, string[]>>, want: Readonly<Record<string, string>> = {}, absent: readonly string[] = []): void {
  for (const [name, value] of Object.entries(want)) t.equal(joined(got[name.toLowerCase()]), value, `${where} header ${name}`);
  for (const name of absent) t.equal(got[name.toLowerCase()], undefined, `${where} header ${name} absent`);
}

/** A tap test. */
type Tap = Test;

/** Sends one case's request and checks its answer with the suite's pass rules. */
export async function expectResponse(t: Tap, gw: Gateway, c: ExpectedResponse): Promise<Answer> {
  const set = c.backendSetResponseHeaders;
  const headers = set === undefined ? c.request.headers : { ...c.request.headers, 'X-Echo-Set-Header': Object.entries(set).map(([n, v]) => `${n}:${v}`).join(',') };
  const res = await send(gw, { ...c.request, headers });
  const status = c.status ?? (c.redirect !== undefined ? 302 : 200);
  t.equal(res.status, status, `status ${status}`);
  if (c.backend !== undefined) t.equal(res.echo?.backend, `infra-backend-${c.backend}`, `answered by infra-backend-${c.backend}`);
  const want = c.expectedRequest;
  if (want !== undefined) {
    t.equal(res.echo?.path, want.path, `backend saw path ${want.path}`);
    if (want.host !== undefined) t.equal(res.echo?.host, want.host, `backend saw Host ${want.host}`);
    checkHeaders(t, 'request', res.echo?.headers ?? {}, want.headers, want.absentHeaders);
  }
  if (c.response !== undefined) checkHeaders(t, 'response', res.headers, c.response.headers, c.response.absentHeaders);
  if (c.redirect !== undefined) {
    const location = res.headers.location?.[0];
    t.ok(location, 'a Location');
    const url = new URL(location ?? 'invalid:');
    const scheme = url.protocol.slice(0, -1);
    const requestPath = c.request.path.split('?')[0];
    t.equal(scheme, c.redirect.scheme ?? (c.request.https === true ? 'https' : 'http'), `redirect scheme (${location})`);
    if (c.redirect.host !== undefined) t.equal(url.hostname, c.redirect.host, `redirect host (${location})`);
    if (c.redirect.port !== undefined) t.equal(url.port, c.redirect.port, `redirect port (${location})`);
    else t.ok(url.port === '' || url.port === (scheme === 'https' ? '443' : '80'), `redirect port is the scheme's or none (${location})`);
    t.equal(url.pathname, c.redirect.path ?? requestPath, `redirect path (${location})`);
  }
  return res;
}

/** Runs every case as a subtest named after its request. */
export async function expectResponses(t: Tap, gw: Gateway, cases: readonly ExpectedResponse[]): Promise<void> {
  for (const c of cases) await t.test(describe(c), async (t) => void (await expectResponse(t, gw, c)));
}

/** Requests and tolerance of the suite's weighted distribution check (conformance/utils/weight). */
const WEIGHT_REQUESTS = 500;
const WEIGHT_TOLERANCE = 0.05;
const WEIGHT_CONCURRENCY = 10;
/** The suite's weight.MaxTestRetries: a distribution is drawn again this many times before the test fails. */
export const WEIGHT_ATTEMPTS = 10;

/**
 * One draw of the suite's TestWeightedDistribution: 500 requests from one
 * client without a sticky key; null when every backend's share is within
 * ±0.05 of its weight and exactly the backends with a weight answered,
 * else what was wrong.
 */
export async function weightedDistributionError(gw: Gateway, req: ConformanceRequest, expected: Readonly<Partial<Record<Backend, number>>>): Promise<string | null> {
  const counts: Record<string, number> = {};
  let failed = 0;
  await runLimited(WEIGHT_REQUESTS, WEIGHT_CONCURRENCY, async () => {
    const res = await send(gw, req);
    if (res.status !== 200 || res.echo === null) failed++;
    else counts[res.echo.backend] = (counts[res.echo.backend] ?? 0) + 1;
  });
  if (failed > 0) return `${failed} requests failed`;
  const errors: string[] = [];
  for (const backend of Object.keys(counts)) {
    if (!Object.keys(expected).some((v) => `infra-backend-${v}` === backend)) errors.push(`unexpected backend ${backend}`);
  }
  for (const [v, weight] of Object.entries(expected)) {
    const got = (counts[`infra-backend-${v}`] ?? 0) / WEIGHT_REQUESTS;
    if (weight === 0 && got > 0) errors.push(`infra-backend-${v} has weight 0 and got ${got}`);
    if (Math.abs(got - weight!) > WEIGHT_TOLERANCE) errors.push(`infra-backend-${v}: ${got} not within ${weight} ±${WEIGHT_TOLERANCE}`);
  }
  return errors.length === 0 ? null : `${errors.join('; ')} (${JSON.stringify(counts)})`;
}
