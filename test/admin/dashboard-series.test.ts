// The dashboard's curves (SeriesSampler): 5 s samples of every version's
// window, 15 minutes kept, a live point, versions that come and go.

import t from 'tap';
import { SERIES_POINTS, SERIES_STEP_MS, SeriesSampler } from '../../src/admin/dashboard-series.ts';
import type { StatsSource } from '../../src/admin/api-stats.ts';
import type { RuntimeState } from '../../src/state/index.ts';

/** A runtime whose table has `services` (only what the sampler reads). */
function runtimeWith(services: Record<string, string[]>): { runtime: RuntimeState; set(next: Record<string, string[]>): void } {
  const holder = { table: { services: [] as { name: string; versions: { name: string }[] }[] } };
  const set = (next: Record<string, string[]>) => {
    holder.table = { services: Object.entries(next).map(([name, versions]) => ({ name, versions: versions.map((v) => ({ name: v })) })) };
  };
  set(services);
  return { runtime: holder as unknown as RuntimeState, set };
}

t.test('samples each version every step and answers them oldest first, with a live point', async (t) => {
  let now = 1_000_000;
  const asked: number[] = [];
  // v1 answers 10 requests per second of span, 1 in 10 failing; v2 nothing.
  const stats: StatsSource = (_service, version, spanMs) => {
    asked.push(spanMs);
    if (version === 'v2') return { spanMs, requests: 0, errors: 0, errorRatio: 0, p50Ms: null, p99Ms: null };
    const requests = spanMs / 100;
    return { spanMs, requests, errors: requests / 10, errorRatio: 0.1, p50Ms: 3, p99Ms: 40 };
  };
  const { runtime } = runtimeWith({ shop: ['v1', 'v2'] });
  const sampler = new SeriesSampler(runtime, stats, () => now);
  now += SERIES_STEP_MS;
  sampler.sample();
  t.equal(asked[0], SERIES_STEP_MS, 'a sample reads the span since the previous one');
  now += SERIES_STEP_MS;
  sampler.sample();
  now += 1000;
  const view = sampler.view();
  t.equal(view.stepMs, SERIES_STEP_MS);
  t.same(view.times, [1_005_000, 1_010_000, 1_011_000], 'two samples and the live point');
  const v1 = view.services.shop!.versions.v1!;
  t.same(v1.rps, [10, 10, 10]);
  t.same(v1.errorRatio, [0.1, 0.1, 0.1]);
  t.same(v1.p99Ms, [40, 40, 40]);
  t.same(v1.p50Ms, [3, 3, 3]);
  const v2 = view.services.shop!.versions.v2!;
  t.same(v2.rps, [0, 0, 0], 'no traffic is a rate of 0');
  t.same(v2.errorRatio, [null, null, null], 'and no error ratio or latency');
  t.same(v2.p99Ms, [null, null, null]);
  t.same(JSON.parse(JSON.stringify(view)), view, 'plain JSON (no NaN)');
});

t.test('keeps 15 minutes; versions that leave are dropped, new ones start empty', async (t) => {
  let now = 0;
  let n = 0;
  const stats: StatsSource = (_s, _v, spanMs) => ({ spanMs, requests: ++n, errors: 0, errorRatio: 0, p50Ms: 1, p99Ms: 2 });
  const { runtime, set } = runtimeWith({ shop: ['v1'] });
  const sampler = new SeriesSampler(runtime, stats, () => now);
  for (let i = 0; i < SERIES_POINTS + 20; i++) {
    now += SERIES_STEP_MS;
    sampler.sample();
  }
  const full = sampler.view();
  t.equal(full.times.length, SERIES_POINTS + 1, '180 samples (15 minutes) and the live point');
  t.equal(full.times[0], 21 * SERIES_STEP_MS, 'the oldest ones were overwritten');
  t.ok(full.times.every((time, i) => i === 0 || time >= full.times[i - 1]!), 'oldest first');

  set({ shop: ['v2'], api: ['v1'] });
  now += SERIES_STEP_MS;
  sampler.sample();
  const after = sampler.view();
  t.same(Object.keys(after.services.shop!.versions), ['v2'], 'v1 left with the reload');
  const v2 = after.services.shop!.versions.v2!;
  t.equal(v2.rps.length, SERIES_POINTS + 1);
  t.same(v2.rps.slice(0, SERIES_POINTS - 1), new Array(SERIES_POINTS - 1).fill(null), 'no samples before it joined');
  t.type(v2.rps[SERIES_POINTS - 1], 'number', 'its first sample');
  t.ok(after.services.api, 'a new service');
});

t.test('the timer samples on its own and stops', async (t) => {
  let calls = 0;
  const stats: StatsSource = (_s, _v, spanMs) => {
    calls++;
    return { spanMs, requests: 0, errors: 0, errorRatio: 0, p50Ms: null, p99Ms: null };
  };
  const { runtime } = runtimeWith({ shop: ['v1'] });
  const sampler = new SeriesSampler(runtime, stats);
  t.teardown(() => sampler.stop());
  sampler.start();
  sampler.start();
  await new Promise((resolve) => setTimeout(resolve, SERIES_STEP_MS + 300));
  t.equal(calls, 1, 'one sample per step (start twice is one timer)');
  sampler.stop();
  await new Promise((resolve) => setTimeout(resolve, SERIES_STEP_MS + 300));
  t.equal(calls, 1, 'none after stop');
});
