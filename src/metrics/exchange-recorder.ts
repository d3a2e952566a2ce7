// THE RECORDING POINT. The data plane calls the recorder once when an
// exchange starts and once when it ends (response finished, upstream failed,
// timed out, or client gone: 499). Everything per version - the Prometheus
// series and the rollout analysis window - is counted here and nowhere else.
//
//   table version   --WeakMap--> VersionRecord (one per service/version name,
//   (new objects each publish)     shared by every table that names it)
//                                   ├── codes: Map<method*1000+code, {labels, count}>
//                                   ├── buckets/sum/count   (duration histogram)
//                                   ├── failures[kind]      (upstream errors)
//                                   ├── inFlight
//                                   └── window              (VersionWindow)
//
// HOT PATH: onExchangeEnd does a WeakMap lookup, a numeric Map lookup and
// typed-array increments. Label objects are built once per series; the
// Prometheus text is only produced at scrape time (see collectors.ts).

import type { MeasuredExchange, MeasuredTable, MeasuredVersion } from './measured.ts';
import { DURATION_BUCKETS, FAILURE_KINDS, GRPC_STATUS_COUNT, METHODS, bucketIndexOf, foldFailureKind, foldGrpcStatus, foldMethod, foldStatus } from './names.ts';
import { summarizeWindow, VersionWindow, type WindowOptions, type WindowStats, type WindowSummary } from './version-window.ts';

/** The labels of one veer_requests_total series and its count. */
export interface CodeSeries {
  readonly labels: { readonly service: string; readonly version: string; readonly method: string; readonly code: string };
  count: number;
}

/** Everything counted for one (service, version). */
export class VersionRecord {
  readonly service: string;
  readonly version: string;
  readonly labels: { readonly service: string; readonly version: string };
  /** veer_requests_total series, keyed by methodIndex * 1000 + code. */
  readonly codes = new Map<number, CodeSeries>();
  /** Duration histogram: requests per bucket of DURATION_BUCKETS, last one +Inf (not cumulative). */
  readonly buckets = new Float64Array(DURATION_BUCKETS.length + 1);
  durationSum = 0;
  durationCount = 0;
  /** Upstream failures per FAILURE_KINDS index. */
  readonly failures = new Float64Array(FAILURE_KINDS.length);
  inFlight = 0;
  /** Retries by reason (connect, reset, timeout, a status); made on the first retry. */
  retries: Map<string, number> | null = null;
  /** Requests that failed over, by the version that took them; made on the first. */
  failovers: Map<string, number> | null = null;
  /** gRPC calls by grpc-status (0-16); made on the first gRPC call. */
  grpc: Float64Array | null = null;
  readonly window: VersionWindow;

  constructor(service: string, version: string, window: WindowOptions) {
    this.service = service;
    this.version = version;
    this.labels = Object.freeze({ service, version });
    // The histogram's bounds, so both are fed from one bucket lookup.
    this.window = new VersionWindow({ ...window, bounds: DURATION_BUCKETS });
  }

  /** Creates the series for a (method, code) pair seen for the first time. */
  addCode(key: number, method: number, code: number): CodeSeries {
    const series: CodeSeries = { labels: Object.freeze({ service: this.service, version: this.version, method: METHODS[method]!, code: String(code) }), count: 0 };
    this.codes.set(key, series);
    return series;
  }
}

/** How often windows that saw no request for a whole window are freed. */
const IDLE_SWEEP_MS = 60_000;

/** How to build an ExchangeRecorder. */
export interface RecorderOptions {
  /** Milliseconds on the clock the data plane uses for `startedAt` (default performance.now). */
  readonly now?: () => number;
  readonly window?: WindowOptions;
}

/** Counts every exchange per version; the data plane hands it every exchange (it fits the forwarder's ExchangeObserver). */
export class ExchangeRecorder {
  readonly #byVersion = new WeakMap<MeasuredVersion, VersionRecord>();
  readonly #byName = new Map<string, VersionRecord>();
  readonly #now: () => number;
  readonly #window: WindowOptions;
  #table: MeasuredTable | null = null;
  #prunedFor: MeasuredTable | null = null;
  #sweeping = false;
  /** Read for versions without a record: never counts, never allocates its ring. */
  #empty: VersionWindow | null = null;

  constructor(options: RecorderOptions = {}) {
    this.#now = options.now ?? (() => performance.now());
    this.#window = options.window ?? {};
  }

  /**
   * Follows a newly published table: O(1). Records are made on a version's
   * first exchange, not here, so versions without traffic cost nothing; the
   * records of versions the table no longer has are dropped at the next
   * read of records(), which keeps the label sets bounded by the config.
   */
  bindTable(table: MeasuredTable): void {
    this.#table = table;
  }

  /** The table last bound (null before the first). */
  get table(): MeasuredTable | null {
    return this.#table;
  }

  /** Frees the windows that saw no request for a whole window; the counters stay. Returns how many were freed. */
  releaseIdleWindows(): number {
    const now = this.#now();
    let released = 0;
    for (const record of this.#byName.values()) if (record.window.releaseIfIdle(now)) released++;
    return released;
  }

  /** Called by the data plane when an exchange starts. */
  onExchangeStart(version: MeasuredVersion): void {
    (this.#byVersion.get(version) ?? this.#recordOf(version)).inFlight++;
  }

  /** Called by the data plane when an exchange ends. */
  onExchangeEnd(exchange: MeasuredExchange): void {
    const version = exchange.version;
    const status = exchange.status;
    const failure = exchange.failure;
    const startedAt = exchange.startedAt;
    const record = this.#byVersion.get(version) ?? this.#recordOf(version);
    const now = this.#now();
    const seconds = now > startedAt ? (now - startedAt) / 1000 : 0;
    const m = foldMethod(exchange.method);
    const code = foldStatus(status);
    const key = m * 1000 + code;
    (record.codes.get(key) ?? record.addCode(key, m, code)).count++;
    // One bucket lookup serves the histogram and the analysis window (same bounds).
    const bucket = bucketIndexOf(seconds);
    record.buckets[bucket]! += 1;
    record.durationSum += seconds;
    record.durationCount += 1;
    if (failure !== null) record.failures[foldFailureKind(failure.kind)]! += 1;
    // An end without a start (a record bound after the exchange began) takes nothing away.
    if (record.inFlight > 0) record.inFlight--;
    const grpcStatus = exchange.grpcStatus;
    let failed = failure !== null || (status >= 500 && status <= 599);
    if (grpcStatus >= 0) {
      const folded = foldGrpcStatus(grpcStatus);
      (record.grpc ??= new Float64Array(GRPC_STATUS_COUNT))[folded]! += 1;
      // UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE: the server failed the call, under an HTTP 200.
      failed ||= folded === 2 || folded === 4 || folded === 13 || folded === 14;
    }
    record.window.recordBucket(now, bucket, failed);
    // Only exchanges that used a safety net pay for counting it.
    const reasons = exchange.retryReasons;
    if (reasons !== null) {
      const retries = (record.retries ??= new Map());
      for (const reason of reasons) retries.set(reason, (retries.get(reason) ?? 0) + 1);
    }
    const to = exchange.failedOverTo;
    if (to !== null) {
      // The version that answered has served traffic too (its endpoints are reported from now on).
      if (this.#byVersion.get(to) === undefined) this.#recordOf(to);
      const failovers = (record.failovers ??= new Map());
      failovers.set(to.name, (failovers.get(to.name) ?? 0) + 1);
    }
  }

  /** The live records (versions that saw traffic and are still configured), for the collectors. */
  records(): IterableIterator<VersionRecord> {
    const table = this.#table;
    if (table !== null && table !== this.#prunedFor) {
      this.#prunedFor = table;
      for (const [key, record] of this.#byName) {
        if (table.servicesByName.get(record.service)?.versionsByName.has(record.version) !== true) this.#byName.delete(key);
      }
    }
    return this.#byName.values();
  }

  /** The last `spanMs` of one version's traffic, or null when the version is unknown. */
  readWindow(service: string, version: string, spanMs: number): WindowStats | null {
    const record = this.#byName.get(service + '\0' + version);
    if (record !== undefined) return record.window.read(this.#now(), spanMs);
    // A configured version without traffic yet has an empty window, not an unknown one.
    if (!this.#configured(service, version)) return null;
    this.#empty ??= new VersionWindow({ ...this.#window, bounds: DURATION_BUCKETS });
    return this.#empty.read(this.#now(), spanMs);
  }

  /** Whether the version has a record: it has had traffic since it was configured. */
  hasRecord(service: string, version: string): boolean {
    return this.#byName.has(service + '\0' + version);
  }

  /** The record of a configured version by name, made when it has none yet; null for a version the table lacks. */
  recordByName(service: string, version: string): VersionRecord | null {
    const known = this.#byName.get(service + '\0' + version);
    if (known !== undefined) return known;
    const compiled = this.#table?.servicesByName.get(service);
    const v = compiled?.versions.find((candidate) => candidate.name === version);
    return v === undefined ? null : this.#recordOf(v);
  }

  #configured(service: string, version: string): boolean {
    return this.#table?.servicesByName.get(service)?.versionsByName.has(version) === true;
  }

  /** The last `spanMs` of one version's traffic as counts and p50/p99 in ms, or null when the version is unknown. */
  readSummary(service: string, version: string, spanMs: number): WindowSummary | null {
    const stats = this.readWindow(service, version, spanMs);
    return stats === null ? null : summarizeWindow(stats);
  }

  #recordOf(version: MeasuredVersion): VersionRecord {
    const known = this.#byVersion.get(version);
    if (known !== undefined) return known;
    const key = version.service.name + '\0' + version.name;
    let record = this.#byName.get(key);
    if (record === undefined) {
      record = new VersionRecord(version.service.name, version.name, this.#window);
      this.#byName.set(key, record);
      // Windows of versions that go quiet are freed; the first record starts the sweep.
      if (!this.#sweeping) {
        this.#sweeping = true;
        setInterval(() => this.releaseIdleWindows(), IDLE_SWEEP_MS).unref();
      }
    }
    this.#byVersion.set(version, record);
    return record;
  }
}
