// The one writer of the current route table. A config change compiles a
// whole new table; a weight change recompiles only the services it names
// (reweighTable) and shares the rest. Either way the new table is published
// with one reference assignment; a request reads `table` once and uses only
// that table to the end.
//
//   command:  preview(changes) ──> (save to the store) ──> publish(candidate)
//                  one compile                               no compile, unless a
//                                                            reload slipped in between

import type { Config } from '../config/index.ts';
import { compileTable, reweighTable, type CompileResult, type RouteTable, type RuntimeWeights, type WeightChanges } from '../table/index.ts';

/** What a publish changed: the whole config, or the runtime weights of some services. */
export type TableChange = { readonly kind: 'config' } | { readonly kind: 'weights'; readonly changes: WeightChanges };

/** Called after every publish. */
export type TableListener = (table: RouteTable, change: TableChange) => void;

/** Holds the published table and publishes new ones. */
export class TablePublisher {
  #table: RouteTable | null = null;
  readonly #listeners: TableListener[] = [];

  /** The published table; throws before the first publish. */
  get table(): RouteTable {
    if (this.#table === null) throw new Error('no route table published yet');
    return this.#table;
  }

  /** True once a table has been published. */
  get ready(): boolean {
    return this.#table !== null;
  }

  /** The runtime weights the published table was compiled with. */
  get runtimeWeights(): RuntimeWeights {
    return this.#table?.runtimeWeights ?? {};
  }

  /** Registers a listener for published tables. */
  onPublish(listener: TableListener): void {
    this.#listeners.push(listener);
  }

  /**
   * Compiles `config` with the current runtime weights and, when it
   * compiles, publishes it. On failure nothing changes and the issues are
   * returned. (A cluster worker passes the weights and generation its
   * primary published.)
   */
  applyConfig(config: Config, runtimeWeights: RuntimeWeights = this.runtimeWeights, generation = (this.#table?.generation ?? 0) + 1): CompileResult {
    const result = compileTable(config, { generation, runtimeWeights, previous: this.#table ?? undefined });
    if (result.ok) this.#swap(result.table, { kind: 'config' });
    return result;
  }

  /** The published table with `changes` applied, compiled but not published: a dry run whose table `publish` takes. */
  preview(changes: WeightChanges): CompileResult {
    return reweighTable(this.table, changes);
  }

  /**
   * Publishes a table that `preview(changes)` made. When another table was
   * published since (a config reload does not wait for commands), the
   * candidate is stale and `changes` are compiled again onto the current one.
   */
  publish(candidate: RouteTable, changes: WeightChanges): CompileResult {
    const current = this.table;
    if (candidate.generation === current.generation + 1 && candidate.config === current.config) {
      this.#swap(candidate, { kind: 'weights', changes });
      return { ok: true, table: candidate, warnings: [] };
    }
    return this.publishWeights(changes);
  }

  /** Compiles `changes` onto the published table and publishes the result; on failure nothing changes. */
  publishWeights(changes: WeightChanges): CompileResult {
    const result = reweighTable(this.table, changes);
    if (result.ok) this.#swap(result.table, { kind: 'weights', changes });
    return result;
  }

  #swap(table: RouteTable, change: TableChange): void {
    this.#table = table;
    for (const listener of this.#listeners) listener(table, change);
  }
}
