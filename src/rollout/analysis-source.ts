// Where an analysis check's numbers come from. A source may have to ask
// other processes or servers (every replica, a Prometheus), so reading is
// asynchronous; the engine awaits it and a person acting meanwhile wins
// (the engine drops a decision made on a rollout that changed under it).
//
// LocalWindowsSource reads this process's per-version windows: its own
// traffic, or with workers the windows they report to it. With several
// replicas on etcd, FleetWindows (fleet-windows.ts) adds every other live
// replica's.

import type { WindowStats } from '../metrics/index.ts';
import type { ReplicaShare } from '../state/index.ts';
import { mergeStats } from './analysis.ts';

/** What one check asks for: the canary's window and the stable versions' (merged), over `spanMs`. */
export interface AnalysisQuery {
  readonly service: string;
  readonly canary: string;
  /** The other versions that get split traffic. */
  readonly stables: readonly string[];
  readonly spanMs: number;
}

/** The canary's and the stable versions' traffic over the query's span; null where there is none to read. */
export interface AnalysisWindows {
  readonly canary: WindowStats | null;
  readonly stable: WindowStats | null;
  /** What each replica contributed, when the windows are the fleet's (fleet-windows.ts). */
  readonly replicas?: readonly ReplicaShare[];
}

/** A provider of the numbers a check judges. */
export interface AnalysisSource {
  read(query: AnalysisQuery): Promise<AnalysisWindows>;
}

/** Per-version sliding windows of one process (the metrics recorder). */
export interface VersionStatsSource {
  /** The last `spanMs` of one version's traffic; null when the version is unknown. */
  readWindow(service: string, version: string, spanMs: number): WindowStats | null;
}

/** Reads the windows this process keeps. */
export class LocalWindowsSource implements AnalysisSource {
  readonly #windows: VersionStatsSource;

  constructor(windows: VersionStatsSource) {
    this.#windows = windows;
  }

  async read(query: AnalysisQuery): Promise<AnalysisWindows> {
    const canary = this.#windows.readWindow(query.service, query.canary, query.spanMs);
    const stables = query.stables.map((v) => this.#windows.readWindow(query.service, v, query.spanMs)).filter((s) => s !== null);
    return { canary, stable: mergeStats(stables) };
  }
}
