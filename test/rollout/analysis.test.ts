// One analysis check, on windows filled the way the data plane fills them.

import t from 'tap';
import { VersionWindow } from '../../src/metrics/index.ts';
import { analyseWindow, mergeStats, twoProportionZ } from '../../src/rollout/index.ts';
import type { AnalysisSpec } from '../../src/state/index.ts';

const spec: AnalysisSpec = { intervalMs: 1000, minRequests: 50, maxErrorRate: 0.05, maxP99Ms: 500, failureLimit: 2 };
const AT = '2024-01-01T00:00:00.000Z';

/** A window with `n` requests, `errors` of them failing, each taking `seconds`. */
function windowOf(n: number, errors: number, seconds = 0.01) {
  const w = new VersionWindow({ slotMs: 250, slots: 8 });
  for (let i = 0; i < n; i++) w.record(1000, seconds, i < errors);
  return w.read(1000, 1000);
}

t.test('too few canary requests is inconclusive, never a pass', async (t) => {
  const r = analyseWindow(windowOf(49, 0), windowOf(1000, 0), spec, AT);
  t.equal(r.verdict, 'inconclusive');
  t.match(r.reasons[0], /only 49 canary requests.*minRequests 50/);
  t.equal(analyseWindow(windowOf(0, 0), null, { ...spec, minRequests: 0 }, AT).verdict, 'inconclusive', 'zero requests is never enough');
  t.equal(analyseWindow(null, null, spec, AT).verdict, 'inconclusive', 'no numbers at all');
});

t.test('absolute thresholds: error ratio and p99', async (t) => {
  t.equal(analyseWindow(windowOf(100, 3), windowOf(100, 3), spec, AT).verdict, 'pass');
  const errors = analyseWindow(windowOf(100, 30), null, spec, AT);
  t.equal(errors.verdict, 'fail');
  t.match(errors.reasons, [/error ratio 30\.00% \(30\/100\) is over maxErrorRate 5\.00%/]);
  t.same(errors.canary, { requests: 100, errors: 30, errorRatio: 0.3, p99Ms: errors.canary.p99Ms });
  const slow = analyseWindow(windowOf(100, 0, 2), null, spec, AT);
  t.equal(slow.verdict, 'fail');
  t.match(slow.reasons, [/p99 .* is over maxP99Ms 500ms/]);
});

t.test('relative: a canary clearly worse than stable fails under the absolute thresholds', async (t) => {
  const loose = { ...spec, maxErrorRate: 0.5, maxP99Ms: null };
  const worse = analyseWindow(windowOf(400, 40), windowOf(4000, 4), loose, AT);
  t.equal(worse.verdict, 'fail', '10% vs 0.1% with enough requests');
  t.ok(worse.z! > 2.326);
  t.match(worse.reasons, [/worse than stable's/]);
  t.equal(analyseWindow(windowOf(60, 2), windowOf(4000, 40), loose, AT).verdict, 'pass', '3.3% vs 1% on 60 requests is not significant');
  t.equal(analyseWindow(windowOf(100000, 1200), windowOf(100000, 1000), loose, AT).verdict, 'pass', 'significant but under the minimum difference');
  const slow = analyseWindow(windowOf(200, 0, 0.4), windowOf(2000, 0, 0.02), { ...loose }, AT);
  t.equal(slow.verdict, 'fail', 'p99 far above stable');
  t.match(slow.reasons, [/1\.5x stable's/]);
  t.equal(analyseWindow(windowOf(200, 0, 0.004), windowOf(2000, 0, 0.002), loose, AT).verdict, 'pass', 'twice as slow but only by milliseconds');
  const fewStable = analyseWindow(windowOf(100, 10), windowOf(10, 0), loose, AT);
  t.equal(fewStable.verdict, 'pass');
  t.equal(fewStable.z, null, 'too few stable requests: no comparison');
  t.match(fewStable.reasons[0], /too few to compare/);
});

t.test('z and merging', async (t) => {
  t.equal(twoProportionZ(0, 100, 0, 100), 0);
  t.equal(twoProportionZ(1, 0, 0, 100), 0);
  t.ok(Math.abs(twoProportionZ(30, 100, 10, 100) - 3.536) < 0.01);
  const merged = mergeStats([windowOf(10, 1), windowOf(30, 2)])!;
  t.equal(merged.requests, 40);
  t.equal(merged.errors, 3);
  t.equal(merged.buckets.reduce((a, b) => a + b, 0), 40);
  t.equal(mergeStats([]), null);
});
