import t from 'tap';
import { DURATION_BUCKETS, VersionWindow, bucketIndexOf, foldFailureKind, foldMethod, foldStatus, quantileOf } from '../../src/metrics/index.ts';

t.test('labels fold to bounded sets', async (t) => {
  t.equal(foldMethod('GET'), 0);
  t.equal(foldMethod('OPTIONS'), 6);
  t.equal(foldMethod('PROPFIND'), 7, 'unknown methods are OTHER');
  t.equal(foldMethod('get'), 7, 'methods are case-sensitive (RFC 9110), lower case is OTHER');
  t.equal(foldMethod(undefined), 7);
  t.equal(foldFailureKind('connect'), 0);
  t.equal(foldFailureKind('timeout'), 1);
  t.equal(foldFailureKind('weird'), 4, 'unknown kinds are other');
  t.equal(foldStatus(503), 503);
  t.equal(foldStatus(99), 0);
  t.equal(foldStatus(1000), 0);
});

t.test('bucketIndexOf uses upper-inclusive bounds like Prometheus le', async (t) => {
  t.equal(bucketIndexOf(0), 0);
  t.equal(bucketIndexOf(0.001), 0, 'exactly on a bound counts in that bucket');
  t.equal(bucketIndexOf(0.0011), 1);
  t.equal(bucketIndexOf(10), DURATION_BUCKETS.length - 1);
  t.equal(bucketIndexOf(11), DURATION_BUCKETS.length, 'past the last bound is +Inf');
});

t.test('a window sums the slots inside the span and forgets older ones', async (t) => {
  const w = new VersionWindow({ slotMs: 1000, slots: 10 });
  // t = 0.5 s: 3 fast requests, one an error.
  w.record(500, 0.002, false);
  w.record(500, 0.002, true);
  w.record(600, 0.004, false);
  // t = 5.2 s: 2 slow requests, both errors.
  w.record(5200, 0.3, true);
  w.record(5300, 0.3, true);

  const all = w.read(5500, 10_000);
  t.equal(all.requests, 5);
  t.equal(all.errors, 3);
  t.equal(all.errorRatio, 3 / 5);
  t.equal(all.spanMs, 10_000);
  t.equal(all.buckets.reduce((a, b) => a + b, 0), 5, 'every request lands in one bucket');
  t.equal(all.buckets[bucketIndexOf(0.002)], 2);
  t.equal(all.buckets[bucketIndexOf(0.3)], 2);

  const recent = w.read(5500, 2000);
  t.equal(recent.requests, 2, 'a 2 s span at t=5.5 s sees only slot 4-5');
  t.equal(recent.errorRatio, 1);

  // t = 12 s: slot 0's row is reused by slot 10 and must start from zero.
  w.record(10_100, 0.001, false);
  const later = w.read(12_000, 10_000);
  t.equal(later.requests, 3, 'slot 0 (t<1 s) fell out of the 10 s window; slots 5 and 10 remain');
  const empty = w.read(60_000, 10_000);
  t.equal(empty.requests, 0);
  t.equal(empty.errorRatio, 0, 'no requests: ratio 0, not NaN');
  t.equal(w.read(5500, 1e9).spanMs, 10_000, 'a span is capped at the window');
});

t.test('quantileOf interpolates like histogram_quantile', async (t) => {
  const w = new VersionWindow({ slotMs: 1000, slots: 5, bounds: [0.1, 0.2, 0.4] });
  for (let i = 0; i < 50; i++) w.record(100, 0.05, false); // (0, 0.1]
  for (let i = 0; i < 50; i++) w.record(100, 0.15, false); // (0.1, 0.2]
  const stats = w.read(100, 1000);
  t.equal(quantileOf(stats, 0.5), 0.1, 'median at the edge between the two buckets');
  t.ok(Math.abs(quantileOf(stats, 0.99)! - 0.198) < 1e-9, 'p99 interpolated inside (0.1, 0.2]');
  t.ok(Math.abs(quantileOf(stats, 0.25)! - 0.05) < 1e-9);
  w.record(200, 3, false); // +Inf
  for (let i = 0; i < 200; i++) w.record(200, 5, false);
  t.equal(quantileOf(w.read(200, 1000), 0.99), 0.4, 'a rank in +Inf reports the highest finite bound');
  t.equal(quantileOf(new VersionWindow().read(0, 1000), 0.99), null, 'no data: null');
});

t.test('a window refuses a nonsense shape', async (t) => {
  t.throws(() => new VersionWindow({ slotMs: 0 }), RangeError);
  t.throws(() => new VersionWindow({ slots: 0 }), RangeError);
});

t.test('the ring is allocated on the first count and freed after a whole window without one', async (t) => {
  const w = new VersionWindow({ slotMs: 100, slots: 10 });
  t.equal(w.allocated, false, 'a version without traffic holds no ring');
  t.same(w.read(5000, 1000).requests, 0, 'and reads as empty');
  t.equal(w.releaseIfIdle(5000), false, 'nothing to free');
  w.record(5000, 0.002, false);
  t.equal(w.allocated, true);
  t.equal(w.releaseIfIdle(5500), false, 'a ring that counted within the window stays');
  t.equal(w.read(5500, 1000).requests, 1);
  t.equal(w.releaseIfIdle(6000), true, 'a whole window (10 x 100 ms) after its last count it is freed');
  t.equal(w.allocated, false);
  t.equal(w.read(6000, 1000).requests, 0);
  w.record(6000, 0.002, true);
  t.same([w.read(6000, 100).requests, w.read(6000, 100).errors], [1, 1], 'and allocated again on the next count');
});
