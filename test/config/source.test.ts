// The config file source: small files read inline, large ones in a worker
// thread, keeping the objects of services that did not change.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { FileConfigSource, restartOnlyChanges } from '../../src/config/index.ts';
import { compileTable } from '../../src/table/index.ts';

/** A config of `n` services, service `changed` with other weights. */
function many(n: number, changed = -1): string {
  const lines = ['services:'];
  for (let i = 0; i < n; i++) {
    lines.push(`  - name: s${i}
    match: { hosts: [s${i}.example.com] }
    versions: [{ name: v1, upstream: "http://127.0.0.1:1" }, { name: v2, upstream: "http://127.0.0.1:2" }]
    split: { weights: { v1: ${i === changed ? 50 : 90}, v2: ${i === changed ? 50 : 10} }, sticky: { header: x-user-id } }`);
  }
  return `${lines.join('\n')}\n`;
}

t.test('a large file is read in a worker; unchanged services keep their objects, and compile reuses them', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'veer.yaml');
  writeFileSync(file, many(2000));
  const source = new FileConfigSource(file, {});
  const first = await source.read({ offThread: true });
  if (!first.ok) throw new Error('expected the config to load');
  t.equal(first.config.services.length, 2000);
  t.ok(Object.isFrozen(first.config) && Object.isFrozen(first.config.services[0]), 'frozen as the inline reader freezes');

  writeFileSync(file, many(2000, 7));
  const second = await source.read({ offThread: true });
  if (!second.ok) throw new Error('expected the config to load');
  t.equal(second.config.services[0], first.config.services[0], 'an unchanged service is the same object');
  t.not(second.config.services[7], first.config.services[7], 'the changed one is new');
  t.same(second.config.services[7]!.split!.weights, { v1: 50, v2: 50 });

  const before = compileTable(first.config);
  if (!before.ok) throw new Error('expected the config to compile');
  const after = compileTable(second.config, { previous: before.table });
  if (!after.ok) throw new Error('expected the config to compile');
  t.equal(after.table.services[0], before.table.services[0], 'compile takes over the unchanged service');
  t.not(after.table.services[7], before.table.services[7], 'and compiles the changed one');
  t.not(after.table.hosts, before.table.hosts, 'one service replaced: the host index is rebuilt');
  const again = compileTable(second.config, { previous: after.table });
  t.equal(again.ok && again.table.hosts, after.table.hosts, 'nothing changed: the host index is shared');

  writeFileSync(file, `${many(2000)}  - name: bad\n    versions: []\n`);
  const bad = await source.read({ offThread: true });
  t.equal(bad.ok, false, 'a bad large file is refused');
  if (!bad.ok) t.match(bad.issues[0], { path: 'services[2000].versions', line: 8003 }, 'with its place in the file (the line of versions: [])');
});

t.test('read inline (at start), unchanged services keep their objects too', async (t) => {
  const file = join(t.testdir(), 'veer.yaml');
  writeFileSync(file, many(3));
  const source = new FileConfigSource(file, {});
  const first = await source.read();
  writeFileSync(file, many(3, 1));
  const second = await source.read();
  if (!first.ok || !second.ok) throw new Error('expected the config to load');
  t.equal(second.config.services[0], first.config.services[0]);
  t.equal(second.config.services[2], first.config.services[2]);
  t.not(second.config.services[1], first.config.services[1]);
});

t.test('restartOnlyChanges names the keys read only at start', async (t) => {
  const base = { listen: '0.0.0.0:8080', admin: { listen: '127.0.0.1:9901' }, workers: 1, state: { store: 'file', path: 'a' } };
  const next = { ...base, admin: { listen: '127.0.0.1:9902' }, state: { store: 'file', path: 'b' } };
  t.same(restartOnlyChanges(base as never, next as never), ['admin.listen', 'state']);
  t.same(restartOnlyChanges(base as never, base as never), []);
});
