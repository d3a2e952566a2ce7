// Workers' per-version windows reach the primary's recorder as deltas: the
// rollout analysis there sees every request once, on its own clock.

import t from 'tap';
import { mergeWindowDeltas, respawnDelayMs, resolveWorkerCount, WindowReporter } from '../../src/cluster/index.ts';
import { createVeerMetrics } from '../../src/metrics/index.ts';
import type { RouteTable } from '../../src/table/index.ts';
import { splitYaml, tableFromYaml } from '../helpers/tables.ts';

const WINDOW = { slotMs: 250, slots: 1200 };

function versionOf(table: RouteTable, name: string) {
  return table.services[0]!.versions.find((v) => v.name === name)!;
}

/** A process's metrics on a clock the test moves. */
function processAt(table: RouteTable, start: number) {
  const clock = { now: start };
  const metrics = createVeerMetrics({ processMetrics: false, now: () => clock.now, window: WINDOW });
  metrics.observeTable(table);
  return { clock, metrics };
}

t.test('deltas conserve every request across reports, even for a slot still filling', async (t) => {
  const table = tableFromYaml(splitYaml({ v1: 90, v2: 10 }));
  // The worker started 1000 ms after the primary: its clock reads 1000 ms less.
  const worker = processAt(table, 5000);
  const primary = processAt(table, 6000);
  const reporter = new WindowReporter(worker.metrics.recorder, () => worker.clock.now);
  // Sent and received at the same instant: the primary's clock reads 1000 ms more.
  const ship = () => mergeWindowDeltas(primary.metrics.recorder, reporter.collect(), { sentAt: worker.clock.now, slotMs: WINDOW.slotMs }, worker.clock.now + 1000);
  const end = (version: string, status: number, at: number) => {
    worker.clock.now = at;
    worker.metrics.recorder.onExchangeEnd({ version: versionOf(table, version), status: status, failure: null, startedAt: at - 3, method: 'GET', retryReasons: null, failedOverTo: null, grpcStatus: -1 });
  };

  end('v1', 200, 5010);
  end('v1', 503, 5020);
  end('v2', 200, 5030);
  ship(); // slot 20 (5000-5250) still filling
  t.same(reporter.collect(), [], 'nothing new: nothing to send');
  end('v1', 200, 5100); // same slot, after the report
  end('v2', 200, 5300); // next slot
  worker.clock.now = 5400;
  ship();
  end('v1', 200, 5600);
  worker.clock.now = 5700;
  ship();

  primary.clock.now = 6700; // the same instant on the primary's clock
  const v1 = primary.metrics.recorder.readWindow('svc', 'v1', 1000)!;
  const v2 = primary.metrics.recorder.readWindow('svc', 'v2', 1000)!;
  t.equal(v1.requests, 4, 'every v1 request once');
  t.equal(v1.errors, 1, 'the 503 counts as an error');
  t.equal(v2.requests, 2);
  const workerV1 = worker.metrics.recorder.readWindow('svc', 'v1', 1000)!;
  t.same(v1.buckets, workerV1.buckets, 'latency buckets arrive intact');

  // Placed by the slot's start on the primary's clock: 5000 worker-ms = 6000 primary-ms.
  t.equal(primary.metrics.recorder.readWindow('svc', 'v1', 500)!.requests, 1, 'the last 500 ms hold only the 5600 request');
  primary.clock.now = 6000 + 5 * 60_000 + 1000;
  t.equal(primary.metrics.recorder.readWindow('svc', 'v1', 5 * 60_000)!.requests, 0, 'merged counts age out like local ones');
});

t.test('versions the primary does not know are dropped; a slot the ring passed is ignored', async (t) => {
  const workerTable = tableFromYaml(splitYaml({ v1: 50, v3: 50 }));
  const primaryTable = tableFromYaml(splitYaml({ v1: 50, v2: 50 }));
  const worker = processAt(workerTable, 1000);
  const primary = processAt(primaryTable, 1000);
  const reporter = new WindowReporter(worker.metrics.recorder, () => worker.clock.now);
  worker.metrics.recorder.onExchangeEnd({ version: versionOf(workerTable, 'v3'), status: 200, failure: null, startedAt: 990, method: 'GET', retryReasons: null, failedOverTo: null, grpcStatus: -1 });
  worker.metrics.recorder.onExchangeEnd({ version: versionOf(workerTable, 'v1'), status: 200, failure: null, startedAt: 990, method: 'GET', retryReasons: null, failedOverTo: null, grpcStatus: -1 });
  mergeWindowDeltas(primary.metrics.recorder, reporter.collect(), { sentAt: 1000, slotMs: 250 }, 1000);
  t.equal(primary.metrics.recorder.readWindow('svc', 'v1', 1000)!.requests, 1);
  t.equal(primary.metrics.recorder.readWindow('svc', 'v2', 1000)!.requests, 0);

  const window = [...primary.metrics.recorder.records()].find((r) => r.version === 'v1')!.window;
  const counts = Array.from(window.readSlot(4)!);
  window.addToSlot(4 + WINDOW.slots, counts); // the ring moves on to a later slot in the same row
  window.addToSlot(4, counts); // too late: that row now holds a newer slot
  t.equal(window.readSlot(4), null);
  t.equal(window.readSlot(4 + WINDOW.slots)![0], 1);
  window.addToSlot(5, [1, 2]); // wrong shape
  t.equal(window.readSlot(5), null);
});

t.test('respawn backoff and worker count', async (t) => {
  t.same([1, 2, 3, 4, 5, 20].map(respawnDelayMs), [0, 250, 500, 1000, 2000, 30_000], 'first crash at once, then doubling up to 30 s');
  t.equal(resolveWorkerCount(3), 3);
  t.ok(resolveWorkerCount('auto') >= 1, 'auto is the number of CPUs');
});
