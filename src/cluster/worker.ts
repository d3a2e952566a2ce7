// A cluster worker: serves the data plane on tables the primary sends. It
// compiles each one itself (a table holds matchers, which cannot cross
// processes) and listens only once it has its first table, so it never takes
// traffic without the current weights. It owns no state store, no admin
// API, no config file: everything arrives over IPC.

import type { LevelWithSilent } from 'pino';
import { createDataPlane, openCertificateStore, openTracing, releaseStartupHeap, type CertificateStore, type DataPlane } from '../dataplane/index.ts';
import { createLogger, type Logger } from '../log/index.ts';
import { createVeerMetrics, VERSION_WINDOW, type VeerMetrics } from '../metrics/index.ts';
import { parseDuration, TablePublisher, type TableChange } from '../state/index.ts';
import type { CompileResult } from '../table/index.ts';
import type { FromWorker, TableMessage, ToWorker, WeightsMessage } from './messages.ts';
import { WindowReporter } from './window-sync.ts';

/** How often a worker reports its window deltas to the primary (ms): one window slot. */
export const WINDOW_REPORT_MS = VERSION_WINDOW.slotMs;

/** Runs this process as a cluster worker until the primary tells it to drain (or goes away). */
export function runWorker(): void {
  const send = (message: FromWorker, then?: () => void): void => {
    if (process.connected) process.send!(message, undefined, {}, () => then?.());
    else then?.();
  };
  const metrics: VeerMetrics = createVeerMetrics({ window: VERSION_WINDOW });
  const reporter = new WindowReporter(metrics.recorder);
  const tables = new TablePublisher();
  tables.onPublish((table) => metrics.observeTable(table));
  let log: Logger | null = null;
  let dataPlane: DataPlane | null = null;
  let listening: Promise<void> | null = null;
  let address: { host: string; port: number } | null = null;
  let tlsAddress: { host: string; port: number } | null = null;
  let draining = false;

  const applied = (generation: number, result: CompileResult, change: TableChange['kind']): void => {
    if (!result.ok) {
      // The primary compiled the same inputs, so only a bug gets here; keep the last table.
      const error = result.issues.map((i) => i.message).join('; ');
      log!.error({ generation, error, change }, 'worker could not compile a table');
      send({ type: 'failed', generation, stage: 'compile', error });
      return;
    }
    if (listening === null && address !== null) send({ type: 'ready', generation, address, tlsAddress });
  };

  const applyTable = (message: TableMessage): void => {
    if (tables.ready && message.generation <= tables.table.generation) return;
    const level = message.config.log.level as LevelWithSilent;
    if (log === null) log = createLogger(level);
    else log.level = level;
    applied(message.generation, tables.applyConfig(message.config, message.runtimeWeights, message.generation), 'config');
    if (dataPlane === null && tables.ready) listening = listen(message.listen, message.tls, message.configDir);
  };

  const applyWeights = (message: WeightsMessage): void => {
    if (!tables.ready || message.generation <= tables.table.generation) return;
    // A delta applies to the table right before it only; after a gap the whole table is needed.
    if (message.generation !== tables.table.generation + 1) {
      send({ type: 'resync', generation: tables.table.generation });
      return;
    }
    applied(message.generation, tables.publishWeights(message.changes), 'weights');
  };

  const listen = async (at: { host: string; port: number }, tls: TableMessage['tls'], configDir: string): Promise<void> => {
    // The TLS listener's certificates, read by each worker from the same files (the primary checked them at start).
    const tlsConfig = tables.table.config.tls;
    let certificates: CertificateStore | null = null;
    if (tls !== null && tlsConfig !== undefined) {
      const opened = openCertificateStore(tlsConfig, tls.configDir, (p) => log!.error({ cert: p.cert, error: p.message }, 'TLS certificate not usable; the last good one keeps serving'));
      if (opened.problems.length > 0) {
        opened.store.close();
        send({ type: 'failed', generation: tables.table.generation, stage: 'listen', error: opened.problems.map((p) => `${p.cert}: ${p.message}`).join('; ') }, () => process.exit(1));
        return;
      }
      certificates = opened.store;
      certificates.watch();
      metrics.readCertificatesFrom(certificates);
    }
    // log.access and tracing as the first table has them: restart-only, like the listener (1 is stdout).
    const tracingConfig = tables.table.config.tracing;
    dataPlane = createDataPlane({
      table: () => tables.table,
      log: log!,
      observer: metrics.recorder,
      accessLog: tables.table.config.log.access ? 1 : null,
      tracing: tracingConfig === undefined ? null : openTracing(tracingConfig, parseDuration(tracingConfig.otlp?.timeout ?? '5s'), log!, (count) => metrics.countDroppedSpans(count)),
      configDir,
      tls: certificates === null ? null : { certificates, redirectHttp: tlsConfig!.redirectHttp, http2: tlsConfig!.http2 },
      h2c: tables.table.config.h2c,
    });
    const upstreams = dataPlane.upstreams;
    metrics.readEndpointsFrom(() => upstreams.endpointStates(tables.table));
    metrics.readMirrorsFrom(() => upstreams.mirrorCounts());
    try {
      address = await dataPlane.listen(at.host, at.port);
      if (tls !== null && certificates !== null) tlsAddress = await dataPlane.listenTls(tls.listen.host, tls.listen.port);
    } catch (err) {
      send({ type: 'failed', generation: tables.table.generation, stage: 'listen', error: (err as Error).message }, () => process.exit(1));
      return;
    }
    listening = null;
    // Before the primary counts this worker as serving: what starting took goes back to the system.
    releaseStartupHeap();
    // Tables that arrived while listening were applied already: report the latest.
    send({ type: 'ready', generation: tables.table.generation, address, tlsAddress });
  };

  const report = (): void => {
    const deltas = reporter.collect();
    if (deltas.length > 0 || (dataPlane?.inFlight ?? 0) > 0) {
      send({ type: 'windows', sentAt: performance.now(), slotMs: VERSION_WINDOW.slotMs, deltas, inFlight: dataPlane?.inFlight ?? 0 });
    }
  };
  const reporting = setInterval(report, WINDOW_REPORT_MS);
  reporting.unref();

  const drain = async (deadlineMs: number): Promise<void> => {
    if (draining) return;
    draining = true;
    await listening;
    const result = dataPlane === null ? { forced: 0 } : await dataPlane.drain(deadlineMs);
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
        if (!draining) applyTable(message);
        break;
      case 'weights':
        if (!draining) applyWeights(message);
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
  process.on('SIGTERM', () => void drain(tables.ready ? parseDuration(tables.table.config.drainTimeout) : 0));
  send({ type: 'hello' });
}
