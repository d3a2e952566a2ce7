// Sends finished spans to an OpenTelemetry collector over OTLP/HTTP with the
// JSON encoding (POST {endpoint}, application/json). Off the request path and
// bounded every way, so a slow or dead collector costs only a counter:
//
//   add(span) ──> queue (at most maxQueue; beyond it the span is dropped)
//   every flushInterval, or once a batch is full ──> one POST of at most maxBatch
//   spans, one at a time, each bounded by timeout; a failed POST drops its batch.
//
// Counting, not retrying: a collector that is down for a minute would otherwise
// have veer hold a minute of spans in memory and then burst them.

import { hostname } from 'node:os';
import type { Logger } from '../log/index.ts';

/** One span as the exporter takes it (tracing.ts makes them). */
export interface OtlpSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentId: string | null;
  readonly name: string;
  readonly startNs: bigint;
  readonly endNs: bigint;
  readonly error: boolean;
  readonly attributes: [key: string, value: string | number][];
}

export interface OtlpExporterOptions {
  /** The collector's OTLP/HTTP traces URL, e.g. http://otel-collector:4318/v1/traces. */
  readonly endpoint: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** `service.name` of the spans' resource. */
  readonly serviceName: string;
  readonly timeoutMs?: number;
  readonly flushIntervalMs?: number;
  readonly maxBatch?: number;
  readonly maxQueue?: number;
  readonly log?: Logger;
  /** Called with how many spans were dropped (queue full, or a POST that failed). */
  readonly onDropped?: (count: number) => void;
}

/** OTLP's SpanKind SERVER; StatusCode ERROR. */
const SPAN_KIND_SERVER = 2;
const STATUS_ERROR = 2;

function attribute(key: string, value: string | number): Record<string, unknown> {
  return { key, value: typeof value === 'number' ? { intValue: value } : { stringValue: value } };
}

/** Batches spans and posts them; see the top of the file. */
export class OtlpExporter {
  readonly #options: Required<Omit<OtlpExporterOptions, 'log' | 'onDropped' | 'headers'>> & Pick<OtlpExporterOptions, 'log' | 'onDropped' | 'headers'>;
  readonly #resource: Record<string, unknown>;
  #queue: OtlpSpan[] = [];
  #sending: Promise<void> | null = null;
  readonly #timer: NodeJS.Timeout;
  #closed = false;
  /** Whether the last POST failed: a dead collector is logged once, not every second. */
  #failing = false;
  /** Spans posted and accepted, and dropped, since start. */
  exported = 0;
  dropped = 0;

  constructor(options: OtlpExporterOptions) {
    this.#options = { timeoutMs: 5000, flushIntervalMs: 1000, maxBatch: 512, maxQueue: 4096, ...options };
    this.#resource = {
      attributes: [attribute('service.name', options.serviceName), attribute('host.name', hostname()), attribute('process.pid', process.pid)],
    };
    this.#timer = setInterval(() => this.#flush(), this.#options.flushIntervalMs);
    this.#timer.unref();
  }

  /** Queues a finished span; drops it when the queue is full. */
  add(span: OtlpSpan): void {
    if (this.#closed || this.#queue.length >= this.#options.maxQueue) {
      this.#drop(1);
      return;
    }
    this.#queue.push(span);
    if (this.#queue.length >= this.#options.maxBatch && this.#sending === null) this.#flush();
  }

  /** Posts what is queued, then stops; resolves by `timeoutMs` at the latest. */
  async close(timeoutMs: number): Promise<void> {
    clearInterval(this.#timer);
    const deadline = performance.now() + timeoutMs;
    while ((this.#queue.length > 0 || this.#sending !== null) && performance.now() < deadline) {
      this.#flush();
      const sending = this.#sending;
      if (sending === null) break;
      await Promise.race([sending, new Promise((resolve) => setTimeout(resolve, Math.max(1, deadline - performance.now())).unref())]);
    }
    this.#closed = true;
    if (this.#queue.length > 0) this.#drop(this.#queue.length);
    this.#queue = [];
  }

  #drop(count: number): void {
    this.dropped += count;
    this.#options.onDropped?.(count);
  }

  #flush(): void {
    if (this.#sending !== null || this.#queue.length === 0) return;
    const batch = this.#queue.length <= this.#options.maxBatch ? this.#queue : this.#queue.slice(0, this.#options.maxBatch);
    this.#queue = batch === this.#queue ? [] : this.#queue.slice(batch.length);
    this.#sending = this.#post(batch).finally(() => {
      this.#sending = null;
      if (this.#queue.length >= this.#options.maxBatch) this.#flush();
    });
  }

  async #post(batch: OtlpSpan[]): Promise<void> {
    const body = JSON.stringify({
      resourceSpans: [{ resource: this.#resource, scopeSpans: [{ scope: { name: 'veer' }, spans: batch.map(toOtlp) }] }],
    });
    try {
      const res = await fetch(this.#options.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.#options.headers },
        body,
        signal: AbortSignal.timeout(this.#options.timeoutMs),
      });
      await res.arrayBuffer();
      if (res.status >= 200 && res.status < 300) {
        this.exported += batch.length;
        if (this.#failing) this.#options.log?.info({ endpoint: this.#options.endpoint }, 'the trace collector takes spans again');
        this.#failing = false;
        return;
      }
      this.#failed(`answered ${res.status}`);
    } catch (err) {
      this.#failed((err as Error).message);
    }
    this.#drop(batch.length);
  }

  #failed(why: string): void {
    if (!this.#failing) this.#options.log?.warn({ endpoint: this.#options.endpoint, error: why }, 'could not send spans to the trace collector; dropping them until it takes them again (veer_trace_spans_dropped_total)');
    this.#failing = true;
  }
}

function toOtlp(span: OtlpSpan): Record<string, unknown> {
  return {
    traceId: span.traceId,
    spanId: span.spanId,
    ...(span.parentId !== null && { parentSpanId: span.parentId }),
    name: span.name,
    kind: SPAN_KIND_SERVER,
    startTimeUnixNano: String(span.startNs),
    endTimeUnixNano: String(span.endNs),
    attributes: span.attributes.map(([key, value]) => attribute(key, value)),
    ...(span.error && { status: { code: STATUS_ERROR } }),
  };
}
