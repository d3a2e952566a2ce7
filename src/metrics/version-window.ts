// A per-version sliding window over the last few minutes of traffic: the
// numbers a rollout analysis reads (requests, errors, latency buckets). It is
// fed from the same recording point as the Prometheus metrics, so the
// dashboard and the analysis never disagree about what happened.
//
// A ring of fixed time slots: the slot ids in one Float64Array, the counts
// in one Uint32Array (a slot of 250 ms never counts 2^32 requests), one row
// per slot:
//
//   row = slotId % slots      ids[row] = slotId     counts[row] = [ requests | errors | b0 b1 ... bN-1 | b+Inf ]
//
//   record(now): slotId = floor(now / slotMs); a row still holding an older
//                slotId is zeroed first, so stale slots never need a timer.
//   read(now, span): sums the rows whose slotId is in (current - k, current],
//                k = ceil(span / slotMs), at most `slots`.
//
// The ring (about 90 KB for five minutes of 250 ms slots) is allocated on
// the first request and released once it has seen none for a whole window,
// so a version without traffic costs a few bytes.

import { DURATION_BUCKETS, bucketIndexOf } from './names.ts';

/**
 * The window every veer process keeps per version: quarter-second slots,
 * five minutes, so rollout analysis reads windows as short as its interval.
 */
export const VERSION_WINDOW = { slotMs: 250, slots: 1200 } as const;

/** How a window is cut into slots. */
export interface WindowOptions {
  /** Width of one slot in ms (default 1000). */
  readonly slotMs?: number;
  /** Number of slots kept (default 300: five minutes of 1 s slots). */
  readonly slots?: number;
  /** Latency bucket upper bounds in seconds (default DURATION_BUCKETS). */
  readonly bounds?: readonly number[];
}

/** What a window saw over a span. */
export interface WindowStats {
  /** The span actually covered, in ms (a multiple of the slot width). */
  readonly spanMs: number;
  readonly requests: number;
  /** 5xx responses plus upstream failures. */
  readonly errors: number;
  /** errors / requests, 0 when there were no requests. */
  readonly errorRatio: number;
  /** Latency bucket upper bounds in seconds; `buckets` has one more entry, for +Inf. */
  readonly bounds: readonly number[];
  /** Requests per latency bucket (not cumulative). */
  readonly buckets: readonly number[];
}

const REQUESTS = 0;
const ERRORS = 1;
const FIRST_BUCKET = 2;

/** A sliding window of one version's requests, errors and latencies. */
export class VersionWindow {
  readonly slotMs: number;
  readonly slots: number;
  readonly bounds: readonly number[];
  readonly #width: number;
  /** Slot id held by each row; null until the first count (and again once released). */
  #ids: Float64Array | null = null;
  #counts: Uint32Array | null = null;
  /** The newest slot id counted into. */
  #lastSlot = -1;

  constructor(options: WindowOptions = {}) {
    this.slotMs = options.slotMs ?? 1000;
    this.slots = options.slots ?? 300;
    this.bounds = options.bounds ?? DURATION_BUCKETS;
    if (!(this.slotMs > 0) || !Number.isInteger(this.slots) || this.slots < 1) throw new RangeError('a window needs slotMs > 0 and slots >= 1');
    this.#width = FIRST_BUCKET + this.bounds.length + 1;
  }

  /** Whether the ring is allocated now. */
  get allocated(): boolean {
    return this.#counts !== null;
  }

  /** Counts one finished request at `nowMs` that took `seconds`. */
  record(nowMs: number, seconds: number, isError: boolean): void {
    this.recordBucket(nowMs, bucketIndexOf(seconds, this.bounds), isError);
  }

  /** HOT PATH. As record(), with the latency bucket (an index into `bounds`, or its length for +Inf) already found. */
  recordBucket(nowMs: number, bucket: number, isError: boolean): void {
    const slotId = Math.floor(nowMs / this.slotMs);
    const base = this.#row(slotId);
    const counts = this.#counts!;
    counts[base + REQUESTS]! += 1;
    if (isError) counts[base + ERRORS]! += 1;
    counts[base + FIRST_BUCKET + bucket]! += 1;
  }

  /** Sums the last `spanMs` (rounded up to whole slots, at most the window) ending at `nowMs`. */
  read(nowMs: number, spanMs: number): WindowStats {
    const current = Math.floor(nowMs / this.slotMs);
    const k = Math.min(this.slots, Math.max(1, Math.ceil(spanMs / this.slotMs)));
    const buckets = new Array<number>(this.bounds.length + 1).fill(0);
    let requests = 0;
    let errors = 0;
    const ids = this.#ids;
    const counts = this.#counts;
    if (ids !== null && counts !== null) {
      for (let r = 0; r < this.slots; r++) {
        const slotId = ids[r]!;
        if (slotId <= current - k || slotId > current) continue;
        const base = r * this.#width;
        requests += counts[base + REQUESTS]!;
        errors += counts[base + ERRORS]!;
        for (let b = 0; b < buckets.length; b++) buckets[b]! += counts[base + FIRST_BUCKET + b]!;
      }
    }
    return { spanMs: k * this.slotMs, requests, errors, errorRatio: requests === 0 ? 0 : errors / requests, bounds: this.bounds, buckets };
  }

  /**
   * A copy of one slot's counts [requests, errors, b0..bN-1, b+Inf], or null
   * when the ring holds no such slot: what a cluster worker sends its primary.
   */
  readSlot(slotId: number): Float64Array | null {
    const ids = this.#ids;
    if (slotId < 0 || ids === null || ids[slotId % this.slots] !== slotId) return null;
    const base = (slotId % this.slots) * this.#width;
    return Float64Array.from(this.#counts!.subarray(base, base + this.#width));
  }

  /**
   * Adds counts shaped as readSlot returns them to a slot: another process's
   * share of the same traffic. Ignored when the ring already moved past it.
   */
  addToSlot(slotId: number, counts: ArrayLike<number>): void {
    if (slotId < 0 || counts.length !== this.#width) return;
    if (this.#ids !== null && this.#ids[slotId % this.slots]! > slotId) return;
    const base = this.#row(slotId);
    const rows = this.#counts!;
    for (let i = 0; i < counts.length; i++) rows[base + i]! += counts[i]!;
  }

  /** Frees the ring when it saw nothing for a whole window before `nowMs`; true when released. */
  releaseIfIdle(nowMs: number): boolean {
    if (this.#counts === null || Math.floor(nowMs / this.slotMs) - this.#lastSlot < this.slots) return false;
    this.#ids = null;
    this.#counts = null;
    return true;
  }

  /** The first count index of `slotId`'s row, allocating the ring and zeroing a row that held an older slot. */
  #row(slotId: number): number {
    let ids = this.#ids;
    if (ids === null) {
      ids = this.#ids = new Float64Array(this.slots).fill(-1);
      this.#counts = new Uint32Array(this.slots * this.#width);
    }
    const row = slotId % this.slots;
    const base = row * this.#width;
    if (ids[row] !== slotId) {
      this.#counts!.fill(0, base, base + this.#width);
      ids[row] = slotId;
    }
    if (slotId > this.#lastSlot) this.#lastSlot = slotId;
    return base;
  }
}

/**
 * Estimates the q-quantile (0..1) latency in seconds from window buckets the
 * way Prometheus's histogram_quantile does: linear inside the bucket that
 * holds the rank; the highest finite bound when the rank falls in +Inf.
 * Null when the window saw no requests.
 */
export function quantileOf(stats: Pick<WindowStats, 'bounds' | 'buckets'>, q: number): number | null {
  let total = 0;
  for (const n of stats.buckets) total += n;
  if (total === 0) return null;
  const rank = Math.min(1, Math.max(0, q)) * total;
  let cumulative = 0;
  for (let b = 0; b < stats.buckets.length; b++) {
    const count = stats.buckets[b]!;
    if (count > 0 && cumulative + count >= rank) {
      if (b === stats.bounds.length) return stats.bounds[b - 1] ?? 0;
      const lower = b === 0 ? 0 : stats.bounds[b - 1]!;
      const upper = stats.bounds[b]!;
      return lower + (upper - lower) * ((rank - cumulative) / count);
    }
    cumulative += count;
  }
  return stats.bounds[stats.bounds.length - 1] ?? 0;
}

/** A window as people read it: counts, error ratio and p50/p99 in ms (0.01 ms). */
export interface WindowSummary {
  readonly spanMs: number;
  readonly requests: number;
  readonly errors: number;
  readonly errorRatio: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

/** Seconds to milliseconds, rounded to 0.01 ms; null stays null. */
const msOf = (seconds: number | null): number | null => (seconds === null ? null : Math.round(seconds * 1e5) / 100);

/** The summary of a window's stats. */
export function summarizeWindow(w: WindowStats): WindowSummary {
  return { spanMs: w.spanMs, requests: w.requests, errors: w.errors, errorRatio: w.errorRatio, p50Ms: msOf(quantileOf(w, 0.5)), p99Ms: msOf(quantileOf(w, 0.99)) };
}
