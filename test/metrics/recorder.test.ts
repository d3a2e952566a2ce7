import t from 'tap';
import { createVeerMetrics, renderSnapshots } from '../../src/metrics/index.ts';
import { ROLLOUT_PHASES } from '../../src/state/index.ts';
import type { CompiledService, CompiledVersion, RouteTable } from '../../src/table/index.ts';
import { parsePromText, samplesOf, sumOf } from './prom-text.ts';

/** A table-shaped object with just what the metrics read: names and split percents. */
function fakeTable(services: Record<string, Record<string, number>>): RouteTable {
  const list = Object.entries(services).map(([name, weights]) => {
    const service = { name, split: { percents: Object.values(weights) } } as unknown as CompiledService & { versions: CompiledVersion[] };
    service.versions = Object.keys(weights).map((v, index) => ({ name: v, index, service }) as unknown as CompiledVersion);
    (service as unknown as { versionsByName: Map<string, CompiledVersion> }).versionsByName = new Map(service.versions.map((v) => [v.name, v]));
    return service;
  });
  return { services: list, servicesByName: new Map(list.map((s) => [s.name, s])) } as unknown as RouteTable;
}

function versionOf(table: RouteTable, service: string, version: string): CompiledVersion {
  return table.servicesByName.get(service)!.versions.find((v) => v.name === version)!;
}

const connectFailure = { code: 'upstream_connect_error', kind: 'connect', message: 'refused' } as const;

t.test('the recorder counts requests, durations, failures and in-flight per version', async (t) => {
  let now = 1000;
  const metrics = createVeerMetrics({ now: () => now, processMetrics: false });
  const table = fakeTable({ shop: { v1: 90, v2: 10 } });
  metrics.observeTable(table);
  const v1 = versionOf(table, 'shop', 'v1');
  const v2 = versionOf(table, 'shop', 'v2');
  const r = metrics.recorder;

  r.onExchangeStart(v1);
  r.onExchangeStart(v1);
  let text = parsePromText((await metrics.render()).body);
  t.equal(sumOf(text, 'veer_requests_in_flight', { version: 'v1' }), 2, 'two started, none ended');
  now = 1004;
  r.onExchangeEnd({ version: v1, status: 200, failure: null, startedAt: 1000, method: 'GET', retryReasons: null, failedOverTo: null, grpcStatus: -1 });
  r.onExchangeEnd({ version: v1, status: 200, failure: null, startedAt: 1000, method: 'GET', retryReasons: null, failedOverTo: null, grpcStatus: -1 });
  r.onExchangeEnd({ version: v1, status: 404, failure: null, startedAt: 1003, method: 'PROPFIND', retryReasons: null, failedOverTo: null, grpcStatus: -1 });
  r.onExchangeEnd({ version: v2, status: 502, failure: connectFailure, startedAt: 1000, method: 'POST', retryReasons: null, failedOverTo: null, grpcStatus: -1 });
  r.onExchangeEnd({ version: v2, status: 499, failure: null, startedAt: 1000, method: 'GET', retryReasons: null, failedOverTo: null, grpcStatus: -1 });

  text = parsePromText((await metrics.render()).body);
  t.equal(sumOf(text, 'veer_requests_in_flight', { version: 'v1' }), 0, 'in-flight never goes negative');
  t.equal(sumOf(text, 'veer_requests_total', { version: 'v1', method: 'GET', code: '200' }), 2);
  t.equal(sumOf(text, 'veer_requests_total', { version: 'v1', method: 'OTHER', code: '404' }), 1, 'unknown method folded');
  t.equal(sumOf(text, 'veer_requests_total', { version: 'v2', method: 'POST', code: '502' }), 1);
  t.equal(sumOf(text, 'veer_requests_total', { version: 'v2', code: '499' }), 1);
  t.equal(sumOf(text, 'veer_request_duration_seconds_count', { version: 'v1' }), 3);
  t.equal(sumOf(text, 'veer_request_duration_seconds_bucket', { version: 'v1', le: '+Inf' }), 3);
  t.equal(sumOf(text, 'veer_request_duration_seconds_bucket', { version: 'v1', le: '0.001' }), 1, 'the 1 ms request');
  t.equal(sumOf(text, 'veer_request_duration_seconds_bucket', { version: 'v1', le: '0.005' }), 3, 'buckets are cumulative');
  t.ok(Math.abs(sumOf(text, 'veer_request_duration_seconds_sum', { version: 'v1' }) - 0.009) < 1e-9);
  t.equal(sumOf(text, 'veer_upstream_errors_total', { version: 'v2', kind: 'connect' }), 1);
  t.equal(sumOf(text, 'veer_upstream_errors_total', { version: 'v1' }), 0, 'every kind is exported at 0');
  t.equal(samplesOf(text, 'veer_upstream_errors_total', { version: 'v1' }).length, 6, 'one series per failure kind, overload included');
  t.equal(sumOf(text, 'veer_version_weight', { service: 'shop', version: 'v1' }), 90);
  t.equal(sumOf(text, 'veer_version_weight', { service: 'shop', version: 'v2' }), 10);

  const w2 = r.readWindow('shop', 'v2', 60_000)!;
  t.equal(w2.requests, 2);
  t.equal(w2.errors, 1, 'the 502 with a failure is an error; the 499 is not');
  t.equal(r.readWindow('shop', 'v1', 60_000)!.errors, 0, '404 is not an error');
  t.equal(r.readWindow('shop', 'nope', 60_000), null);
});

t.test('gRPC calls are counted by grpc-status, and 2, 4, 13, 14 are errors under an HTTP 200', async (t) => {
  const metrics = createVeerMetrics({ processMetrics: false });
  const table = fakeTable({ grpc: { v1: 50, v2: 50 } });
  metrics.observeTable(table);
  const r = metrics.recorder;
  const end = (version: string, grpcStatus: number) =>
    r.onExchangeEnd({ version: versionOf(table, 'grpc', version), status: 200, failure: null, startedAt: performance.now(), method: 'POST', retryReasons: null, failedOverTo: null, grpcStatus });
  for (const status of [0, 0, 5, 3, 16]) end('v1', status);
  for (const status of [0, 2, 4, 13, 14, 99]) end('v2', status);
  const text = parsePromText((await metrics.render()).body);
  t.equal(sumOf(text, 'veer_grpc_responses_total', { version: 'v1', grpc_status: '0' }), 2);
  t.equal(sumOf(text, 'veer_grpc_responses_total', { version: 'v1', grpc_status: '5' }), 1);
  t.equal(sumOf(text, 'veer_grpc_responses_total', { version: 'v2', grpc_status: '2' }), 2, 'a status past 16 is counted as UNKNOWN');
  t.equal(sumOf(text, 'veer_requests_total', { version: 'v2', code: '200' }), 6, 'code stays the HTTP status');
  t.equal(r.readWindow('grpc', 'v1', 60_000)!.errors, 0, 'NOT_FOUND, INVALID_ARGUMENT, UNAUTHENTICATED are answers, not errors');
  t.equal(r.readWindow('grpc', 'v2', 60_000)!.errors, 5, 'UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE (and the folded 99) are');
  t.equal(samplesOf(text, 'veer_grpc_responses_total', { version: 'v1', grpc_status: '1' }).length, 0, 'no series for a status never seen');
});

t.test('series follow the config: weights change, removed versions disappear', async (t) => {
  const metrics = createVeerMetrics({ processMetrics: false });
  const first = fakeTable({ shop: { v1: 50, v2: 50 } });
  metrics.observeTable(first);
  metrics.recorder.onExchangeEnd({ version: versionOf(first, 'shop', 'v2'), status: 200, failure: null, startedAt: performance.now(), method: 'GET', retryReasons: null, failedOverTo: null, grpcStatus: -1 });
  // A new table (new version objects) with the same names keeps counting into the same series.
  const second = fakeTable({ shop: { v1: 20, v2: 80 } });
  metrics.observeTable(second);
  metrics.recorder.onExchangeEnd({ version: versionOf(second, 'shop', 'v2'), status: 200, failure: null, startedAt: performance.now(), method: 'GET', retryReasons: null, failedOverTo: null, grpcStatus: -1 });
  let text = parsePromText((await metrics.render()).body);
  t.equal(sumOf(text, 'veer_requests_total', { version: 'v2' }), 2, 'counts survive a publish');
  t.equal(sumOf(text, 'veer_version_weight', { version: 'v2' }), 80);

  metrics.observeTable(fakeTable({ shop: { v1: 100 } }));
  text = parsePromText((await metrics.render()).body);
  t.equal(samplesOf(text, 'veer_version_weight', { version: 'v2' }).length, 0, 'weight of a removed version is gone');
  t.equal(samplesOf(text, 'veer_requests_total', { version: 'v2' }).length, 0, 'requests of a removed version are gone');
  t.equal(sumOf(text, 'veer_version_weight', { version: 'v1' }), 100);
});

t.test('rollout info has one series per phase of the state room, 1 on the current one', async (t) => {
  const metrics = createVeerMetrics({ processMetrics: false, rolloutPhases: ROLLOUT_PHASES });
  metrics.observeTable(fakeTable({ shop: { v1: 100, v2: 0 } }));
  let text = parsePromText((await metrics.render()).body);
  t.equal(samplesOf(text, 'veer_rollout_info').length, 0, 'empty until a rollout reports');
  metrics.setRolloutPhase('shop', 'progressing', 'v2');
  metrics.setRolloutPhase('shop', 'paused', 'v2');
  text = parsePromText((await metrics.render()).body);
  t.equal(samplesOf(text, 'veer_rollout_info').length, ROLLOUT_PHASES.length);
  t.equal(sumOf(text, 'veer_rollout_info', { service: 'shop', phase: 'paused', canary: 'v2' }), 1);
  t.equal(sumOf(text, 'veer_rollout_info', { service: 'shop' }), 1, 'only the current phase is 1');
  metrics.setRolloutPhase('shop', 'progressing', 'v3');
  text = parsePromText((await metrics.render()).body);
  t.equal(samplesOf(text, 'veer_rollout_info', { canary: 'v2' }).length, 0, 'a new canary replaces the old series');
  metrics.observeTable(fakeTable({ other: { a: 100 } }));
  text = parsePromText((await metrics.render()).body);
  t.equal(samplesOf(text, 'veer_rollout_info').length, 0, 'a removed service loses its rollout info');
});

t.test('reloads are counted by result, both present from the start', async (t) => {
  const metrics = createVeerMetrics({ processMetrics: false });
  let text = parsePromText((await metrics.render()).body);
  t.equal(samplesOf(text, 'veer_config_reloads_total').length, 2);
  metrics.countReload('success');
  metrics.countReload('failure');
  metrics.countReload('failure');
  text = parsePromText((await metrics.render()).body);
  t.equal(sumOf(text, 'veer_config_reloads_total', { result: 'success' }), 1);
  t.equal(sumOf(text, 'veer_config_reloads_total', { result: 'failure' }), 2);
});

t.test('snapshots of several processes aggregate into one exposition (cluster-ready)', async (t) => {
  const workers = [createVeerMetrics({ processMetrics: false }), createVeerMetrics({ processMetrics: false })];
  for (const [i, m] of workers.entries()) {
    const table = fakeTable({ shop: { v1: 70, v2: 30 } });
    m.observeTable(table);
    for (let n = 0; n <= i; n++) m.recorder.onExchangeEnd({ version: versionOf(table, 'shop', 'v1'), status: 200, failure: null, startedAt: performance.now(), method: 'GET', retryReasons: null, failedOverTo: null, grpcStatus: -1 });
    m.countReload('success');
  }
  const merged = await renderSnapshots(await Promise.all(workers.map((m) => m.snapshot())));
  t.match(merged.contentType, /^text\/plain; version=0\.0\.4/);
  const text = parsePromText(merged.body);
  t.equal(sumOf(text, 'veer_requests_total', { version: 'v1', code: '200' }), 3, 'requests are summed over workers');
  t.equal(sumOf(text, 'veer_request_duration_seconds_count', { version: 'v1' }), 3, 'histograms are summed');
  t.equal(sumOf(text, 'veer_version_weight', { version: 'v1' }), 70, 'weights are not multiplied by the worker count');
  t.equal(sumOf(text, 'veer_config_reloads_total', { result: 'success' }), 1, 'every worker reloads the same file once');
});

t.test('process metrics are exported by default', async (t) => {
  const text = parsePromText((await createVeerMetrics().render()).body);
  t.ok(text.types.has('process_cpu_user_seconds_total'));
  t.ok(text.types.has('nodejs_eventloop_lag_seconds'));
});

t.test('versions without traffic cost no series but their weight, and read as empty windows', async (t) => {
  const metrics = createVeerMetrics({ processMetrics: false });
  const table = fakeTable({ quiet: { v1: 100, v2: 0 }, busy: { v1: 50, v2: 50 } });
  metrics.observeTable(table);
  let text = parsePromText((await metrics.render()).body);
  t.equal(samplesOf(text, 'veer_version_weight').length, 4, 'one weight series per configured version');
  t.equal(samplesOf(text, 'veer_request_duration_seconds_bucket').length, 0, 'no request series before traffic');
  t.equal([...metrics.recorder.records()].length, 0, 'no records either');
  t.match(metrics.recorder.readWindow('quiet', 'v2', 10_000), { requests: 0, errors: 0 }, 'a configured version reads as empty');
  t.equal(metrics.recorder.readWindow('quiet', 'v3', 10_000), null, 'an unknown one as null');

  metrics.recorder.onExchangeEnd({ version: versionOf(table, 'busy', 'v2'), status: 200, failure: null, startedAt: performance.now(), method: 'GET', retryReasons: null, failedOverTo: null, grpcStatus: -1 });
  text = parsePromText((await metrics.render()).body);
  t.same(
    [...new Set(samplesOf(text, 'veer_request_duration_seconds_bucket').map((s) => `${s.labels.service}/${s.labels.version}`))],
    ['busy/v2'],
    'series appear for the version that saw a request, only',
  );
  t.equal(sumOf(text, 'veer_requests_total', { service: 'busy', version: 'v2' }), 1);
});
