// /metrics with workers: the primary's own registry, plus the counters of
// workers that exited (retired-metrics.ts), plus a fresh snapshot asked of
// every live worker over IPC. A worker that does not answer within the
// deadline, or exits meanwhile, is left out of that scrape, never waited for.
//
//   render ── metrics {id} ──> each worker that said hello
//          <── metrics {id, snapshot} ── answered(id)      (or null at the deadline / exit)
//          sum: own + retired + live replies

import type { Worker } from 'node:cluster';
import type { Logger } from '../log/index.ts';
import { renderSnapshots, type MetricSnapshot, type MetricsText, type VeerMetrics } from '../metrics/index.ts';
import type { RouteTable } from '../table/index.ts';
import type { MetricsRequest } from './messages.ts';
import { RetiredCounters } from './retired-metrics.ts';

/** What gathering needs to know of a worker. */
export interface MetricsSource {
  readonly worker: Worker;
  readonly pid: number;
  /** Whether it listens for messages yet (only then is it asked). */
  readonly hello: boolean;
  /** Its latest metrics (from /metrics, or final when it drained): kept in the sum after it exits. */
  snapshot: MetricSnapshot | null;
}

/** How to build a MetricsGatherer. */
export interface MetricsGathererOptions<M extends MetricsSource> {
  /** The live workers by worker id (the pool's own map, read at each scrape). */
  readonly members: ReadonlyMap<number, M>;
  readonly metrics: VeerMetrics;
  readonly log: Logger;
  /** How long a scrape waits for a worker's snapshot. */
  readonly timeoutMs: number;
  /** Sends over IPC; false when the worker cannot be reached. */
  readonly send: (member: M, message: MetricsRequest) => boolean;
}

/** Sums the primary's, the exited workers' and the live workers' metrics for /metrics. */
export class MetricsGatherer<M extends MetricsSource> {
  readonly #o: MetricsGathererOptions<M>;
  readonly #pending = new Map<number, { member: M; finish: (snapshot: MetricSnapshot | null) => void }>();
  readonly #retired = new RetiredCounters();
  #nextId = 0;

  constructor(options: MetricsGathererOptions<M>) {
    this.#o = options;
  }

  /** This process's registry summed with every worker's (a worker that does not answer in time is left out). */
  async render(): Promise<MetricsText> {
    const own = await this.#o.metrics.snapshot();
    const asked = [...this.#o.members.values()].filter((m) => m.hello);
    const replies = await Promise.all(asked.map((m) => this.#ask(m)));
    // A worker that exited meanwhile is in the retired counts already: count it once.
    const live = replies.filter((s, i): s is MetricSnapshot => s !== null && this.#o.members.has(asked[i]!.worker.id));
    return renderSnapshots([own, this.#retired.snapshot(), ...live]);
  }

  /** A worker answered request `id`. */
  answered(member: M, id: number, snapshot: MetricSnapshot): void {
    member.snapshot = snapshot;
    this.#pending.get(id)?.finish(snapshot);
  }

  /** A worker exited: its last snapshot joins the retired counters; a question to it gets no answer. */
  exited(member: M): void {
    if (member.snapshot !== null) this.#retired.add(member.snapshot);
    for (const pending of this.#pending.values()) if (pending.member === member) pending.finish(null);
  }

  /** Drops retired series of versions the new table no longer has. */
  retainOnly(table: RouteTable): void {
    this.#retired.retainOnly(table);
  }

  #ask(member: M): Promise<MetricSnapshot | null> {
    const id = ++this.#nextId;
    const timeoutMs = this.#o.timeoutMs;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#o.log.warn({ worker: member.worker.id, workerPid: member.pid }, `worker sent no metrics within ${timeoutMs} ms; /metrics leaves it out`);
        finish(null);
      }, timeoutMs);
      const finish = (snapshot: MetricSnapshot | null) => {
        clearTimeout(timer);
        this.#pending.delete(id);
        resolve(snapshot);
      };
      this.#pending.set(id, { member, finish });
      if (!this.#o.send(member, { type: 'metrics', id })) finish(null);
    });
  }
}
