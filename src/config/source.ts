// Where the config comes from. A source only reads documents and says "they
// may have changed"; the consumer (state/config-reloader.ts) skips unchanged
// text, coalesces bursts, compiles and swaps. Today the one source is the
// YAML file, with the Kubernetes manifests its `include:` names
// (kubernetes/include.ts), read and watched beside it.

import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { deepFreeze, loadConfigFile, locatorOf, parseConfigText, type ConfigLoadResult, type Locate } from './load.ts';
import type { IncludedManifests } from './kubernetes/index.ts';
import type { ReadAnswer } from './read-worker.ts';
import type { Config, ServiceConfig } from './schema.ts';
import { watchConfigFile, type ConfigWatcher } from './watch.ts';

/** Texts at least this long are parsed in a worker thread on reload: 1 MB of YAML takes about 100 ms of CPU. */
const READ_IN_WORKER_CHARS = 256 * 1024;

/** The worker's entry, beside this file (.ts from the sources, .js when built). */
const READ_WORKER = new URL(`./read-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/** Config documents, read on demand, with news of changes. */
export interface ConfigSource {
  /** What it reads, for logs (a file path). */
  readonly description: string;
  /** Reads, validates and returns the config now (or every issue found); `offThread`: keep the main thread free (a reload). */
  read(options?: { readonly offThread?: boolean }): Promise<ConfigLoadResult>;
  /** Calls `onChange` (debounced) whenever what `read` returns may have changed; `ready` once watching. */
  watch(onChange: () => void): ConfigWatcher;
}

/**
 * The YAML config file, watched through its directory (editors and
 * ConfigMaps replace files by rename). A large file is read in a worker
 * thread, and a service whose config did not change keeps the object it had
 * in the last config read: compile reuses what it compiled from that object.
 */
export class FileConfigSource implements ConfigSource {
  /** The absolute path. */
  readonly path: string;
  readonly description: string;
  /** The path as the user gave it: messages name the file as they typed it. */
  readonly #given: string;
  readonly #env: NodeJS.ProcessEnv;
  #lastRead: { readonly text: string; readonly result: ConfigLoadResult } | null = null;
  /** The services of the last good read, and their JSON, by position. */
  #last: { readonly json: readonly string[]; readonly services: readonly ServiceConfig[] } | null = null;
  /** `include:`'s manifests, with the last good copy of each object. */
  #included: IncludedManifests | null = null;
  /** The running watch's listener and its watcher of included paths (re-made when `include:` changes). */
  #watching: { readonly onChange: () => void; included: { paths: string; watcher: ConfigWatcher } | null } | null = null;

  constructor(path: string, env: NodeJS.ProcessEnv = process.env) {
    this.path = resolve(path);
    this.description = this.path;
    this.#given = path;
    this.#env = env;
  }

  /**
   * Reads the file. With `offThread` (reloads, while requests are in flight)
   * a large file is parsed in a worker thread; at start, inline. The same
   * text as last time gives the last result without parsing it again.
   */
  async read(options: { readonly offThread?: boolean } = {}): Promise<ConfigLoadResult> {
    const result = await this.#readFile(options);
    if (!result.ok || result.config.include === undefined) {
      this.#watchIncluded([]);
      return result;
    }
    // Included manifests are read every time: their files change on their own.
    // Loaded on first use: a config without include: never loads the Kubernetes translators.
    const k8s = await import('./kubernetes/index.ts');
    this.#watchIncludedWith = k8s.watchIncluded;
    const included = await (this.#included ??= new k8s.IncludedManifests()).read(result.config, dirname(this.path));
    this.#watchIncluded(result.config.include.map((p) => resolve(dirname(this.path), p)));
    const config = deepFreeze({ ...result.config, services: [...result.config.services, ...included.services] }) as Config;
    return { ...result, config, text: `${result.text}\n# include ${included.digest}`, warnings: included.warnings };
  }

  async #readFile(options: { readonly offThread?: boolean }): Promise<ConfigLoadResult> {
    let text: string;
    try {
      text = await readFile(this.#given, 'utf8');
    } catch {
      return loadConfigFile(this.#given, this.#env); // says why it cannot be read
    }
    if (this.#lastRead !== null && this.#lastRead.text === text) return this.#lastRead.result;
    const result = options.offThread === true && text.length >= READ_IN_WORKER_CHARS ? await this.#parseInWorker(text) : this.#parseInline(text);
    this.#lastRead = { text, result };
    return result;
  }

  #parseInline(text: string): ConfigLoadResult {
    const loaded = parseConfigText(text, this.#env);
    if (!loaded.ok) return loaded;
    const { services, ...top } = loaded.config;
    return { ...loaded, config: this.#keepUnchanged(top, services.map((s) => JSON.stringify(s)), services) };
  }

  async #parseInWorker(text: string): Promise<ConfigLoadResult> {
    const answer = await parseInWorker(text, this.#env);
    if (!answer.ok) return { ok: false, issues: answer.issues, text };
    const config = this.#keepUnchanged(JSON.parse(answer.top) as Omit<Config, 'services'>, answer.services, null);
    let located: Locate | null = null;
    const locate: Locate = (path, atKey) => (located ??= locatorOf(text))(path, atKey);
    return { ok: true, config, text, locate };
  }

  /** The config with each service that reads as before replaced by the object it had then (`parsed`: this read's own objects, if any). */
  #keepUnchanged(top: Omit<Config, 'services'>, json: readonly string[], parsed: readonly ServiceConfig[] | null): Config {
    const last = this.#last;
    const services = json.map((text, i) => (last !== null && last.json[i] === text ? last.services[i]! : (parsed?.[i] ?? (deepFreeze(JSON.parse(text)) as ServiceConfig))));
    this.#last = { json, services };
    return deepFreeze({ ...top, services }) as Config;
  }

  watch(onChange: () => void): ConfigWatcher {
    const file = watchConfigFile(this.path, onChange);
    const watching: { readonly onChange: () => void; included: { paths: string; watcher: ConfigWatcher } | null } = { onChange, included: null };
    this.#watching = watching;
    if (this.#lastIncluded.length > 0) this.#watchIncluded(this.#lastIncluded);
    return {
      ready: Promise.all([file.ready, watching.included?.watcher.ready]).then(() => undefined),
      close: async () => {
        if (this.#watching === watching) this.#watching = null;
        await Promise.all([file.close(), watching.included?.watcher.close()]);
      },
    };
  }

  /** kubernetes/'s watchIncluded, once loaded. */
  #watchIncludedWith: ((paths: readonly string[], onChange: () => void) => ConfigWatcher) | null = null;

  /** The included paths of the last read. */
  #lastIncluded: readonly string[] = [];

  /** Keeps the watcher of included paths on the paths of the last read. */
  #watchIncluded(paths: readonly string[]): void {
    this.#lastIncluded = paths;
    const watching = this.#watching;
    if (watching === null) return;
    const key = JSON.stringify(paths);
    if (watching.included?.paths === key) return;
    void watching.included?.watcher.close();
    watching.included = paths.length === 0 || this.#watchIncludedWith === null ? null : { paths: key, watcher: this.#watchIncludedWith(paths, watching.onChange) };
  }
}

/** Parses config text in a worker thread. */
function parseInWorker(text: string, env: NodeJS.ProcessEnv): Promise<ReadAnswer> {
  return new Promise((resolveAnswer, reject) => {
    const worker = new Worker(READ_WORKER, { workerData: { text, env } });
    worker.once('message', (answer: ReadAnswer) => {
      resolveAnswer(answer);
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => code !== 0 && reject(new Error(`the config reader exited with ${code}`)));
  });
}

/** Settings read only at start: a reload that changes them is applied except for them, with a warning naming each. */
const RESTART_ONLY = ['listen', 'admin.listen', 'workers', 'state', 'log.access', 'tls', 'h2c', 'tracing'] as const;

/** The restart-only settings (RESTART_ONLY) that differ between two configs, by their config path. */
export function restartOnlyChanges(before: Config, after: Config): string[] {
  const read = (config: Config, key: (typeof RESTART_ONLY)[number]): unknown =>
    key.split('.').reduce<unknown>((value, name) => (value as Record<string, unknown> | undefined)?.[name], config);
  return RESTART_ONLY.filter((key) => JSON.stringify(read(before, key)) !== JSON.stringify(read(after, key)));
}
