import t from 'tap';
import { allocateBuckets, bucketEnds, BUCKETS, rangeIndexOf } from '../../src/table/index.ts';
import { mulberry32 } from '../helpers/prng.ts';

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/** Random weights: 1-8 versions, some zero, whole and fractional, small and huge. */
function randomWeights(random: () => number): number[] {
  const n = 1 + Math.floor(random() * 8);
  const scale = [1, 100, 1e4, 1e9][Math.floor(random() * 4)]!;
  const weights = Array.from({ length: n }, () => {
    const r = random();
    if (r < 0.2) return 0;
    return r < 0.6 ? Math.floor(random() * scale) : random() * scale;
  });
  if (!(sum(weights) > 0)) weights[Math.floor(random() * n)] = 1;
  return weights;
}

t.test('allocateBuckets: examples', async (t) => {
  t.same(allocateBuckets([90, 10]), [9000, 1000]);
  t.same(allocateBuckets([100]), [10000]);
  t.same(allocateBuckets([0.9, 0.1]), [9000, 1000], 'any scale');
  t.same(allocateBuckets([1, 9999]), [1, 9999], 'resolution is 1/10000');
  t.same(allocateBuckets([9999, 1]), [9999, 1]);
  t.same(allocateBuckets([0, 100, 0]), [0, 10000, 0], 'zero weights get zero buckets');
  t.same(allocateBuckets([5, 0, 0, 5]), [5000, 0, 0, 5000]);
  t.same(allocateBuckets([1, 1, 1]), [3333, 3334, 3333], 'range ends are the rounded cumulative shares');
  t.same(allocateBuckets([1, 1]), [5000, 5000]);
});

t.test('allocateBuckets: ties round half up, the same way every time', async (t) => {
  // 1 of 20000 is half a bucket: the range end 0.5 rounds up.
  t.same(allocateBuckets([1, 19999]), [1, 9999]);
  t.same(allocateBuckets([19999, 1]), [10000, 0]);
  t.same(allocateBuckets([1, 2, 1, 19996]), [1, 1, 0, 9998]);
  const random = mulberry32(7);
  for (let i = 0; i < 200; i++) {
    const w = randomWeights(random);
    t.same(allocateBuckets(w), allocateBuckets([...w]), 'same input, same counts');
  }
});

t.test('allocateBuckets refuses weights with no positive sum', async (t) => {
  t.throws(() => allocateBuckets([0, 0]), RangeError);
  t.throws(() => allocateBuckets([]), RangeError);
});

t.test('allocateBuckets: property over random weights', async (t) => {
  const random = mulberry32(0x5eed);
  let failures = 0;
  const cases = 5000;
  for (let c = 0; c < cases; c++) {
    const weights = randomWeights(random);
    const counts = allocateBuckets(weights);
    const total = sum(weights);
    const ok =
      counts.length === weights.length &&
      sum(counts) === BUCKETS &&
      counts.every((n) => Number.isInteger(n) && n >= 0) &&
      weights.every((w, i) => w > 0 || counts[i] === 0) &&
      // Each count is within one bucket of the exact share.
      weights.every((w, i) => Math.abs(counts[i]! - (w / total) * BUCKETS) < 1 + 1e-9);
    if (!ok && failures++ < 5) t.fail(`weights ${JSON.stringify(weights)} -> ${JSON.stringify(counts)}`);
  }
  t.equal(failures, 0, `${cases} random weight vectors: sum 10000, whole, zero for zero, within 1 of exact`);
});

t.test('a move between neighbours leaves every other range where it was', async (t) => {
  // Regression: per-count rounding (largest remainder) moved the third
  // version's edge by a bucket here, so a user left v3 though only v1 -> v2 changed.
  const before = bucketEnds(allocateBuckets([1, 0, 6]));
  const after = bucketEnds(allocateBuckets([0.5, 0.5, 6]));
  t.equal(before[1], after[1], 'v3 starts where it did');
  t.same([...allocateBuckets([0.5, 0.5, 6])], [714, 715, 8571]);

  const random = mulberry32(42);
  let failures = 0;
  for (let c = 0; c < 3000; c++) {
    const weights = randomWeights(random);
    if (weights.length < 2) continue;
    const i = Math.floor(random() * (weights.length - 1));
    const moved = weights[i]! * random();
    const next = [...weights];
    next[i] = weights[i]! - moved;
    next[i + 1] = weights[i + 1]! + moved;
    if (!(sum(next) > 0)) continue;
    const a = bucketEnds(allocateBuckets(weights));
    const b = bucketEnds(allocateBuckets(next));
    // Sums may differ in the last bit after moving a float; the other ends must not move.
    const othersKept = [...a].every((end, k) => k === i || end === b[k]);
    if ((!othersKept || b[i]! > a[i]!) && failures++ < 5) t.fail(`${JSON.stringify(weights)} -> ${JSON.stringify(next)}: ${[...a]} -> ${[...b]}`);
  }
  t.equal(failures, 0, 'only the boundary between the two neighbours moves, towards the giver');
});

t.test('bucketEnds', async (t) => {
  t.same([...bucketEnds([9000, 1000])], [9000, 10000]);
  t.same([...bucketEnds([0, 10000, 0])], [0, 10000, 10000]);
  t.ok(bucketEnds([10000]) instanceof Uint16Array);
});

t.test('rangeIndexOf', async (t) => {
  const ends = bucketEnds([9000, 1000]);
  t.equal(rangeIndexOf(ends, 0), 0, 'bucket 0');
  t.equal(rangeIndexOf(ends, 8999), 0, 'last bucket of the first range');
  t.equal(rangeIndexOf(ends, 9000), 1, 'a range end belongs to the next range (half-open)');
  t.equal(rangeIndexOf(ends, 9999), 1, 'bucket 9999');
  t.equal(rangeIndexOf(bucketEnds([10000]), 9999), 0, 'a single range');

  const zeros = bucketEnds([0, 5000, 0, 5000, 0]);
  t.equal(rangeIndexOf(zeros, 0), 1, 'a zero-width first range is skipped');
  t.equal(rangeIndexOf(zeros, 4999), 1);
  t.equal(rangeIndexOf(zeros, 5000), 3, 'a zero-width middle range is skipped');
  t.equal(rangeIndexOf(zeros, 9999), 3, 'a zero-width last range is never chosen');

  const edges = bucketEnds([1, 9998, 1]);
  t.equal(rangeIndexOf(edges, 0), 0);
  t.equal(rangeIndexOf(edges, 1), 1);
  t.equal(rangeIndexOf(edges, 9998), 1);
  t.equal(rangeIndexOf(edges, 9999), 2);

  // Every bucket of random splits lands in the range that holds it.
  const random = mulberry32(99);
  for (let c = 0; c < 20; c++) {
    const counts = allocateBuckets(randomWeights(random));
    const e = bucketEnds(counts);
    let wrong = 0;
    for (let b = 0; b < BUCKETS; b++) {
      const i = rangeIndexOf(e, b);
      const start = i === 0 ? 0 : e[i - 1]!;
      if (!(start <= b && b < e[i]!)) wrong++;
    }
    t.equal(wrong, 0, `counts ${JSON.stringify(counts)}`);
  }
});
