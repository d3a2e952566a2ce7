// Turns weights into bucket ranges. Versions own consecutive ranges of the
// 10000 buckets in config order:
//
//   weights { v1: 90, v2: 10 }      ends = [9000, 10000]
//   bucket:  0 ........ 8999 | 9000 .. 9999
//            v1               v2
//
// Raising v2 to 20 moves ends[0] down to 8000: buckets 8000..8999 go from v1
// to v2 and nobody leaves v2. Weight moves between neighbours in config order
// always behave like this, so a canary listed right after its stable version
// only ever gains users during a ramp.

import { BUCKETS } from './hash.ts';

/**
 * Whole bucket counts per weight, summing to exactly 10000 (largest
 * remainder; ties go to the earlier version so every process agrees).
 */
export function allocateBuckets(weights: readonly number[]): number[] {
  const total = weights.reduce((a, b) => a + b, 0);
  if (!(total > 0)) throw new RangeError('weights must have a positive sum');
  const exact = weights.map((w) => (w / total) * BUCKETS);
  const counts = exact.map(Math.floor);
  let missing = BUCKETS - counts.reduce((a, b) => a + b, 0);
  const order = exact
    .map((x, i) => ({ i, rest: x - Math.floor(x) }))
    .filter((e) => weights[e.i]! > 0)
    .sort((a, b) => b.rest - a.rest || a.i - b.i);
  for (let k = 0; missing > 0 && order.length > 0; k = (k + 1) % order.length, missing--) {
    counts[order[k]!.i]! += 1;
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
