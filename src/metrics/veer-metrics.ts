// The veer registry: the per-version metrics (from the recorder), the
// weight and rollout gauges (from published tables and the rollout engine),
// the reload counter, and Node's process metrics.
//
// With workers, one process's whole state is `snapshot()` (prom-client's
// JSON form): the primary gathers one snapshot per worker over IPC and
// answers /metrics with `renderSnapshots(all)`, which sums them through
// prom-client's AggregatorRegistry; gauges that every worker reports
// identically (weights, rollout info) carry the `first` aggregator so they
// are not multiplied by the number of workers.

import { AggregatorRegistry, Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { createCertificateMetrics, createEndpointMetric, createMirrorMetric, type MeasuredMirror, createRecorderMetrics, createVersionInfoMetric, createWeightMetric, type MeasuredCertificates } from './collectors.ts';
import { ExchangeRecorder, type RecorderOptions } from './exchange-recorder.ts';
import type { MeasuredEndpoint, MeasuredTable } from './measured.ts';
import { METRIC_NAMES, RELOAD_RESULTS } from './names.ts';

/** One process's metrics as JSON, what the cluster primary gathers from each worker. */
export type MetricSnapshot = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** The Prometheus text exposition of a registry, with its content type. */
export interface MetricsText {
  readonly contentType: string;
  readonly body: string;
}

/** How to build the metrics of one veer process. */
export interface VeerMetricsOptions extends RecorderOptions {
  /** Export Node's process metrics (process_*, nodejs_*; default true). */
  readonly processMetrics?: boolean;
  /** The phases a rollout can be in (state's list): veer_rollout_info has one series per phase. */
  readonly rolloutPhases?: readonly string[];
}

/** The metrics of one veer process. */
export interface VeerMetrics {
  readonly registry: Registry;
  /** The ExchangeObserver to give the data plane; also the per-version windows for rollout analysis. */
  readonly recorder: ExchangeRecorder;
  /** Follows a newly published table (veer_version_weight reads it at scrape time). */
  observeTable(table: MeasuredTable): void;
  /** Reports a service's rollout phase and canary in veer_rollout_info (1 on the current phase). */
  setRolloutPhase(service: string, phase: string, canary: string): void;
  /** Removes a service's veer_rollout_info series (no rollout any more). */
  clearRollout(service: string): void;
  /** Reports a release's phase in veer_release_info (1 on the current phase). */
  setReleasePhase(release: string, phase: string): void;
  /** Counts one config reload by its result. */
  countReload(result: 'success' | 'failure'): void;
  /** Counts spans the trace exporter dropped (its queue full, or the collector down). */
  countDroppedSpans(count: number): void;
  /** Where veer_endpoint_up reads the endpoints in use (the data plane's upstream registry), at scrape time. */
  readEndpointsFrom(read: () => Iterable<MeasuredEndpoint>): void;
  /** Where veer_mirror_requests_total reads the mirrored-copy counts (the data plane's upstream registry). */
  readMirrorsFrom(read: () => Iterable<MeasuredMirror>): void;
  /** Where the TLS certificate metrics read the certificates in use (the data plane's store). */
  readCertificatesFrom(store: MeasuredCertificates): void;
  /** This process's metrics as JSON (one worker's share when aggregating). */
  snapshot(): Promise<MetricSnapshot>;
  /** This process's metrics in the Prometheus text format. */
  render(): Promise<MetricsText>;
}

/** Builds a registry with every veer metric. */
export function createVeerMetrics(options: VeerMetricsOptions = {}): VeerMetrics {
  const registry = new Registry();
  const recorder = new ExchangeRecorder(options);
  for (const metric of createRecorderMetrics(recorder)) registry.registerMetric(metric);

  registry.registerMetric(createWeightMetric(recorder));
  registry.registerMetric(createVersionInfoMetric(recorder));
  let readEndpoints: () => Iterable<MeasuredEndpoint> = () => [];
  registry.registerMetric(createEndpointMetric(() => readEndpoints(), (service, version) => recorder.hasRecord(service, version)));
  let readMirrors: () => Iterable<MeasuredMirror> = () => [];
  registry.registerMetric(createMirrorMetric(() => readMirrors()));
  let certificates: MeasuredCertificates | null = null;
  for (const metric of createCertificateMetrics(() => certificates)) registry.registerMetric(metric);
  const rolloutInfo = new Gauge({
    name: METRIC_NAMES.rolloutInfo,
    help: 'Rollout state of a service: one series per phase for the current canary, 1 on the current phase.',
    labelNames: ['service', 'phase', 'canary'] as const,
    aggregator: 'first',
    registers: [registry],
  });
  const releaseInfo = new Gauge({
    name: METRIC_NAMES.releaseInfo,
    help: 'Release state: one series per phase for each release that ran, 1 on the current phase.',
    labelNames: ['release', 'phase'] as const,
    aggregator: 'first',
    registers: [registry],
  });
  const reloads = new Counter({
    name: METRIC_NAMES.configReloads,
    help: 'Config reloads, by result (success, failure).',
    labelNames: ['result'] as const,
    // Every process that reloads reads the same file: the max is the number of reloads.
    aggregator: 'max',
    registers: [registry],
  });
  for (const result of RELOAD_RESULTS) reloads.inc({ result }, 0);
  const droppedSpans = new Counter({
    name: METRIC_NAMES.traceSpansDropped,
    help: 'Trace spans not exported: the queue was full or the collector did not take them (tracing.otlp).',
    registers: [registry],
  });
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });

  const phases = options.rolloutPhases ?? [];
  const rollouts = new Map<string, string>();

  const clearRollout = (service: string): void => {
    const canary = rollouts.get(service);
    if (canary === undefined) return;
    for (const phase of phases) rolloutInfo.remove({ service, phase, canary });
    rollouts.delete(service);
  };

  return {
    registry,
    recorder,
    observeTable(table) {
      // O(1) but for the running rollouts: weights are read from the table when /metrics is scraped.
      recorder.bindTable(table);
      for (const service of [...rollouts.keys()]) if (!table.servicesByName.has(service)) clearRollout(service);
    },
    setRolloutPhase(service, phase, canary) {
      if (rollouts.get(service) !== canary) clearRollout(service);
      rollouts.set(service, canary);
      for (const p of phases) rolloutInfo.set({ service, phase: p, canary }, p === phase ? 1 : 0);
    },
    clearRollout,
    setReleasePhase(release, phase) {
      for (const p of phases) releaseInfo.set({ release, phase: p }, p === phase ? 1 : 0);
    },
    countReload(result) {
      reloads.inc({ result });
    },
    countDroppedSpans(count) {
      droppedSpans.inc(count);
    },
    readEndpointsFrom(read) {
      readEndpoints = read;
    },
    readMirrorsFrom(read) {
      readMirrors = read;
    },
    readCertificatesFrom(store) {
      certificates = store;
    },
    snapshot: () => registry.getMetricsAsJSON(),
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}

/** Sums the snapshots of several processes (workers) into one Prometheus text exposition. */
export async function renderSnapshots(snapshots: readonly MetricSnapshot[]): Promise<MetricsText> {
  const merged = AggregatorRegistry.aggregate([...snapshots]);
  return { contentType: merged.contentType, body: await merged.metrics() };
}
