// Owns: node:cluster workers for the data plane: forking, pushing tables over IPC (the config, or only the changed weights), respawn, metrics and window gathering, drain.
// Must not touch: the state store, rollouts, the admin API, config files; workers only compile and serve what the primary sends.

import type { Logger } from '../log/index.ts';
import type { VeerMetrics } from '../metrics/index.ts';
import type { TablePublisher } from '../state/index.ts';
import { WorkerPool } from './primary.ts';

export { WorkerPool, resolveWorkerCount } from './primary.ts';
export { respawnDelayMs, CRASH_WINDOW_MS } from './respawn.ts';
export type { WorkerCounts, WorkerPoolOptions } from './primary.ts';
export { runWorker, WINDOW_REPORT_MS } from './worker.ts';
export { WindowReporter, mergeWindowDeltas } from './window-sync.ts';
export type { WindowDelta } from './window-sync.ts';
export type { ToWorker, FromWorker, TableMessage, WeightsMessage, ReadyMessage, WindowsMessage } from './messages.ts';

/** A startVeer data-plane factory that serves from `workers` node:cluster workers running `exec`. */
export function serveFromWorkers(options: {
  workers: number;
  exec: string;
  configDir?: string;
  tls?: { readonly listen: { readonly host: string; readonly port: number }; readonly configDir: string } | null;
}): (wiring: { state: TablePublisher; metrics: VeerMetrics; log: Logger }) => WorkerPool {
  return (wiring) => new WorkerPool({ ...options, ...wiring });
}
