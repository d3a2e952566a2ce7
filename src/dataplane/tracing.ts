// Traces that start at the edge (W3C Trace Context). With `tracing:` in the
// config, every routed request gets a span of veer's own: a trace the client
// started is continued (its traceparent is veer's span's parent), any other
// is started here; the upstream gets a traceparent naming veer's span, and
// tracestate passes through untouched. Sampled spans go to an OpenTelemetry
// collector over OTLP/HTTP (otlp-exporter.ts), batched and bounded.
//
//   client traceparent 00-T-P-01 ──> veer span S (parent P) ──> upstream traceparent 00-T-S-01
//   none (or malformed)          ──> veer span S (new trace T, sampled by sampleRatio)
//
// Without `tracing:` none of this runs: traceparent is an ordinary header,
// passed on as the client sent it.

import { randomFillSync } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { ExchangeObserver, FinishedExchange, StartingExchange } from '../forwarder/index.ts';
import { matchRuleIndex, stickyBucketOf } from '../router/index.ts';
import type { Config } from '../config/index.ts';
import type { CompiledVersion } from '../table/index.ts';
import type { Logger } from '../log/index.ts';
import { OtlpExporter, type OtlpSpan } from './otlp-exporter.ts';
import { replaceRequestHeader } from './request-id.ts';

/** A parsed traceparent. */
export interface TraceParent {
  readonly traceId: string;
  readonly parentId: string;
  readonly sampled: boolean;
}

const HEX = /^[0-9a-f]+$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/**
 * Parses a traceparent header (W3C Trace Context, level 1): version 00
 * exactly as specified; a later version by its first four fields (a version
 * may only add fields). Null when malformed, version ff, or an all-zero id:
 * the trace then starts here.
 */
export function parseTraceParent(value: string | string[] | undefined): TraceParent | null {
  if (typeof value !== 'string' || value.length < 55) return null;
  const version = value.slice(0, 2);
  if (!HEX.test(version) || version === 'ff') return null;
  if (version === '00' ? value.length !== 55 : value.length > 55 && value[55] !== '-') return null;
  if (value[2] !== '-' || value[35] !== '-' || value[52] !== '-') return null;
  const traceId = value.slice(3, 35);
  const parentId = value.slice(36, 52);
  const flags = value.slice(53, 55);
  if (!HEX.test(traceId) || !HEX.test(parentId) || !HEX.test(flags) || traceId === ZERO_TRACE || parentId === ZERO_SPAN) return null;
  return { traceId, parentId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

/** Random ids from one pooled buffer: a span costs a slice of it, not a call into the CSPRNG. */
class IdSource {
  readonly #pool = Buffer.allocUnsafe(4096);
  #offset = this.#pool.length;

  #take(bytes: number): string {
    if (this.#offset + bytes > this.#pool.length) {
      randomFillSync(this.#pool);
      this.#offset = 0;
    }
    const id = this.#pool.toString('hex', this.#offset, this.#offset + bytes);
    this.#offset += bytes;
    return id;
  }

  traceId(): string {
    const id = this.#take(16);
    return id === ZERO_TRACE ? this.traceId() : id;
  }

  spanId(): string {
    const id = this.#take(8);
    return id === ZERO_SPAN ? this.spanId() : id;
  }
}

/** What `tracing:` configures. */
export interface TracingOptions {
  /** The share of traces started here that are sampled (exported); a continued trace keeps its parent's decision. */
  readonly sampleRatio: number;
  /** Where sampled spans go; null: propagate only. */
  readonly exporter: OtlpExporter | null;
}

/** A span being served: what the end needs that the request does not carry. */
interface OpenSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentId: string | null;
  readonly sampled: boolean;
  /** Wall-clock start in ns (OTLP wants Unix time). */
  readonly startNs: bigint;
}

/** The trace id of a request veer traced, for the access log; null when it was not. */
export function traceIdOf(req: IncomingMessage): string | null {
  return spans.get(req)?.traceId ?? null;
}

const spans = new WeakMap<IncomingMessage, OpenSpan>();

/** How the router decided, said again for the span (only sampled spans pay for it). */
function decisionOf(version: CompiledVersion, req: IncomingMessage): string {
  const service = version.service;
  const rule = matchRuleIndex(service.rules, req);
  if (rule !== -1) return `rule ${service.rules[rule]!.index}`;
  if (service.split.versions.length === 1) return 'single';
  const bucket = stickyBucketOf(service.split, req);
  return bucket === -1 ? 'random' : `sticky bucket ${bucket}`;
}

/** The Unix time now in ns, from the monotonic clock anchored once (performance.now has µs precision). */
const ORIGIN_NS = BigInt(Date.now()) * 1_000_000n - BigInt(Math.round(performance.now() * 1e6));
function unixNanos(at: number): bigint {
  return ORIGIN_NS + BigInt(Math.round(at * 1e6));
}

/** Starts and ends veer's span of each exchange; an observer in the data plane's chain. */
export class Tracer implements ExchangeObserver {
  readonly #ids = new IdSource();
  readonly #sampleRatio: number;
  readonly #exporter: OtlpExporter | null;
  readonly #random: () => number;

  constructor(options: TracingOptions, random: () => number = Math.random) {
    this.#sampleRatio = options.sampleRatio;
    this.#exporter = options.exporter;
    this.#random = random;
  }

  /** Called before the request goes upstream: the upstream sees veer's span as its parent. */
  onExchangeStart(_version: CompiledVersion, exchange: StartingExchange): void {
    const req = exchange.req;
    const parent = parseTraceParent(req.headers.traceparent);
    const span: OpenSpan = {
      traceId: parent?.traceId ?? this.#ids.traceId(),
      spanId: this.#ids.spanId(),
      parentId: parent?.parentId ?? null,
      sampled: parent === null ? this.#random() < this.#sampleRatio : parent.sampled,
      startNs: unixNanos(exchange.startedAt),
    };
    spans.set(req, span);
    replaceRequestHeader(req, 'traceparent', `00-${span.traceId}-${span.spanId}-${span.sampled ? '01' : '00'}`);
  }

  onExchangeEnd(exchange: FinishedExchange): void {
    const span = spans.get(exchange.req);
    if (span === undefined || !span.sampled || this.#exporter === null) return;
    const req = exchange.req;
    const version = exchange.version;
    const failure = exchange.failure;
    const attributes: OtlpSpan['attributes'] = [
      ['http.request.method', req.method ?? 'GET'],
      ['url.path', req.url ?? '/'],
      ['server.address', req.headers.host ?? ''],
      ['network.protocol.version', req.httpVersion],
      ['http.response.status_code', exchange.status],
      ['veer.service', version.service.name],
      ['veer.version', version.name],
      ['veer.route', decisionOf(version, req)],
      ['veer.upstream', exchange.endpoint.origin],
      ['veer.retries', exchange.retries],
    ];
    if (exchange.failedOverTo !== null) attributes.push(['veer.failover', exchange.failedOverTo.name]);
    if (failure !== null) attributes.push(['error.type', failure.code]);
    if (exchange.grpcStatus >= 0) attributes.push(['rpc.grpc.status_code', exchange.grpcStatus]);
    this.#exporter.add({
      traceId: span.traceId,
      spanId: span.spanId,
      parentId: span.parentId,
      name: `${req.method ?? 'GET'} ${version.service.name}`,
      startNs: span.startNs,
      endNs: unixNanos(performance.now()),
      error: failure !== null || exchange.status >= 500,
      attributes,
    });
  }
}

/** `tracing:` as the config has it. */
export type TracingSettings = NonNullable<Config['tracing']>;

/**
 * The data plane's tracing from the config's section (`otlpTimeoutMs`: its
 * `otlp.timeout`, parsed): propagation always, export when `otlp` names a collector.
 */
export function openTracing(settings: TracingSettings, otlpTimeoutMs: number, log: Logger, onDropped: (count: number) => void): TracingOptions {
  const otlp = settings.otlp;
  return {
    sampleRatio: settings.sampleRatio,
    exporter:
      otlp === undefined
        ? null
        : new OtlpExporter({ endpoint: otlp.endpoint, ...(otlp.headers && { headers: otlp.headers }), timeoutMs: otlpTimeoutMs, serviceName: settings.serviceName, log, onDropped }),
  };
}
