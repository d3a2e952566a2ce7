// Where the config comes from. A source only reads documents and says "they
// may have changed"; the consumer (state/config-reloader.ts) skips unchanged
// text, coalesces bursts, compiles and swaps. Today the one source is the
// YAML file; folders of Kubernetes manifests plug in beside it.

import { resolve } from 'node:path';
import { loadConfigFile, type ConfigLoadResult } from './load.ts';
import type { Config } from './schema.ts';
import { watchConfigFile, type ConfigWatcher } from './watch.ts';

/** Config documents, read on demand, with news of changes. */
export interface ConfigSource {
  /** What it reads, for logs (a file path). */
  readonly description: string;
  /** Reads, validates and returns the config now (or every issue found). */
  read(): Promise<ConfigLoadResult>;
  /** Calls `onChange` (debounced) whenever what `read` returns may have changed; `ready` once watching. */
  watch(onChange: () => void): ConfigWatcher;
}

/** The YAML config file, watched through its directory (editors and ConfigMaps replace files by rename). */
export class FileConfigSource implements ConfigSource {
  /** The absolute path. */
  readonly path: string;
  readonly description: string;
  /** The path as the user gave it: messages name the file as they typed it. */
  readonly #given: string;
  readonly #env: NodeJS.ProcessEnv;

  constructor(path: string, env: NodeJS.ProcessEnv = process.env) {
    this.path = resolve(path);
    this.description = this.path;
    this.#given = path;
    this.#env = env;
  }

  read(): Promise<ConfigLoadResult> {
    return loadConfigFile(this.#given, this.#env);
  }

  watch(onChange: () => void): ConfigWatcher {
    return watchConfigFile(this.path, onChange);
  }
}

/** Settings read only at start: a reload that changes them is applied except for them, with a warning naming each. */
const RESTART_ONLY = ['listen', 'admin.listen', 'workers', 'state'] as const;

/** The restart-only settings (RESTART_ONLY) that differ between two configs, by their config path. */
export function restartOnlyChanges(before: Config, after: Config): string[] {
  const read = (config: Config, key: (typeof RESTART_ONLY)[number]): unknown => (key === 'admin.listen' ? config.admin.listen : config[key]);
  return RESTART_ONLY.filter((key) => JSON.stringify(read(before, key)) !== JSON.stringify(read(after, key)));
}
