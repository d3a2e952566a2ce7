// The dashboard's curves: every 5 s, each version's rate, error ratio, p50
// and p99 of those 5 s are read from the per-version windows (the numbers
// rollout analysis reads) and kept for 15 minutes, longer than the windows
// themselves hold. One ring of sample times, one row of rings per version:
//
//   times  [ t0 t1 t2 ... t179 ]          head: the next slot written (oldest once full)
//   shop\0v1  rps [..] errorRatio [..] p50Ms [..] p99Ms [..]    NaN = no sample (null in JSON)
//   shop\0v2  ...
//
// A version that leaves the table (a reload) drops its row; one that joins
// gets NaN for the samples before it. The timer is unref'd and stops with
// the admin server.

import type { RuntimeState } from '../state/index.ts';
import type { StatsSource } from './api-stats.ts';

/** Time between two samples. */
export const SERIES_STEP_MS = 5000;
/** Samples kept: 15 minutes. */
export const SERIES_POINTS = 180;

/** One version's curves, oldest first; null where there was no sample (or no request for a ratio or latency). */
export interface VersionSeries {
  readonly rps: readonly (number | null)[];
  readonly errorRatio: readonly (number | null)[];
  readonly p50Ms: readonly (number | null)[];
  readonly p99Ms: readonly (number | null)[];
}

/** What GET /api/v1/stats/series answers. */
export interface SeriesView {
  readonly stepMs: number;
  /** Sample times in ms since the epoch, oldest first; the last one is the live point (since the last sample, up to now). */
  readonly times: readonly number[];
  readonly services: Readonly<Record<string, { readonly versions: Readonly<Record<string, VersionSeries>> }>>;
}

interface Row {
  readonly rps: Float64Array;
  readonly errorRatio: Float64Array;
  readonly p50Ms: Float64Array;
  readonly p99Ms: Float64Array;
}

const KEY_SEPARATOR = '\u0000';

/** Samples every version's window on a timer and answers the last 15 minutes as curves. */
export class SeriesSampler {
  readonly #runtime: RuntimeState;
  readonly #stats: StatsSource;
  readonly #now: () => number;
  readonly #times = new Float64Array(SERIES_POINTS);
  readonly #rows = new Map<string, Row>();
  #head = 0;
  #count = 0;
  #lastAt: number;
  #timer: NodeJS.Timeout | null = null;

  constructor(runtime: RuntimeState, stats: StatsSource, now: () => number = Date.now) {
    this.#runtime = runtime;
    this.#stats = stats;
    this.#now = now;
    this.#lastAt = now();
  }

  /** Starts sampling every SERIES_STEP_MS (idempotent). */
  start(): void {
    if (this.#timer !== null) return;
    this.#lastAt = this.#now();
    this.#timer = setInterval(() => this.sample(), SERIES_STEP_MS);
    this.#timer.unref();
  }

  /** Stops the timer; the samples stay readable. */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Takes one sample of every version now (the timer's tick; tests call it directly). */
  sample(): void {
    const at = this.#now();
    const spanMs = Math.max(1, at - this.#lastAt);
    this.#lastAt = at;
    const slot = this.#head;
    this.#times[slot] = at;
    const seen = new Set<string>();
    for (const service of this.#runtime.table.services) {
      for (const version of service.versions) {
        const key = service.name + KEY_SEPARATOR + version.name;
        seen.add(key);
        let row = this.#rows.get(key);
        if (row === undefined) {
          row = { rps: new Float64Array(SERIES_POINTS).fill(NaN), errorRatio: new Float64Array(SERIES_POINTS).fill(NaN), p50Ms: new Float64Array(SERIES_POINTS).fill(NaN), p99Ms: new Float64Array(SERIES_POINTS).fill(NaN) };
          this.#rows.set(key, row);
        }
        const point = this.#read(service.name, version.name, spanMs);
        row.rps[slot] = point.rps;
        row.errorRatio[slot] = point.errorRatio;
        row.p50Ms[slot] = point.p50Ms;
        row.p99Ms[slot] = point.p99Ms;
      }
    }
    for (const key of this.#rows.keys()) if (!seen.has(key)) this.#rows.delete(key);
    this.#head = (slot + 1) % SERIES_POINTS;
    this.#count = Math.min(SERIES_POINTS, this.#count + 1);
  }

  /** The kept samples, oldest first, plus a live point for the time since the last sample. */
  view(): SeriesView {
    const now = this.#now();
    const liveSpan = Math.max(1, now - this.#lastAt);
    const first = (this.#head - this.#count + SERIES_POINTS) % SERIES_POINTS;
    const times: number[] = [];
    for (let i = 0; i < this.#count; i++) times.push(this.#times[(first + i) % SERIES_POINTS]!);
    times.push(now);
    const services: Record<string, { versions: Record<string, VersionSeries> }> = {};
    for (const service of this.#runtime.table.services) {
      const versions: Record<string, VersionSeries> = {};
      for (const version of service.versions) {
        const row = this.#rows.get(service.name + KEY_SEPARATOR + version.name);
        const live = this.#read(service.name, version.name, liveSpan);
        const series = { rps: [] as (number | null)[], errorRatio: [] as (number | null)[], p50Ms: [] as (number | null)[], p99Ms: [] as (number | null)[] };
        for (let i = 0; i < this.#count; i++) {
          const slot = (first + i) % SERIES_POINTS;
          series.rps.push(orNull(row?.rps[slot]));
          series.errorRatio.push(orNull(row?.errorRatio[slot]));
          series.p50Ms.push(orNull(row?.p50Ms[slot]));
          series.p99Ms.push(orNull(row?.p99Ms[slot]));
        }
        series.rps.push(orNull(live.rps));
        series.errorRatio.push(orNull(live.errorRatio));
        series.p50Ms.push(orNull(live.p50Ms));
        series.p99Ms.push(orNull(live.p99Ms));
        versions[version.name] = series;
      }
      services[service.name] = { versions };
    }
    return { stepMs: SERIES_STEP_MS, times, services };
  }

  /** One version's numbers over the last `spanMs`; NaN for a ratio or latency without requests. */
  #read(service: string, version: string, spanMs: number): { rps: number; errorRatio: number; p50Ms: number; p99Ms: number } {
    const s = this.#stats(service, version, spanMs);
    if (s === null) return { rps: NaN, errorRatio: NaN, p50Ms: NaN, p99Ms: NaN };
    const rps = s.spanMs > 0 ? Math.round((s.requests * 1e5) / s.spanMs) / 100 : 0;
    if (s.requests === 0) return { rps, errorRatio: NaN, p50Ms: NaN, p99Ms: NaN };
    return { rps, errorRatio: s.errorRatio, p50Ms: s.p50Ms ?? NaN, p99Ms: s.p99Ms ?? NaN };
  }
}

/** NaN and undefined become null (JSON has no NaN). */
function orNull(value: number | undefined): number | null {
  return value === undefined || Number.isNaN(value) ? null : value;
}
