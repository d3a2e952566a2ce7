// The IPC messages between the cluster primary and its workers. Route
// tables hold pools and class instances, so they never cross processes: the
// primary sends what a table is compiled from (the frozen config, plain data,
// and the runtime weights) and each worker compiles its own, with its own
// pools. Compile is pure and deterministic, so every worker makes the same
// sticky choices.
//
//   primary                                   worker
//      │ <───────────── hello ───────────────── │ (listening for messages)
//      │ ── table {generation, config, rw} ───> │ compile; first time: listen
//      │ <──────── ready {generation} ───────── │ (after every applied table)
//      │ ── metrics {id} ─────────────────────> │
//      │ <──────── metrics {id, snapshot} ───── │
//      │ <──────── windows {deltas} ─────────── │ every 250 ms, for rollout analysis
//      │ ── drain {deadlineMs} ───────────────> │ dataPlane.drain, close pools
//      │ <── drained {forced, served, snapshot} ─ │ then the worker exits 0

import type { Config } from '../config/index.ts';
import type { MetricSnapshot } from '../metrics/index.ts';
import type { RuntimeWeights } from '../table/index.ts';
import type { WindowDelta } from './window-sync.ts';

/** Primary -> worker: compile and serve this table. */
export interface TableMessage {
  readonly type: 'table';
  readonly generation: number;
  readonly config: Config;
  readonly runtimeWeights: RuntimeWeights;
  /** Where to listen (the config's address when the table is the first one). */
  readonly listen: { readonly host: string; readonly port: number };
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
export type ToWorker = TableMessage | MetricsRequest | DrainMessage;

/** Worker -> primary: ready for tables. */
export interface HelloMessage {
  readonly type: 'hello';
}

/** Worker -> primary: serving `generation` (sent after listening, then after every table). */
export interface ReadyMessage {
  readonly type: 'ready';
  readonly generation: number;
  readonly address: { readonly host: string; readonly port: number };
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
export type FromWorker = HelloMessage | ReadyMessage | FailedMessage | MetricsReply | WindowsMessage | DrainedMessage;
