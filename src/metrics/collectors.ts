// Prometheus views of the recorder's per-version numbers. They are prom-client
// metric objects (registered in the veer registry like any Counter) whose
// values are read from the VersionRecords only when /metrics is scraped, so
// the request path never builds a label string or hashes a label set.

import type { Aggregator, Metric } from 'prom-client';
import type { ExchangeRecorder } from './exchange-recorder.ts';
import type { MeasuredEndpoint } from './measured.ts';
import { DURATION_BUCKETS, FAILURE_KINDS, METRIC_NAMES } from './names.ts';

type Labels = Readonly<Record<string, string | number>>;

/** One sample, in the shape prom-client's registry and AggregatorRegistry read. */
interface Sample {
  readonly labels: Labels;
  readonly value: number;
  readonly metricName?: string;
}

/** What prom-client's Registry needs from a metric: a name and an async get(). */
interface ScrapeTimeMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly aggregator: Aggregator;
  get(): Promise<{ name: string; help: string; type: string; aggregator: Aggregator; values: Sample[] }>;
  /** Registry.resetMetrics() calls this; the recorder's counts are never reset from outside. */
  reset(): void;
}

function defineMetric(name: string, help: string, type: ScrapeTimeMetric['type'], aggregator: Aggregator, read: () => Sample[]): Metric {
  const metric: ScrapeTimeMetric = {
    name,
    help,
    type,
    aggregator,
    get: async () => ({ name, help, type, aggregator, values: read() }),
    reset: () => {},
  };
  // The registry reads only name, get() and reset(); prom-client's Metric type lists its own classes.
  return metric as unknown as Metric;
}

/** The four per-version metrics read from `recorder`: requests, duration, upstream errors, in flight. */
export function createRecorderMetrics(recorder: ExchangeRecorder): Metric[] {
  const requests = defineMetric(METRIC_NAMES.requests, 'Requests proxied, by service, version, method and status code (499: client closed).', 'counter', 'sum', () => {
    const values: Sample[] = [];
    for (const record of recorder.records()) for (const series of record.codes.values()) values.push({ labels: series.labels, value: series.count });
    return values;
  });

  const bucketLabels = DURATION_BUCKETS.map((le) => ({ le }));
  const durationName = METRIC_NAMES.duration;
  const duration = defineMetric(durationName, 'Time from receiving the request to the end of the response, in seconds.', 'histogram', 'sum', () => {
    const values: Sample[] = [];
    for (const record of recorder.records()) {
      let cumulative = 0;
      for (let b = 0; b < DURATION_BUCKETS.length; b++) {
        cumulative += record.buckets[b]!;
        values.push({ labels: { ...record.labels, ...bucketLabels[b] }, value: cumulative, metricName: `${durationName}_bucket` });
      }
      values.push({ labels: { ...record.labels, le: '+Inf' }, value: record.durationCount, metricName: `${durationName}_bucket` });
      values.push({ labels: record.labels, value: record.durationSum, metricName: `${durationName}_sum` });
      values.push({ labels: record.labels, value: record.durationCount, metricName: `${durationName}_count` });
    }
    return values;
  });

  const upstreamErrors = defineMetric(METRIC_NAMES.upstreamErrors, 'Upstream failures (connect, timeout, reset, protocol, other), by service and version.', 'counter', 'sum', () => {
    const values: Sample[] = [];
    for (const record of recorder.records()) {
      for (let k = 0; k < FAILURE_KINDS.length; k++) values.push({ labels: { ...record.labels, kind: FAILURE_KINDS[k]! }, value: record.failures[k]! });
    }
    return values;
  });

  const inFlight = defineMetric(METRIC_NAMES.inFlight, 'Requests being proxied right now, by service and version.', 'gauge', 'sum', () => {
    const values: Sample[] = [];
    for (const record of recorder.records()) values.push({ labels: record.labels, value: record.inFlight });
    return values;
  });

  const retries = defineMetric(METRIC_NAMES.retries, 'Retries of requests to an upstream, by service, version and reason (connect, reset, timeout or the status retried).', 'counter', 'sum', () => {
    const values: Sample[] = [];
    for (const record of recorder.records()) {
      if (record.retries !== null) for (const [reason, count] of record.retries) values.push({ labels: { ...record.labels, reason }, value: count });
    }
    return values;
  });

  const failovers = defineMetric(METRIC_NAMES.failovers, 'Requests sent to another version because theirs had no live endpoint, by service, from and to.', 'counter', 'sum', () => {
    const values: Sample[] = [];
    for (const record of recorder.records()) {
      if (record.failovers !== null) for (const [to, count] of record.failovers) values.push({ labels: { service: record.service, from: record.version, to }, value: count });
    }
    return values;
  });

  const grpcResponses = defineMetric(
    METRIC_NAMES.grpcResponses,
    'gRPC calls by service, version and grpc-status (the HTTP status of a gRPC call is 200 whatever its outcome).',
    'counter',
    'sum',
    () => {
      const values: Sample[] = [];
      for (const record of recorder.records()) {
        const counts = record.grpc;
        if (counts === null) continue;
        for (let status = 0; status < counts.length; status++) {
          if (counts[status]! > 0) values.push({ labels: { ...record.labels, grpc_status: String(status) }, value: counts[status]! });
        }
      }
      return values;
    },
  );

  return [requests, duration, upstreamErrors, inFlight, retries, failovers, grpcResponses];
}

/**
 * veer_endpoint_up: 1 while an endpoint is in rotation, 0 while outlier
 * detection or health checks keep it out; one series per endpoint of a
 * version that has had traffic (as the request series: none before), so a
 * pool that 10 000 versions share costs the versions that use it. With
 * workers, each has its own view: `min`, so 1 means every worker uses it.
 */
export function createEndpointMetric(read: () => Iterable<MeasuredEndpoint>, sawTraffic: (service: string, version: string) => boolean): Metric {
  return defineMetric(METRIC_NAMES.endpointUp, 'Whether an upstream endpoint (address:port) is in rotation (1) or out (0), by service and version.', 'gauge', 'min', () => {
    const values: Sample[] = [];
    for (const { version, endpoint } of read()) {
      if (!sawTraffic(version.service.name, version.name)) continue;
      values.push({ labels: { service: version.service.name, version: version.name, endpoint: endpoint.origin.replace(/^https?:\/\//, '') }, value: endpoint.up ? 1 : 0 });
    }
    return values;
  });
}

/** One count of mirrored copies, as the data plane keeps them. */
export interface MeasuredMirror {
  readonly service: string;
  readonly version: string;
  readonly result: string;
  readonly count: number;
}

/** veer_mirror_requests_total: copies sent by `rules:` requestMirror filters, by service, (mirror) version and result. */
export function createMirrorMetric(read: () => Iterable<MeasuredMirror>): Metric {
  return defineMetric(METRIC_NAMES.mirrorRequests, 'Mirrored request copies by service, version (the mirror) and result: sent, failed (error or 5xx), dropped (too many in flight), skipped (body too large).', 'counter', 'sum', () => {
    const values: Sample[] = [];
    for (const m of read()) values.push({ labels: { service: m.service, version: m.version, result: m.result }, value: m.count });
    return values;
  });
}

/** veer_version_weight, read from the last table the recorder was given: one series per configured version. */
export function createWeightMetric(recorder: ExchangeRecorder): Metric {
  const labelsOf = new WeakMap<object, Labels>();
  // Every worker reports the same table: `first`, so the weights are not summed.
  return defineMetric(METRIC_NAMES.weight, 'Share of split traffic (0-100) each version gets, as published.', 'gauge', 'first', () => {
    const values: Sample[] = [];
    const table = recorder.table;
    if (table === null) return values;
    for (const service of table.services) {
      const percents = service.split.percents;
      for (let i = 0; i < service.versions.length; i++) {
        const version = service.versions[i]!;
        let labels = labelsOf.get(version);
        if (labels === undefined) labelsOf.set(version, (labels = { service: service.name, version: version.name }));
        values.push({ labels, value: percents[i] ?? 0 });
      }
    }
    return values;
  });
}

/** Longest label value veer_version_info exports; longer ones are cut (a label is for reading, not for storage). */
export const MAX_LABEL_VALUE = 128;

/**
 * veer_version_info{service,version,label_<name>...} 1: which commit or
 * image each version is. Only versions with `labels` have a series (so
 * 10 000 services without labels cost nothing); label names come from the
 * config's validated names, values are cut at MAX_LABEL_VALUE.
 */
export function createVersionInfoMetric(recorder: ExchangeRecorder): Metric {
  const labelsOf = new WeakMap<object, Labels>();
  return defineMetric(METRIC_NAMES.versionInfo, 'Labels of each version (commit, image...) from the config, as label_<name>; 1 for every version that has labels.', 'gauge', 'first', () => {
    const values: Sample[] = [];
    const table = recorder.table;
    if (table === null) return values;
    for (const service of table.services) {
      for (const version of service.versions) {
        const own = version.labels;
        if (own === undefined || Object.keys(own).length === 0) continue;
        let labels = labelsOf.get(version);
        if (labels === undefined) {
          const built: Record<string, string> = { service: service.name, version: version.name };
          for (const [name, value] of Object.entries(own)) built[`label_${name}`] = value.length > MAX_LABEL_VALUE ? value.slice(0, MAX_LABEL_VALUE) : value;
          labelsOf.set(version, (labels = built));
        }
        values.push({ labels, value: 1 });
      }
    }
    return values;
  });
}

/** What the TLS listener's certificate store reports (the data plane's store fits). */
export interface MeasuredCertificates {
  list(): readonly { readonly cert: string; readonly names: readonly string[]; readonly expiresInSeconds: number }[];
  readonly failures: number;
}

/**
 * veer_tls_certificate_expiry_seconds{name}: seconds until each certificate
 * in use expires (name: its first DNS name), and
 * veer_tls_certificate_failures_total: pairs that could not be loaded or
 * renewed (the last good one kept serving). With workers, each loads the
 * same files: `min` and `max`.
 */
export function createCertificateMetrics(read: () => MeasuredCertificates | null): Metric[] {
  const expiry = defineMetric(METRIC_NAMES.certificateExpiry, 'Seconds until each TLS certificate in use expires, by its first name.', 'gauge', 'min', () => {
    const store = read();
    return store === null ? [] : store.list().map((c) => ({ labels: { name: c.names[0] ?? c.cert }, value: c.expiresInSeconds }));
  });
  const failures = defineMetric(METRIC_NAMES.certificateFailures, 'TLS certificate pairs that could not be loaded or renewed (the last good one kept serving).', 'counter', 'max', () => {
    const store = read();
    return store === null ? [] : [{ labels: {}, value: store.failures }];
  });
  return [expiry, failures];
}
