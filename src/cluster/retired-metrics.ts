// The counters of workers that exited. Without them a replaced worker's
// requests would vanish from the /metrics sum, and Prometheus would read the
// drop as a counter reset (a spike in rate()). A worker's last snapshot (its
// final one when it drained, else the last one /metrics gathered) is folded
// in here and added to every later sum, so the totals never go down.
//
// Only veer's own summed counters and histograms are kept; gauges (in flight)
// and process metrics of a dead process mean nothing. Series of versions no
// longer configured are dropped, as the live workers drop theirs.

import type { MetricSnapshot } from '../metrics/index.ts';
import type { RouteTable } from '../table/index.ts';

type Metric = MetricSnapshot[number];
type Sample = Metric['values'][number] & { metricName?: string };

/** Summed counters and histograms of exited workers. */
export class RetiredCounters {
  readonly #metrics = new Map<string, { metric: Omit<Metric, 'values'>; samples: Map<string, Sample> }>();

  /** Adds an exited worker's last snapshot. */
  add(snapshot: MetricSnapshot): void {
    for (const metric of snapshot) {
      const type = String(metric.type);
      if (!metric.name.startsWith('veer_') || (type !== 'counter' && type !== 'histogram') || (metric.aggregator ?? 'sum') !== 'sum') continue;
      let kept = this.#metrics.get(metric.name);
      if (kept === undefined) {
        const { values: _values, ...rest } = metric;
        kept = { metric: rest, samples: new Map() };
        this.#metrics.set(metric.name, kept);
      }
      for (const sample of metric.values as Sample[]) {
        const key = `${sample.metricName ?? ''}${JSON.stringify(Object.entries(sample.labels).sort())}`;
        const known = kept.samples.get(key);
        kept.samples.set(key, known === undefined ? { ...sample } : { ...known, value: known.value + sample.value });
      }
    }
  }

  /** Drops the series of services and versions `table` no longer has. */
  retainOnly(table: RouteTable): void {
    for (const kept of this.#metrics.values()) {
      for (const [key, sample] of kept.samples) {
        const service = table.servicesByName.get(String(sample.labels.service));
        if (service === undefined || !service.versions.some((v) => v.name === String(sample.labels.version))) kept.samples.delete(key);
      }
    }
  }

  /** The retired counts as one snapshot, to sum with the live workers'. */
  snapshot(): MetricSnapshot {
    return [...this.#metrics.values()].map(({ metric, samples }) => ({ ...metric, values: [...samples.values()] })) as MetricSnapshot;
  }
}
