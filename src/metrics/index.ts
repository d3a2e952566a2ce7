// Owns: the prom-client registry, metric names, bounded label sets, the per-exchange recording point and per-version windows.
// Must not touch: sockets, config files, route choice or the table's contents; it never takes a label value from a request.

export { createVeerMetrics, renderSnapshots } from './veer-metrics.ts';
export type { VeerMetrics, VeerMetricsOptions, MetricSnapshot, MetricsText } from './veer-metrics.ts';
export { ExchangeRecorder, VersionRecord } from './exchange-recorder.ts';
export type { RecorderOptions, CodeSeries } from './exchange-recorder.ts';
export type { MeasuredExchange, MeasuredService, MeasuredTable, MeasuredVersion } from './measured.ts';
export { VersionWindow, VERSION_WINDOW, quantileOf, summarizeWindow } from './version-window.ts';
export type { WindowOptions, WindowStats, WindowSummary } from './version-window.ts';
export {
  METRIC_NAMES,
  DURATION_BUCKETS,
  METHODS,
  FAILURE_KINDS,
  RELOAD_RESULTS,
  foldMethod,
  foldFailureKind,
  foldStatus,
  bucketIndexOf,
} from './names.ts';
