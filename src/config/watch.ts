// The watcher half of hot reload: it only says "the config may have
// changed". It watches the file's directory, not the file, because editors
// and Kubernetes ConfigMaps replace files by rename (a ConfigMap swaps its
// `..data` symlink), which a watch on the old inode would miss.

import { basename, dirname, resolve } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';

/** A running watcher; `close()` stops it. */
export interface ConfigWatcher {
  /** Resolves once the initial scan is done: from then on every change is seen. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * Calls `onChange` (debounced by `debounceMs`) after anything in the config
 * file's directory that could change what reading the file returns.
 */
export function watchConfigFile(file: string, onChange: () => void, debounceMs = 100): ConfigWatcher {
  const path = resolve(file);
  const dir = dirname(path);
  const name = basename(path);
  const watcher: FSWatcher = watch(dir, {
    ignoreInitial: true,
    depth: 0,
    // Only the file itself and ConfigMap-style `..data` links matter.
    ignored: (p: string) => p !== dir && basename(p) !== name && !basename(p).startsWith('..'),
  });
  return debounceEvents(watcher, onChange, debounceMs);
}

/** One `onChange` per burst of a watcher's events (and errors), `debounceMs` after the last. */
export function debounceEvents(watcher: FSWatcher, onChange: () => void, debounceMs: number): ConfigWatcher {
  let timer: NodeJS.Timeout | null = null;
  const fire = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      onChange();
    }, debounceMs);
  };
  watcher.on('all', fire);
  watcher.on('error', () => fire());
  const ready = new Promise<void>((resolveReady) => watcher.once('ready', () => resolveReady()));
  return {
    ready,
    async close() {
      if (timer) clearTimeout(timer);
      await watcher.close();
    },
  };
}
