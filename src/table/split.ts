// Turns weights into bucket ranges. Versions own consecutive ranges of the
// 10000 buckets in config order:
//
//   weights { v1: 90, v2: 10 }      ends = [9000, 10000]
//   bucket:  0 ........ 8999 | 9000 .. 9999
//            v1               v2
//
// Raising v2 to 20 moves ends[0] down to 8000: buckets 8000..8999 go from v1
// to v2 and nobody leaves v2. Weight moves between neighbours in config order
// always behave like this (every other range end stays put), so a canary
// listed right after its stable version only ever gains users during a ramp.

import { BUCKETS } from './hash.ts';

/**
 * Whole bucket counts per weight, summing to exactly 10000. Each range END is
 * the rounded cumulative share (half up, so every process agrees):
 *
 *   end[i] = round(10000 * (w[0] + ... + w[i]) / total)
 *
 * so a version's range depends only on the weights up to and including it.
 * A move between two neighbours leaves every other range exactly where it
 * was; rounding each count on its own (largest remainder) would let a third
 * version's edge wobble by a bucket and move its users.
 */
export function allocateBuckets(weights: readonly number[]): number[] {
  const total = weights.reduce((a, b) => a + b, 0);
  if (!(total > 0)) throw new RangeError('weights must have a positive sum');
  const counts: number[] = [];
  let acc = 0;
  let previousEnd = 0;
  for (const w of weights) {
    acc += w;
    // Multiply first: with whole weights acc * 10000 is exact, so a true half
    // (1.5) stays a half and rounds up. The last partial sum is computed
    // exactly as `total` was, so the last end is 10000.
    const end = Math.min(BUCKETS, Math.round((acc * BUCKETS) / total));
    counts.push(end - previousEnd);
    previousEnd = end;
  }
  return counts;
}

/** Cumulative range ends: version i owns buckets [ends[i-1], ends[i]). */
export function bucketEnds(counts: readonly number[]): Uint16Array {
  const ends = new Uint16Array(counts.length);
  let acc = 0;
  for (let i = 0; i < counts.length; i++) {
    acc += counts[i]!;
    ends[i] = acc;
  }
  return ends;
}

/** HOT PATH. Index of the range holding `bucket`. */
export function rangeIndexOf(ends: Uint16Array, bucket: number): number {
  const last = ends.length - 1;
  for (let i = 0; i < last; i++) {
    if (bucket < ends[i]!) return i;
  }
  return last;
}
