// A cluster worker: serves the data plane on tables the primary sends. It
// compiles each one itself (tables hold pools, which cannot cross processes)
// and listens only once it has its first table, so it never takes traffic
// without the current weights. It owns no state, no admin API, no config
// file: everything arrives over IPC.

import { parseDuration, deepFreeze, type Config } from '../config/index.ts';
import { createDataPlane, type DataPlane } from '../dataplane/index.ts';
import { UpstreamPools, type PooledUpstream } from '../forwarder/index.ts';
import { createLogger, type Logger } from '../log/index.ts';
import type { LevelWithSilent } from 'pino';
import { createVeerMetrics, type VeerMetrics } from '../metrics/index.ts';
import { compileTable, type RouteTable } from '../table/index.ts';
import type { FromWorker, TableMessage, ToWorker } from './messages.ts';
import { WindowReporter } from './window-sync.ts';

/** How often a worker reports its window deltas to the primary (ms): one window slot. */
export const WINDOW_REPORT_MS = 250;
/** The window every process keeps: quarter-second slots, 5 minutes (as in main.ts). */
export const WINDOW = { slotMs: 250, slots: 1200 } as const;

/** Runs this process as a cluster worker until the primary tells it to drain (or goes away). */
export function runWorker(): void {
  const send = (message: FromWorker, then?: () => void): void => {
    if (process.connected) process.send!(message, undefined, {}, () => then?.());
    else then?.();
  };
  const pools = new UpstreamPools();
  const metrics: VeerMetrics = createVeerMetrics({ window: WINDOW });
  const reporter = new WindowReporter(metrics.recorder);
  let table: RouteTable | null = null;
  let log: Logger | null = null;
  let dataPlane: DataPlane | null = null;
  let listening: Promise<void> | null = null;
  let draining = false;

  const apply = (message: TableMessage): void => {
    if (table !== null && message.generation <= table.generation) return;
    const config = deepFreeze(message.config) as Config;
    const level = config.log.level as LevelWithSilent;
    if (log === null) log = createLogger(level);
    else log.level = level;
    const compiled = compileTable(config, {
      generation: message.generation,
      runtimeWeights: message.runtimeWeights,
      bindUpstream: (origin, service) => pools.bind(origin, parseDuration(service.timeouts.connect)),
    });
    if (!compiled.ok) {
      // The primary compiled the same inputs, so only a bug gets here; keep the last table.
      const error = compiled.issues.map((i) => i.message).join('; ');
      log.error({ generation: message.generation, error }, 'worker could not compile a table');
      send({ type: 'failed', generation: message.generation, stage: 'compile', error });
      return;
    }
    table = compiled.table;
    metrics.observeTable(table);
    const inUse = new Set<string>();
    for (const service of table.services) for (const v of service.versions) for (const u of v.upstreams) inUse.add((u as PooledUpstream).key);
    pools.retainOnly(inUse);
    if (dataPlane === null) {
      listening = listen(message.listen);
      return;
    }
    if (listening === null) send({ type: 'ready', generation: table.generation, address: address! });
  };

  let address: { host: string; port: number } | null = null;
  const listen = async (at: { host: string; port: number }): Promise<void> => {
    dataPlane = createDataPlane({ table: () => table!, log: log!, observer: metrics.recorder });
    try {
      address = await dataPlane.listen(at.host, at.port);
    } catch (err) {
      send({ type: 'failed', generation: table!.generation, stage: 'listen', error: (err as Error).message }, () => process.exit(1));
      return;
    }
    listening = null;
    // Tables that arrived while listening were applied already: report the latest.
    send({ type: 'ready', generation: table!.generation, address });
  };

  const report = (): void => {
    const deltas = reporter.collect();
    if (deltas.length > 0 || (dataPlane?.inFlight ?? 0) > 0) {
      send({ type: 'windows', sentAt: performance.now(), slotMs: WINDOW.slotMs, deltas, inFlight: dataPlane?.inFlight ?? 0 });
    }
  };
  const reporting = setInterval(report, WINDOW_REPORT_MS);
  reporting.unref();

  const drain = async (deadlineMs: number): Promise<void> => {
    if (draining) return;
    draining = true;
    await listening;
    const result = dataPlane === null ? { forced: 0 } : await dataPlane.drain(deadlineMs);
    await pools.close(result.forced > 0);
    clearInterval(reporting);
    report();
    let served = 0;
    for (const record of metrics.recorder.records()) for (const series of record.codes.values()) served += series.count;
    log?.info({ forced: result.forced, served }, 'worker drained');
    send({ type: 'drained', forced: result.forced, served, snapshot: await metrics.snapshot() }, () => process.exit(0));
  };

  process.on('message', (message: ToWorker) => {
    switch (message.type) {
      case 'table':
        if (!draining) apply(message);
        break;
      case 'metrics':
        void metrics.snapshot().then((snapshot) => send({ type: 'metrics', id: message.id, snapshot }));
        break;
      case 'drain':
        void drain(message.deadlineMs);
        break;
    }
  });
  // When the primary is gone (crashed, killed), node:cluster exits the worker at once: no orphans.
  // A terminal's Ctrl-C reaches the whole process group; the primary decides when workers drain.
  process.on('SIGINT', () => {});
  // SIGTERM to one worker recycles it: it drains, and the primary starts a replacement.
  process.on('SIGTERM', () => void drain(table === null ? 0 : parseDuration(table.config.drainTimeout)));
  send({ type: 'hello' });
}
