// The file store: one JSON document, replaced atomically on every save.
//
//   save(doc):  write  DIR/.NAME.PID.N.tmp   (O_EXCL, mode 0600)
//               fsync  the temp file          data is on disk
//               rename temp -> NAME           readers see old or new, never half
//               fsync  DIR                    the rename itself is on disk
//
// A crash at any point leaves either the old document or the new one; a
// stray temp file is harmless and never read.

import { constants } from 'node:fs';
import { access, open, readFile, rename, mkdir, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { ALWAYS_LEADER } from './leadership.ts';
import { PersistedStateSchema, type PersistedState } from './records.ts';
import { StateLoadError, type Leadership, type ReplicaView, type StateStore, type StoreHealth } from './store.ts';

let tempCounter = 0;

/** Keeps the state document in one file, written with temp file + fsync + rename. */
export class FileStore implements StateStore {
  readonly path: string;
  readonly description: string;
  /** The only replica leads. */
  readonly leadership: Leadership = ALWAYS_LEADER;

  constructor(path: string) {
    this.path = path;
    this.description = `file ${path}`;
  }

  async load(): Promise<PersistedState | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new StateLoadError('unreadable', this.path, (err as Error).message, { cause: err });
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new StateLoadError('corrupt', this.path, `not valid JSON (${(err as Error).message})`, { cause: err });
    }
    if (!Value.Check(PersistedStateSchema, doc)) {
      const first = Value.Errors(PersistedStateSchema, doc).First();
      const where = first ? `${first.path || '/'}: ${first.message}` : 'unexpected shape';
      throw new StateLoadError('corrupt', this.path, `not a veer state document (${where})`);
    }
    return doc;
  }

  async health(): Promise<StoreHealth> {
    const probe = await this.check();
    return probe.ok ? { kind: this.description, status: 'ok' } : { kind: this.description, status: 'failing', error: probe.error };
  }

  /** Nobody else writes the file while veer runs: nothing to watch. */
  watch(): void {}

  latest(): null {
    return null;
  }

  markApplied(): void {}

  replicas(): ReplicaView | null {
    return null;
  }

  /** The one replica serves a change once it is saved. */
  async whenApplied(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {}

  /** Whether a save could succeed now; the error when not. */
  async check(): Promise<{ ok: true } | { ok: false; error: string }> {
    // The directory must exist (or be creatable on first save) and be writable.
    let dir = dirname(this.path);
    for (let i = 0; i < 64; i++) {
      try {
        await access(dir, constants.W_OK | constants.X_OK);
        return { ok: true };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(dir) === dir) return { ok: false, error: (err as Error).message };
        dir = dirname(dir);
      }
    }
    return { ok: false, error: `cannot find a parent directory of ${this.path}` };
  }

  async save(state: PersistedState): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true });
    const temp = join(dir, `.${basename(this.path)}.${process.pid}.${++tempCounter}.tmp`);
    const file = await open(temp, 'wx', 0o600);
    try {
      await file.writeFile(`${JSON.stringify(state, null, 2)}\n`);
      await file.sync();
    } catch (err) {
      await file.close();
      await unlink(temp).catch(() => {});
      throw err;
    }
    await file.close();
    try {
      await rename(temp, this.path);
    } catch (err) {
      await unlink(temp).catch(() => {});
      throw err;
    }
    const dirHandle = await open(dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  }
}
