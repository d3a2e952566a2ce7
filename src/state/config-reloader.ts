// The consumer side of hot reload: given "the file may have changed", it
// reads it, skips identical text, coalesces bursts (one reload at a time,
// at most one queued), validates, compiles and publishes, or keeps the last
// good table and reports every error.

import { formatConfigPath, loadConfigFile, locateIssues, type ConfigIssue, type Config } from '../config/index.ts';
import type { Logger } from '../log/index.ts';
import type { RouteState } from './route-state.ts';

/** Counts of reload outcomes, for /readyz and metrics. */
export interface ReloadStats {
  success: number;
  failure: number;
  lastError: { at: string; issues: readonly ConfigIssue[] } | null;
  lastSuccessAt: string | null;
}

/** Result of one reload attempt. */
export type ReloadOutcome = 'applied' | 'unchanged' | 'rejected';

/** Reloads the config file into a RouteState. */
export class ConfigReloader {
  readonly stats: ReloadStats = { success: 0, failure: 0, lastError: null, lastSuccessAt: null };
  readonly #file: string;
  readonly #state: RouteState;
  readonly #log: Logger;
  readonly #env: NodeJS.ProcessEnv;
  #lastText: string;
  #running: Promise<ReloadOutcome> | null = null;
  #queued: Promise<ReloadOutcome> | null = null;
  readonly #onResult: ((outcome: 'success' | 'failure', config: Config | null) => void)[] = [];

  constructor(file: string, state: RouteState, log: Logger, initialText: string, env: NodeJS.ProcessEnv = process.env) {
    this.#file = file;
    this.#state = state;
    this.#log = log;
    this.#lastText = initialText;
    this.#env = env;
  }

  /** Adds a listener called with each reload's result (not for unchanged files); listeners run in the order added. */
  onResult(listener: (outcome: 'success' | 'failure', config: Config | null) => void): void {
    this.#onResult.push(listener);
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
    const loaded = await loadConfigFile(this.#file, this.#env);
    if (loaded.text !== '' && loaded.text === this.#lastText) return 'unchanged';
    if (!loaded.ok) return this.#reject(reason, loaded.issues, loaded.text);
    const compiled = this.#state.applyConfig(loaded.config);
    if (!compiled.ok) {
      return this.#reject(reason, locateIssues(compiled.issues, loaded.locate), loaded.text);
    }
    this.#lastText = loaded.text;
    this.stats.success += 1;
    this.stats.lastSuccessAt = new Date().toISOString();
    for (const w of compiled.warnings) this.#log.warn({ path: formatConfigPath(w.path), code: w.code }, w.message);
    this.#log.info({ file: this.#file, reason, generation: compiled.table.generation, services: compiled.table.services.length }, 'config reloaded');
    for (const listener of this.#onResult) listener('success', loaded.config);
    return 'applied';
  }

  #reject(reason: string, issues: readonly ConfigIssue[], text: string): ReloadOutcome {
    // Remember the bad text too, so an unchanged bad file is not re-reported on every event.
    if (text !== '') this.#lastText = text;
    this.stats.failure += 1;
    this.stats.lastError = { at: new Date().toISOString(), issues };
    this.#log.error({ file: this.#file, reason, errors: issues }, `config reload rejected (${issues.length} error${issues.length === 1 ? '' : 's'}); the last good config keeps serving`);
    for (const i of issues) this.#log.error({ code: i.code }, `${this.#file}:${i.line ?? '?'}:${i.column ?? '?'} ${i.path} ${i.message}`);
    for (const listener of this.#onResult) listener('failure', null);
    return 'rejected';
  }
}
