// The consumer side of hot reload: given "the config may have changed", it
// reads the source, skips identical text, coalesces bursts (one reload at a
// time, at most one queued), validates, compiles and publishes, or keeps the
// last good table and reports every error.

import { formatConfigPath, locateIssues, type Config, type ConfigIssue, type ConfigSource } from '../config/index.ts';
import type { Logger } from '../log/index.ts';
import type { TablePublisher } from './table-publisher.ts';

/** Counts of reload outcomes, for /readyz and metrics. */
export interface ReloadStats {
  success: number;
  failure: number;
  lastError: { at: string; issues: readonly ConfigIssue[] } | null;
  lastSuccessAt: string | null;
}

/**
 * Result of one reload attempt: `success` (published) and `failure` (the
 * last good config keeps serving) are also veer_config_reloads_total's
 * `result` label; `unchanged` is not counted.
 */
export type ReloadOutcome = 'success' | 'failure' | 'unchanged';

/** Hears every counted reload: the new config on success (with the one it replaced), null on failure. */
export type ReloadListener = (outcome: 'success' | 'failure', config: Config | null, previous: Config) => void;

/** Reloads a config source into a TablePublisher. */
export class ConfigReloader {
  readonly stats: ReloadStats = { success: 0, failure: 0, lastError: null, lastSuccessAt: null };
  readonly #source: ConfigSource;
  readonly #publisher: TablePublisher;
  readonly #log: Logger;
  #lastText: string;
  #running: Promise<ReloadOutcome> | null = null;
  #queued: Promise<ReloadOutcome> | null = null;
  readonly #listeners: ReloadListener[] = [];
  readonly #exclusive: <T>(task: () => Promise<T>) => Promise<T>;

  /**
   * `exclusive` runs the publish between state commands (RuntimeState.exclusive),
   * so no reload lands between a command's compile and its publish.
   */
  constructor(source: ConfigSource, publisher: TablePublisher, log: Logger, initialText: string, exclusive: <T>(task: () => Promise<T>) => Promise<T> = (task) => task()) {
    this.#source = source;
    this.#publisher = publisher;
    this.#log = log;
    this.#lastText = initialText;
    this.#exclusive = exclusive;
  }

  /** Adds a listener called with each reload's result (not for unchanged text); listeners run in the order added. */
  onResult(listener: ReloadListener): void {
    this.#listeners.push(listener);
  }

  /** Requests a reload; concurrent requests coalesce into at most one more run. */
  reload(reason: string): Promise<ReloadOutcome> {
    if (this.#running === null) {
      this.#running = this.#run(reason).finally(() => {
        this.#running = null;
      });
      return this.#running;
    }
    this.#queued ??= this.#running.then(() => {
      this.#queued = null;
      return this.reload(reason);
    });
    return this.#queued;
  }

  async #run(reason: string): Promise<ReloadOutcome> {
    // Requests are in flight: a large file is read off the main thread.
    const loaded = await this.#source.read({ offThread: true });
    if (loaded.text !== '' && loaded.text === this.#lastText) return 'unchanged';
    if (!loaded.ok) return this.#reject(reason, loaded.issues, loaded.text);
    const previous = this.#publisher.table.config;
    const compiled = await this.#exclusive(async () => this.#publisher.applyConfig(loaded.config));
    if (!compiled.ok) return this.#reject(reason, locateIssues(compiled.issues, loaded.locate), loaded.text);
    this.#lastText = loaded.text;
    this.stats.success += 1;
    this.stats.lastSuccessAt = new Date().toISOString();
    for (const w of compiled.warnings) this.#log.warn({ path: formatConfigPath(w.path), code: w.code }, w.message);
    // Included objects left out (or kept at their last good form): the rest of the config is applied.
    for (const w of loaded.warnings ?? []) this.#log.error({ code: w.code, path: w.path }, `${w.path}: ${w.message}`);
    this.#log.info({ file: this.#source.description, reason, generation: compiled.table.generation, services: compiled.table.services.length }, 'config reloaded');
    for (const listener of this.#listeners) listener('success', loaded.config, previous);
    return 'success';
  }

  #reject(reason: string, issues: readonly ConfigIssue[], text: string): ReloadOutcome {
    // Remember the bad text too, so an unchanged bad file is not re-reported on every event.
    if (text !== '') this.#lastText = text;
    this.stats.failure += 1;
    this.stats.lastError = { at: new Date().toISOString(), issues };
    const file = this.#source.description;
    this.#log.error({ file, reason, errors: issues }, `config reload rejected (${issues.length} error${issues.length === 1 ? '' : 's'}); the last good config keeps serving`);
    for (const i of issues) this.#log.error({ code: i.code }, `${file}:${i.line ?? '?'}:${i.column ?? '?'} ${i.path} ${i.message}`);
    const current = this.#publisher.table.config;
    for (const listener of this.#listeners) listener('failure', null, current);
    return 'failure';
  }
}
