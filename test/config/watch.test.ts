// The config watcher on a real directory: it is ready only once its first
// scan is done, and from then on sees edits in place, rename replacements and
// ConfigMap-style `..data` swaps, but not other files in the directory.

import { mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { watchConfigFile } from '../../src/config/index.ts';
import { waitFor } from '../helpers/http.ts';

function watched(t: { teardown(fn: () => unknown): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'veer-watch-'));
  const file = join(dir, 'veer.yaml');
  writeFileSync(file, 'a: 1\n');
  let changes = 0;
  const watcher = watchConfigFile(file, () => changes++, 20);
  t.teardown(async () => {
    await watcher.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, file, watcher, changes: () => changes };
}

t.test('an edit right after the watcher is ready is seen, in place or by rename', async (t) => {
  const w = watched(t);
  await w.watcher.ready;
  writeFileSync(w.file, 'a: 2\n');
  t.ok(await waitFor(() => w.changes() === 1, 5000), 'an edit in place');
  await new Promise((resolve) => setTimeout(resolve, 200)); // apart, as edits are
  const tmp = join(w.dir, '.veer.yaml.tmp');
  writeFileSync(tmp, 'a: 3\n');
  renameSync(tmp, w.file);
  t.ok(await waitFor(() => w.changes() >= 2, 5000), 'a file replaced by rename');
});

t.test('other files in the directory are not changes; a ConfigMap ..data swap is', async (t) => {
  const w = watched(t);
  await w.watcher.ready;
  writeFileSync(join(w.dir, 'notes.txt'), 'unrelated\n');
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.equal(w.changes(), 0, 'an unrelated file is ignored');
  mkdirSync(join(w.dir, '..2026_11_24'));
  symlinkSync('..2026_11_24', join(w.dir, '..data_tmp'));
  renameSync(join(w.dir, '..data_tmp'), join(w.dir, '..data'));
  t.ok(await waitFor(() => w.changes() >= 1, 5000), 'the ..data link swap');
});
