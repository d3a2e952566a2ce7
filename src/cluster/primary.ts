// The cluster primary's side of the data plane: forks the workers, pushes
// every published table to them, replaces the ones that die, gathers their
// metrics and window counts, and drains them on shutdown. It stands where
// the in-process data plane would (listen, drain, inFlight), so the rest of
// veer - admin API, state store, rollout engine - runs in the primary as if
// it served the traffic itself.
//
//   worker lifecycle (one slot per configured worker):
//
//   fork ──hello──> send current table ──ready──> serving ──exit──> respawn (backoff if it keeps dying: respawn.ts)
//                                                    │
//                                          drain ──drained──> exit 0 (no respawn while stopping)

import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from '../log/index.ts';
import type { MetricsText, VeerMetrics } from '../metrics/index.ts';
import type { TableChange, TablePublisher } from '../state/index.ts';
import type { RouteTable } from '../table/index.ts';
import type { FromWorker, TableMessage, ToWorker } from './messages.ts';
import { MetricsGatherer, type MetricsSource } from './metrics-gathering.ts';
import { RespawnSchedule } from './respawn.ts';
import { mergeWindowDeltas } from './window-sync.ts';

/** How to build a WorkerPool. */
export interface WorkerPoolOptions {
  /** Number of worker processes (at least 1). */
  readonly workers: number;
  /** The worker's entry point (a .ts or .js file that calls runWorker). */
  readonly exec: string;
  readonly state: TablePublisher;
  readonly metrics: VeerMetrics;
  readonly log: Logger;
  /** How long /metrics waits for a worker's snapshot (default 1000 ms). */
  readonly metricsTimeoutMs?: number;
  /** How long an admin write waits for every worker to apply its table (default 2000 ms). */
  readonly settleTimeoutMs?: number;
  /** How long start-up waits for every worker to listen (default 30 s). */
  readonly startTimeoutMs?: number;
  /** The config file's folder (relative file paths in the config are read from it). */
  readonly configDir?: string;
  /** The TLS listener every worker opens beside the plain one (`tls:`), and the folder its certificate paths are relative to. */
  readonly tls?: { readonly listen: { readonly host: string; readonly port: number }; readonly configDir: string } | null;
}

/** A worker process and what the primary knows of it (its worker, pid, hello and last metrics snapshot: MetricsSource). */
interface Member extends MetricsSource {
  readonly slot: number;
  readonly startedAt: number;
  hello: boolean;
  ready: boolean;
  generation: number;
  inFlight: number;
  forced: number;
}

/** How many data-plane workers there should be and how many serve; /readyz reports it. */
export interface WorkerCounts {
  readonly configured: number;
  readonly serving: number;
}

/** `workers` from the config as a number of processes ("auto": one per CPU). */
export function resolveWorkerCount(workers: number | 'auto'): number {
  return workers === 'auto' ? availableParallelism() : workers;
}

/** Runs the data plane in node:cluster workers fed by this (primary) process. */
export class WorkerPool {
  readonly #options: WorkerPoolOptions;
  readonly #log: Logger;
  readonly #members = new Map<number, Member>();
  readonly #respawns: RespawnSchedule;
  readonly #settleWaiters = new Set<() => void>();
  readonly #exitWaiters = new Set<() => void>();
  readonly #gatherer: MetricsGatherer<Member>;
  #listenAt: { host: string; port: number } | null = null;
  #tlsAddress: { host: string; port: number } | null = null;
  #address: { host: string; port: number } | null = null;
  #starting: { resolve: () => void; reject: (err: Error) => void } | null = null;
  #stopping = false;
  /** Requests cut off by the drain deadline, over every worker. */
  #forced = 0;
  #configuredWorkers: number | 'auto';

  constructor(options: WorkerPoolOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#respawns = new RespawnSchedule(options.workers);
    this.#configuredWorkers = options.state.ready ? options.state.table.config.workers : options.workers;
    this.#gatherer = new MetricsGatherer({
      members: this.#members,
      metrics: options.metrics,
      log: options.log,
      timeoutMs: options.metricsTimeoutMs ?? 1000,
      send: (member, message) => this.#send(member, message),
    });
    options.state.onPublish((table, change) => this.#push(table, change));
  }

  /** Requests in flight over every worker, as of their last reports. */
  get inFlight(): number {
    let n = 0;
    for (const m of this.#members.values()) n += m.inFlight;
    return n;
  }

  /** The shared address of the workers' TLS listener, once they listen (null without `tls`). */
  get tlsAddress(): { host: string; port: number } | null {
    return this.#tlsAddress;
  }

  /** Workers configured, and those listening now (a crashed one is not, until its replacement is). */
  get workers(): WorkerCounts {
    let serving = 0;
    for (const m of this.#members.values()) if (m.ready && m.worker.isConnected()) serving++;
    return { configured: this.#options.workers, serving };
  }

  /** Forks the workers; resolves with the shared address once every one has its table and listens. */
  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    this.#listenAt = { host, port };
    cluster.setupPrimary({ exec: this.#options.exec, args: [], serialization: 'advanced' });
    const started = new Promise<void>((resolve, reject) => {
      this.#starting = { resolve, reject };
    });
    for (let slot = 0; slot < this.#options.workers; slot++) this.#fork(slot);
    const timeoutMs = this.#options.startTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`workers did not start within ${timeoutMs} ms`)), timeoutMs);
    });
    return Promise.race([started, timeout]).then(
      () => {
        clearTimeout(timer);
        this.#starting = null;
        return this.#address!;
      },
      async (err: Error) => {
        clearTimeout(timer);
        this.#starting = null;
        await this.drain(0);
        throw err;
      },
    );
  }

  /** /metrics: this process's registry summed with every worker's (a worker that does not answer in time is left out). */
  render(): Promise<MetricsText> {
    return this.#gatherer.render();
  }

  /**
   * Resolves once every serving worker runs the published table (or after
   * the settle timeout), so an admin write answers only when it applies
   * everywhere. Workers still starting get the current table before they listen.
   */
  settled(): Promise<void> {
    if (this.#isSettled()) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#settleWaiters.delete(done);
        resolve();
      };
      const timeoutMs = this.#options.settleTimeoutMs ?? 2000;
      const timer = setTimeout(() => {
        this.#log.warn({ generation: this.#options.state.table.generation, workers: this.#generations() }, `not every worker applied the table within ${timeoutMs} ms`);
        done();
      }, timeoutMs);
      this.#settleWaiters.add(done);
    });
  }

  /** Tells every worker to drain (each waits up to `deadlineMs`), waits for them to exit; kills stragglers. */
  async drain(deadlineMs: number): Promise<{ forced: number }> {
    this.#stopping = true;
    this.#respawns.cancel();
    for (const m of this.#members.values()) this.#send(m, { type: 'drain', deadlineMs });
    const allGone = new Promise<void>((resolve) => {
      const check = () => {
        if (this.#members.size > 0) return;
        this.#exitWaiters.delete(check);
        resolve();
      };
      this.#exitWaiters.add(check);
      check();
    });
    // Workers enforce the deadline themselves; this only catches one that hangs.
    let timer: NodeJS.Timeout | undefined;
    const hardDeadline = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), deadlineMs + 5000);
    });
    if ((await Promise.race([allGone, hardDeadline])) === 'late') {
      for (const m of this.#members.values()) {
        this.#log.error({ worker: m.worker.id, workerPid: m.pid }, 'worker did not drain in time; killing it');
        this.#forced += m.inFlight;
        m.worker.process.kill('SIGKILL');
      }
      await allGone;
    }
    clearTimeout(timer);
    return { forced: this.#forced };
  }

  #fork(slot: number): void {
    const worker = cluster.fork();
    const member: Member = { worker, pid: worker.process.pid!, slot, startedAt: Date.now(), hello: false, ready: false, generation: 0, inFlight: 0, forced: 0, snapshot: null };
    this.#members.set(worker.id, member);
    this.#log.info({ worker: worker.id, workerPid: member.pid, slot }, 'worker started');
    worker.on('message', (message: FromWorker) => this.#onMessage(member, message));
    worker.on('error', (err) => this.#log.warn({ worker: worker.id, workerPid: member.pid, err }, 'worker IPC error'));
    worker.on('exit', (code: number | null, signal: string | null) => this.#exited(member, code, signal));
  }

  #onMessage(member: Member, message: FromWorker): void {
    switch (message.type) {
      case 'hello':
        member.hello = true;
        if (this.#options.state.ready && !this.#stopping) this.#send(member, this.#tableMessage(this.#options.state.table));
        return;
      case 'resync':
        this.#log.warn({ worker: member.worker.id, workerPid: member.pid, generation: message.generation }, 'worker missed a table; sending it the whole table');
        if (this.#options.state.ready && !this.#stopping) this.#send(member, this.#tableMessage(this.#options.state.table));
        return;
      case 'ready': {
        member.generation = message.generation;
        if (!member.ready) {
          member.ready = true;
          this.#address ??= message.address;
          this.#tlsAddress ??= message.tlsAddress;
          this.#log.info({ worker: member.worker.id, workerPid: member.pid, generation: message.generation, listen: `${message.address.host}:${message.address.port}` }, 'worker ready');
          if (this.#starting !== null && [...this.#members.values()].filter((m) => m.ready).length >= this.#options.workers) this.#starting.resolve();
        }
        if (this.#isSettled()) for (const done of [...this.#settleWaiters]) done();
        return;
      }
      case 'failed':
        this.#log.error({ worker: member.worker.id, workerPid: member.pid, generation: message.generation, stage: message.stage, error: message.error }, `worker could not ${message.stage === 'listen' ? 'listen' : 'compile the table'}`);
        if (message.stage === 'listen') this.#starting?.reject(new Error(`cannot listen: ${message.error}`));
        return;
      case 'metrics':
        this.#gatherer.answered(member, message.id, message.snapshot);
        return;
      case 'windows':
        member.inFlight = message.inFlight;
        mergeWindowDeltas(this.#options.metrics.recorder, message.deltas, message);
        return;
      case 'drained':
        member.snapshot = message.snapshot;
        member.forced = message.forced;
        member.inFlight = 0;
        return;
    }
  }

  #exited(member: Member, code: number | null, signal: string | null): void {
    this.#members.delete(member.worker.id);
    this.#gatherer.exited(member);
    const lived = Date.now() - member.startedAt;
    const fields = { worker: member.worker.id, workerPid: member.pid, slot: member.slot, code, signal, livedMs: lived };
    if (this.#stopping) {
      this.#forced += member.forced;
      this.#log.info(fields, 'worker exited');
    } else if (this.#starting !== null && !member.ready) {
      this.#log.error(fields, 'worker exited before it was ready');
      this.#starting.reject(new Error(`worker ${member.pid} exited before it was ready (code ${code}, signal ${signal})`));
    } else {
      const delayMs = this.#respawns.schedule(member.slot, lived, () => {
        if (!this.#stopping) this.#fork(member.slot);
      });
      this.#log.warn({ ...fields, respawnInMs: delayMs }, 'worker exited; starting a replacement');
    }
    for (const check of [...this.#exitWaiters]) check();
    if (this.#isSettled()) for (const done of [...this.#settleWaiters]) done();
  }

  #push(table: RouteTable, change: TableChange): void {
    if (table.config.workers !== this.#configuredWorkers) {
      this.#configuredWorkers = table.config.workers;
      this.#log.warn({ workers: table.config.workers, running: this.#options.workers }, 'workers changed in the config; restart veer to apply it');
    }
    this.#gatherer.retainOnly(table);
    if (this.#stopping) return;
    // A weight change travels as the services it changed, not the whole config.
    const message: ToWorker = change.kind === 'weights' ? { type: 'weights', generation: table.generation, changes: change.changes } : this.#tableMessage(table);
    for (const m of this.#members.values()) if (m.hello) this.#send(m, message);
  }

  #tableMessage(table: RouteTable): TableMessage {
    return { type: 'table', generation: table.generation, config: table.config, runtimeWeights: table.runtimeWeights, listen: this.#listenAt!, tls: this.#options.tls ?? null, configDir: this.#options.configDir ?? '.' };
  }

  #send(member: Member, message: ToWorker): boolean {
    if (!member.worker.isConnected()) return false;
    try {
      member.worker.send(message);
      return true;
    } catch {
      return false;
    }
  }

  #isSettled(): boolean {
    if (!this.#options.state.ready) return true;
    const generation = this.#options.state.table.generation;
    for (const m of this.#members.values()) if (m.ready && m.worker.isConnected() && m.generation < generation) return false;
    return true;
  }

  #generations(): Record<number, number> {
    const out: Record<number, number> = {};
    for (const m of this.#members.values()) out[m.pid] = m.generation;
    return out;
  }
}
