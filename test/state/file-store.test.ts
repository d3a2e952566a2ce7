// The file store: atomic replace, round trip, and refusing (never
// overwriting) a file it cannot trust.

import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FileStore, StateLoadError, emptyState, type PersistedState } from '../../src/state/index.ts';

const dir = () => mkdtempSync(join(tmpdir(), 'veer-store-'));

t.test('a missing file loads as null; a save creates directories and round-trips', async (t) => {
  const path = join(dir(), 'nested', 'var', 'state.json');
  const store = new FileStore(path);
  t.equal(await store.load(), null);
  t.same(await store.check(), { ok: true }, 'a missing directory that can be created is fine');
  const doc: PersistedState = { ...emptyState('2024-01-01T00:00:00.000Z'), services: { shop: { weights: { v1: 1, v2: 3 } } } };
  await store.save(doc);
  t.same(await store.load(), doc);
  await store.save({ ...doc, services: {} });
  t.same((await store.load())!.services, {});
  t.same(
    readdirSync(join(path, '..')).filter((f) => f.endsWith('.tmp')),
    [],
    'no temp files are left behind',
  );
});

t.test('many saves in a row always leave a whole document', async (t) => {
  const path = join(dir(), 'state.json');
  const store = new FileStore(path);
  for (let i = 0; i < 20; i++) {
    await store.save({ ...emptyState('2024-01-01T00:00:00.000Z'), services: { s: { weights: { a: i, b: 1 } } } });
    t.equal(JSON.parse(readFileSync(path, 'utf8')).services.s.weights.a, i);
  }
});

t.test('a corrupt file is refused with its path, and left as it was', async (t) => {
  const cases: Record<string, string> = {
    'not JSON': '{"format": "veer-state/1", "services": {',
    'wrong format tag': JSON.stringify({ format: 'other/9', updatedAt: 'x', services: {}, history: [] }),
    'wrong shape': JSON.stringify({ format: 'veer-state/1', updatedAt: 'x', services: { s: { weights: { a: 'ten' } } }, history: [] }),
    'negative weight': JSON.stringify({ format: 'veer-state/1', updatedAt: 'x', services: { s: { weights: { a: -1 } } }, history: [] }),
    empty: '',
  };
  for (const [name, text] of Object.entries(cases)) {
    const path = join(dir(), 'state.json');
    writeFileSync(path, text);
    const err = await new FileStore(path).load().then(
      () => null,
      (e: unknown) => e,
    );
    t.type(err, StateLoadError, name);
    t.equal((err as StateLoadError).kind, 'corrupt', name);
    t.match((err as Error).message, path, `${name}: the message names the file`);
    t.equal(readFileSync(path, 'utf8'), text, `${name}: the file is untouched`);
  }
});

t.test('a directory in place of the file is unreadable, and a save under a file fails', async (t) => {
  const d = dir();
  const err = await new FileStore(d).load().catch((e: unknown) => e);
  t.type(err, StateLoadError);
  t.equal((err as StateLoadError).kind, 'unreadable');
  const file = join(d, 'plain');
  writeFileSync(file, 'x');
  const store = new FileStore(join(file, 'state.json'));
  await t.rejects(store.save(emptyState('2024-01-01T00:00:00.000Z')));
  t.equal((await store.check()).ok, false);
});
