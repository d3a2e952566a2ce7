// Fleet-wide analysis: with several replicas on etcd, the leader's checks
// read every live replica's traffic, not only its own.
//
//   replica (not leading), every publish period, per service in a rollout:
//     its windows (its workers' merged in) over the analysis interval
//       ──> PREFIX windows/SERVICE/REPLICA = {"at":ms,"spanMs":n,"v":{"v1":[req,err,b0..bN],...}}  (on its lease)
//   leader, at each check:
//     its own windows, now  +  one range read of PREFIX windows/SERVICE/  (values fresher than 2 periods + 2 s)
//       ──> canary and stable windows summed over the fleet, and each replica's share
//
// Why push through etcd rather than pull from each replica's admin listener:
// replicas already share etcd (and its TLS and credentials), not a network
// path to each other's admin port, which binds loopback by default. The
// cost is bounded: one key per live replica per service in a rollout,
// overwritten in place, on the replica's lease (gone within its TTL when it
// dies, deleted when the rollout ends). The period is a quarter of the
// interval, between 250 ms and 5 s, so a remote window is at most a quarter
// interval older than the leader's own.

import type { Logger } from '../log/index.ts';
import { DURATION_BUCKETS, type WindowStats } from '../metrics/index.ts';
import { isRolloutActive, type FleetWindowStore, type ReplicaShare, type RuntimeState } from '../state/index.ts';
import { mergeStats } from './analysis.ts';
import type { AnalysisQuery, AnalysisSource, AnalysisWindows, VersionStatsSource } from './analysis-source.ts';
import { currentSpec } from './plan.ts';

/** How often a replica overwrites its windows of a service whose analysis runs every `intervalMs`. */
export function publishPeriodMs(intervalMs: number): number {
  return Math.min(5000, Math.max(250, Math.round(intervalMs / 4)));
}

/** What one replica publishes: when, over which span, and each version's counts [requests, errors, buckets...]. */
interface PublishedWindows {
  readonly at: number;
  readonly spanMs: number;
  readonly v: Readonly<Record<string, readonly number[]>>;
}

/** How to build FleetWindows. */
export interface FleetWindowsOptions {
  readonly runtime: RuntimeState;
  readonly windows: VersionStatsSource;
  readonly board: FleetWindowStore;
  readonly log: Logger;
  readonly now?: () => number;
}

/** Publishes this replica's windows while it follows, and reads the fleet's when it leads: the engine's analysis source. */
export class FleetWindows implements AnalysisSource {
  readonly #runtime: RuntimeState;
  readonly #windows: VersionStatsSource;
  readonly #board: FleetWindowStore;
  readonly #log: Logger;
  readonly #now: () => number;
  /** Services this replica has a value for, and when it wrote it last. */
  readonly #published = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  #busy = false;

  constructor(options: FleetWindowsOptions) {
    this.#runtime = options.runtime;
    this.#windows = options.windows;
    this.#board = options.board;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
  }

  /** Starts publishing (every 250 ms it looks which services are due). */
  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => void this.#publishDue(), 250);
    this.#timer.unref();
  }

  /** Stops publishing and drops this replica's values (the lease would drop them too, within its TTL). */
  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await Promise.all([...this.#published.keys()].map((service) => this.#board.remove(service).catch(() => {})));
    this.#published.clear();
  }

  /** The canary's and stable versions' windows summed over this replica (now) and every other live one (its last value). */
  async read(query: AnalysisQuery): Promise<AnalysisWindows> {
    const own = this.#readOwn(query);
    const shares: ReplicaShare[] = [shareOf(this.#board.replicaId, true, own.canary, own.stable)];
    const canaries: WindowStats[] = own.canary === null ? [] : [own.canary];
    const stables: WindowStats[] = own.stable === null ? [] : [own.stable];
    let entries: { replica: string; value: string }[] = [];
    try {
      entries = await this.#board.read(query.service);
    } catch (err) {
      this.#log.warn({ err, service: query.service }, "could not read the other replicas' windows; this check counts this replica's traffic only");
    }
    const freshAfter = this.#now() - 2 * publishPeriodMs(query.spanMs) - 2000;
    for (const { replica, value } of entries) {
      if (replica === this.#board.replicaId) continue;
      const published = parse(value);
      if (published === null || published.at < freshAfter || published.spanMs !== query.spanMs) continue;
      const canary = statsOf(published, [query.canary]);
      const stable = statsOf(published, query.stables);
      if (canary !== null) canaries.push(canary);
      if (stable !== null) stables.push(stable);
      shares.push(shareOf(replica, false, canary, stable));
    }
    return { canary: mergeStats(canaries), stable: mergeStats(stables), replicas: shares };
  }

  #readOwn(query: AnalysisQuery): { canary: WindowStats | null; stable: WindowStats | null } {
    const canary = this.#windows.readWindow(query.service, query.canary, query.spanMs);
    const stables = query.stables.map((v) => this.#windows.readWindow(query.service, v, query.spanMs)).filter((s) => s !== null);
    return { canary, stable: mergeStats(stables) };
  }

  /** Writes the windows of every service in a rollout whose period came, while this replica follows; drops the ended ones. */
  async #publishDue(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const now = this.#now();
      const follower = !this.#runtime.leadership.isLeader();
      const running = new Set<string>();
      for (const [service, record] of Object.entries(this.#runtime.records())) {
        const rollout = record.rollout;
        const spec = rollout === undefined || !isRolloutActive(rollout) ? null : currentSpec(rollout);
        const compiled = this.#runtime.table.servicesByName.get(service);
        if (spec === null || compiled === undefined || !follower) continue;
        running.add(service);
        const last = this.#published.get(service);
        if (last !== undefined && now - last < publishPeriodMs(spec.intervalMs)) continue;
        const v: Record<string, number[]> = {};
        for (const version of compiled.versions) {
          const stats = this.#windows.readWindow(service, version.name, spec.intervalMs);
          if (stats !== null) v[version.name] = [stats.requests, stats.errors, ...stats.buckets];
        }
        const value: PublishedWindows = { at: now, spanMs: spec.intervalMs, v };
        await this.#board.publish(service, JSON.stringify(value));
        this.#published.set(service, now);
      }
      for (const service of [...this.#published.keys()]) {
        if (running.has(service)) continue;
        this.#published.delete(service);
        await this.#board.remove(service);
      }
    } catch (err) {
      this.#log.debug({ err }, 'could not publish the analysis windows; trying again at the next period');
    } finally {
      this.#busy = false;
    }
  }
}

function parse(text: string): PublishedWindows | null {
  try {
    const value = JSON.parse(text) as Partial<PublishedWindows>;
    if (typeof value.at !== 'number' || typeof value.spanMs !== 'number' || typeof value.v !== 'object' || value.v === null) return null;
    return value as PublishedWindows;
  } catch {
    return null;
  }
}

/** The summed window of `versions` in a replica's value (every veer's windows have DURATION_BUCKETS; another shape is skipped). */
function statsOf(published: PublishedWindows, versions: readonly string[]): WindowStats | null {
  const list: WindowStats[] = [];
  for (const name of versions) {
    const counts = published.v[name];
    if (counts === undefined || counts.length < 3) continue;
    const buckets = counts.slice(2);
    if (buckets.length !== DURATION_BUCKETS.length + 1) continue;
    const requests = counts[0]!;
    const errors = counts[1]!;
    list.push({ spanMs: published.spanMs, requests, errors, errorRatio: requests === 0 ? 0 : errors / requests, bounds: DURATION_BUCKETS, buckets });
  }
  return mergeStats(list);
}

function shareOf(replica: string, leader: boolean, canary: WindowStats | null, stable: WindowStats | null): ReplicaShare {
  return { replica, leader, canary: canary?.requests ?? 0, stable: stable?.requests ?? 0, canaryErrors: canary?.errors ?? 0 };
}
