// Per-version windows and series appear with a version's first request, and
// the rollout analysis still sees every request, through a real veer.

import t from 'tap';
import { request } from 'undici';
import { LocalWindowsSource } from '../../src/rollout/index.ts';
import { startTwoUpstreams } from '../helpers/upstreams.ts';
import { runVeerIn, serviceConfig } from '../helpers/veer.ts';

t.test('windows are made on first traffic and count every request the analysis reads', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: v1.url, v2: v2.url }, weights: { v1: 100, v2: 0 }, extra: '    routes: [{ match: { header: { name: x-canary, value: always } }, to: v2 }]\n' }));
  const recorder = veer.veer.metrics.recorder;
  t.same([...recorder.records()], [], 'no version has a record before traffic');
  let scrape = await (await request(`${veer.adminUrl}/metrics`)).body.text();
  t.notMatch(scrape, /veer_requests_total\{/, 'and no request series');
  t.match(scrape, /veer_version_weight\{service="svc",version="v2"\} 0/, 'but every version has its weight');

  for (let i = 0; i < 30; i++) await (await request(`${veer.url}/x`, { headers: { 'x-canary': 'always' } })).body.dump();
  for (let i = 0; i < 12; i++) await (await request(`${veer.url}/x`)).body.dump();
  t.same([...recorder.records()].map((r) => r.version).sort(), ['v1', 'v2'], 'each version got its record with its first request');
  const windows = await new LocalWindowsSource(recorder).read({ service: 'svc', canary: 'v2', stables: ['v1'], spanMs: 60_000 });
  t.equal(windows.canary?.requests, 30, 'the analysis sees every canary request');
  t.equal(windows.stable?.requests, 12, 'and every stable one');
  scrape = await (await request(`${veer.adminUrl}/metrics`)).body.text();
  t.match(scrape, /veer_requests_total\{service="svc",version="v2",method="GET",code="200"\} 30/);
});
