// The one writer of the current route table. A config or weight change
// compiles a whole new table and publishes it with one reference assignment;
// requests read `table` once and use only that table to the end.

import type { Config, ServiceConfig } from '../config/index.ts';
import { compileTable, type CompileResult, type RouteTable, type RuntimeWeights, type UpstreamTarget } from '../table/index.ts';

/** Turns an origin into the forwarder's target (its pool). */
export type BindUpstream = (origin: string, service: ServiceConfig) => UpstreamTarget;

/** Called after every successful publish. */
export type TableListener = (table: RouteTable) => void;

/** Holds the published table and the inputs it was compiled from. */
export class RouteState {
  #table: RouteTable | null = null;
  #generation = 0;
  #runtimeWeights: RuntimeWeights = {};
  readonly #bindUpstream: BindUpstream;
  readonly #listeners: TableListener[] = [];

  constructor(bindUpstream: BindUpstream) {
    this.#bindUpstream = bindUpstream;
  }

  /** The published table; throws before the first publish. */
  get table(): RouteTable {
    if (this.#table === null) throw new Error('no route table published yet');
    return this.#table;
  }

  /** True once a table has been published. */
  get ready(): boolean {
    return this.#table !== null;
  }

  /** Registers a listener for published tables. */
  onPublish(listener: TableListener): void {
    this.#listeners.push(listener);
  }

  /**
   * Compiles `config` with the current runtime weights and, when it compiles,
   * publishes it. On failure nothing changes and the issues are returned.
   */
  applyConfig(config: Config): CompileResult {
    return this.#publish(config, this.#runtimeWeights);
  }

  /** The runtime weights the published table was compiled with. */
  get runtimeWeights(): RuntimeWeights {
    return this.#runtimeWeights;
  }

  /** Compiles the current config with `weights` as the runtime weights, without publishing: a dry run. */
  previewWeights(weights: RuntimeWeights): CompileResult {
    // Binds no pools: the preview only answers whether the weights fit.
    return compileTable(this.table.config, { generation: this.#generation + 1, runtimeWeights: weights });
  }

  /**
   * Compiles the current config with `weights` as the runtime weights and
   * publishes it with one swap; on failure nothing changes. Synchronous, so
   * no config reload can slip between the compile and the swap.
   */
  publishWeights(weights: RuntimeWeights): CompileResult {
    return this.#publish(this.table.config, weights);
  }

  #publish(config: Config, weights: RuntimeWeights): CompileResult {
    const result = compileTable(config, {
      generation: this.#generation + 1,
      runtimeWeights: weights,
      bindUpstream: this.#bindUpstream,
    });
    if (!result.ok) return result;
    this.#generation += 1;
    this.#runtimeWeights = weights;
    this.#table = result.table;
    for (const listener of this.#listeners) listener(result.table);
    return result;
  }
}
