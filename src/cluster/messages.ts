// The IPC messages between the cluster primary and its workers. Route
// tables hold class instances (matchers), so they never cross processes:
// the primary sends what a table is compiled from and each worker compiles
// its own. A config change sends the config and the runtime weights; a
// weight change sends only the services it changed, which the worker
// recompiles alone. Compile is pure and deterministic, so every worker makes
// the same sticky choices.
//
//   primary                                   worker
//      │ <───────────── hello ───────────────── │ (listening for messages)
//      │ ── table {generation, config, rw} ───> │ compile; first time: listen
//      │ ── weights {generation, changes} ────> │ recompile those services (a gap: resync)
//      │ <──────── resync {generation} ──────── │ ...answered with a full table
//      │ <──────── ready {generation} ───────── │ (after every applied table)
//      │ ── metrics {id} ─────────────────────> │
//      │ <──────── metrics {id, snapshot} ───── │
//      │ <──────── windows {deltas} ─────────── │ every 250 ms, for rollout analysis
//      │ ── drain {deadlineMs} ───────────────> │ dataPlane.drain, close pools
//      │ <── drained {forced, served, snapshot} ─ │ then the worker exits 0

import type { Config } from '../config/index.ts';
import type { MetricSnapshot } from '../metrics/index.ts';
import type { RuntimeWeights, WeightChanges } from '../table/index.ts';
import type { WindowDelta } from './window-sync.ts';

/** Primary -> worker: compile and serve this table. */
export interface TableMessage {
  readonly type: 'table';
  readonly generation: number;
  readonly config: Config;
  readonly runtimeWeights: RuntimeWeights;
  /** Where to listen (the config's address when the table is the first one). */
  readonly listen: { readonly host: string; readonly port: number };
  /** The config file's folder: relative file paths in the config are read from it. */
  readonly configDir: string;
  /** The TLS listener: where, and the config file's folder its certificate paths are relative to. */
  readonly tls: { readonly listen: { readonly host: string; readonly port: number }; readonly configDir: string } | null;
}

/** Primary -> worker: new runtime weights for some services, on top of table `generation - 1`. */
export interface WeightsMessage {
  readonly type: 'weights';
  readonly generation: number;
  readonly changes: WeightChanges;
}

/** Primary -> worker: answer with a metrics snapshot. */
export interface MetricsRequest {
  readonly type: 'metrics';
  readonly id: number;
}

/** Primary -> worker: stop accepting, let in-flight requests finish, exit. */
export interface DrainMessage {
  readonly type: 'drain';
  readonly deadlineMs: number;
}

/** What the primary sends. */
export type ToWorker = TableMessage | WeightsMessage | MetricsRequest | DrainMessage;

/** Worker -> primary: ready for tables. */
export interface HelloMessage {
  readonly type: 'hello';
}

/** Worker -> primary: serving `generation` (sent after listening, then after every table). */
export interface ReadyMessage {
  readonly type: 'ready';
  readonly generation: number;
  readonly address: { readonly host: string; readonly port: number };
  /** The TLS listener's address, when there is one. */
  readonly tlsAddress: { readonly host: string; readonly port: number } | null;
}

/** Worker -> primary: a weights message did not follow its table (one was missed); send the whole table. */
export interface ResyncMessage {
  readonly type: 'resync';
  readonly generation: number;
}

/** Worker -> primary: a table did not compile (a bug: the primary compiled the same inputs), or listen failed. */
export interface FailedMessage {
  readonly type: 'failed';
  readonly generation: number;
  readonly stage: 'compile' | 'listen';
  readonly error: string;
}

/** Worker -> primary: its metrics. */
export interface MetricsReply {
  readonly type: 'metrics';
  readonly id: number;
  readonly snapshot: MetricSnapshot;
}

/** Worker -> primary: per-version window counts since the last report. */
export interface WindowsMessage {
  readonly type: 'windows';
  /** The worker's clock (performance.now, which its slot ids count on) when it sent this. */
  readonly sentAt: number;
  readonly slotMs: number;
  readonly deltas: readonly WindowDelta[];
  readonly inFlight: number;
}

/** Worker -> primary: drained; about to exit. */
export interface DrainedMessage {
  readonly type: 'drained';
  readonly forced: number;
  /** Requests this worker served over its life. */
  readonly served: number;
  /** Its final metrics, so its counts stay in the /metrics sum after it exits. */
  readonly snapshot: MetricSnapshot;
}

/** What a worker sends. */
export type FromWorker = HelloMessage | ReadyMessage | ResyncMessage | FailedMessage | MetricsReply | WindowsMessage | DrainedMessage;
