import t from 'tap';
import { BUCKETS, bucketOf, hashSeed } from '../../src/table/index.ts';

t.test('bucketOf: pinned values (changing them reshuffles every user cohort)', async (t) => {
  const pinned: [string, string, number][] = [
    ['shop', 'alice', 1208],
    ['shop', 'bob', 2654],
    ['shop', 'user-1', 9295],
    ['shop', 'user-2', 8583],
    ['shop', '12345', 7610],
    ['shop', 'ü€😀', 6563],
    ['shop-2024', 'alice', 61],
    ['shop-2024', 'bob', 9843],
    ['', 'alice', 3711],
    ['', '', 9549],
  ];
  for (const [seed, key, bucket] of pinned) t.equal(bucketOf(hashSeed(seed), key), bucket, `${seed}/${key}`);
});

t.test('bucketOf is deterministic and in [0, 10000)', async (t) => {
  const seed = hashSeed('svc');
  let bad = 0;
  for (let i = 0; i < 20000; i++) {
    const key = `k${i}-${(i * 7919) % 104729}`;
    const b = bucketOf(seed, key);
    if (!(Number.isInteger(b) && b >= 0 && b < BUCKETS) || b !== bucketOf(hashSeed('svc'), key)) bad++;
  }
  t.equal(bad, 0);
});

t.test('a different seed draws different buckets for most keys', async (t) => {
  const a = hashSeed('shop');
  const b = hashSeed('shop-2024');
  let same = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) if (bucketOf(a, `user-${i}`) === bucketOf(b, `user-${i}`)) same++;
  // Independent buckets agree with probability 1/10000: about 2 of 20000.
  t.ok(same < 20, `${same} of ${n} keys kept their bucket`);
});

t.test('seed and key do not run together', async (t) => {
  t.not(bucketOf(hashSeed('ab'), 'c'), bucketOf(hashSeed('a'), 'bc'));
  t.not(bucketOf(hashSeed('svc'), 'user1'), bucketOf(hashSeed('svc1'), 'user'));
});

t.test('100k keys spread uniformly over the buckets', async (t) => {
  const seed = hashSeed('shop');
  const n = 100_000;
  const perBucket = new Uint32Array(BUCKETS);
  const bins = 100; // 100 bins of 100 buckets: 1000 keys expected in each
  const perBin = new Uint32Array(bins);
  let jump = 0;
  let previous = -1;
  for (let i = 0; i < n; i++) {
    const b = bucketOf(seed, `user-${i}`);
    perBucket[b]!++;
    perBin[Math.floor(b / (BUCKETS / bins))]!++;
    if (previous !== -1) jump += Math.abs(b - previous);
    previous = b;
  }
  const chiSquare = (counts: Uint32Array, expected: number) => counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);

  // 99 degrees of freedom: mean 99, sd 14; 160 is beyond p = 0.0001.
  const binChi = chiSquare(perBin, n / bins);
  t.ok(binChi < 160, `chi-square over 100 bins = ${binChi.toFixed(1)} (< 160)`);
  const maxDeviation = Math.max(...[...perBin].map((c) => Math.abs(c - n / bins) / (n / bins)));
  t.ok(maxDeviation < 0.15, `largest bin deviation ${(maxDeviation * 100).toFixed(1)}% (< 15%)`);

  // 9999 degrees of freedom: mean 9999, sd 141; 10700 is 5 sd out.
  const bucketChi = chiSquare(perBucket, n / BUCKETS);
  t.ok(bucketChi < 10700, `chi-square over all 10000 buckets = ${bucketChi.toFixed(0)} (< 10700)`);

  // Consecutive ids land far apart (uniform: mean distance 3333).
  const meanJump = jump / (n - 1);
  t.ok(meanJump > 3000 && meanJump < 3700, `mean distance between consecutive ids' buckets ${meanJump.toFixed(0)}`);
});
