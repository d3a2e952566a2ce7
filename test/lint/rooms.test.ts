// The rooms rule: the one table of allowed imports (lint/rooms.js) as the
// lint enforces it, on made-up files in each room and on the real src/.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ESLint } from 'eslint';
import { ALLOWED, ROOMS, TYPES_ONLY, checkImport, reachableFrom } from '../../lint/rooms.js';
import { underCi } from '../helpers/system-packages.ts';
import { ROOT } from '../helpers/veer.ts';

const SRC = join(ROOT, 'src');
const fileIn = (room: string, name = 'x.ts') => join(SRC, room, name);

/**
 * The import arrows of STYLE.md's "Rooms" section ("Imports point one way: config <- table <- ...;
 * forwarder -> table; ..."), as room -> rooms it may import.
 */
function styleArrows(): Record<string, string[]> {
  const style = readFileSync(STYLE_MD, 'utf8').replace(/\s+/g, ' ');
  const start = style.indexOf('Imports point one way:');
  const end = style.indexOf('One table of allowed imports', start);
  if (start === -1 || end === -1) throw new Error('STYLE.md no longer states the import arrows');
  const edges: Record<string, string[]> = {};
  const add = (from: string, to: string) => (edges[from] ??= []).push(to);
  for (const part of style.slice(start + 'Imports point one way:'.length, end).split(';')) {
    const text = part.trim();
    if (text.includes('<-')) {
      const chain = text.split('<-').map((r) => r.trim());
      for (let i = 1; i < chain.length; i++) add(chain[i]!, chain[i - 1]!);
    } else if (text.includes('->')) {
      const [from, to] = text.split('->').map((r) => r.trim());
      for (const target of to!.split(/,| and /).map((r) => r.trim())) {
        const room = /^([a-z]+(?:\.ts)?)/.exec(target)?.[1];
        if (room !== undefined && room !== 'the') add(from!, room);
      }
    }
  }
  return edges;
}

/** The team's STYLE.md, in shared/ beside the checkout (CI lays a copy there too). */
const STYLE_MD = join(ROOT, '..', 'shared', 'STYLE.md');
// Outside CI a checkout without shared/ beside it skips this one test; under CI its absence fails.
const styleMissing = existsSync(STYLE_MD) ? false : underCi() ? false : `${STYLE_MD} is not beside this checkout`;

t.test('the table is the plan of STYLE.md', { skip: styleMissing }, async (t) => {
  const arrows = styleArrows();
  for (const room of ROOMS) t.same([...(ALLOWED[room] ?? [])].sort(), (arrows[room] ?? []).sort(), `${room}: the same rooms as STYLE.md's arrows`);
  for (const room of Object.keys(arrows)) t.ok(ROOMS.includes(room), `STYLE.md's ${room} is a room of the table`);
  t.same(TYPES_ONLY, { cli: ['admin'] }, "cli reads only the admin API's answer types");
  t.same([...reachableFrom('dataplane')].sort(), ['config', 'forwarder', 'metrics', 'router', 'table']);
  t.same([...reachableFrom('metrics')], [], 'metrics depends on nothing');
});

t.test('checkImport: values along the table, types along what it reaches, index.ts only', async (t) => {
  t.equal(checkImport(SRC, fileIn('router'), '../table/index.ts', false), null, 'router -> table');
  t.equal(checkImport(SRC, fileIn('dataplane'), '../table/index.ts', true), null, 'dataplane names table types');
  t.match(checkImport(SRC, fileIn('dataplane'), '../table/index.ts', false), /may not import values from src\/table/, 'but calls nothing in it');
  t.match(checkImport(SRC, fileIn('forwarder'), '../config/index.ts', false), /src\/forwarder may not import values from src\/config/);
  t.match(checkImport(SRC, fileIn('metrics'), '../forwarder/index.ts', true), /src\/metrics may not import types from src\/forwarder/);
  t.match(checkImport(SRC, fileIn('state'), '../metrics/index.ts', false), /src\/state may not import/);
  t.match(checkImport(SRC, fileIn('cli'), '../state/index.ts', true), /src\/cli may not import types from src\/state/);
  t.equal(checkImport(SRC, fileIn('cli'), '../admin/index.ts', true), null, "cli reads the admin API's answer types");
  t.match(checkImport(SRC, fileIn('cli'), '../admin/index.ts', false), /src\/cli may not import values from src\/admin/);
  t.equal(checkImport(SRC, fileIn('cli'), '../main.ts', false), null);
  t.match(checkImport(SRC, fileIn('admin'), '../main.ts', false), /only cli does/);
  t.match(checkImport(SRC, fileIn('admin'), '../state/store.ts', true), /only through its index.ts/);
  t.equal(checkImport(SRC, fileIn('state', 'etcd/store.ts'), '../store.ts', false), null, 'a sub-folder imports its own room freely');
  t.equal(checkImport(SRC, fileIn('state', 'etcd/store.ts'), '../../log/index.ts', false), null, 'log/ from anywhere');
  t.equal(checkImport(SRC, fileIn('router'), '../errors.ts', false), null, 'errors.ts from anywhere');
  t.equal(checkImport(SRC, join(SRC, 'main.ts'), './router/index.ts', false), null, 'main.ts wires every room');
  t.equal(checkImport(SRC, fileIn('router'), 'node:http', false), null, 'packages are not rooms');
});

t.test('the lint rule reports a room that steps outside the table, and src/ is clean', async (t) => {
  const eslint = new ESLint({ cwd: ROOT });
  const lint = async (room: string, code: string) => {
    const [result] = await eslint.lintText(code, { filePath: fileIn(room, 'probe.ts') });
    return result!.messages.filter((m) => m.ruleId === 'rooms/imports').map((m) => m.message);
  };
  t.same(await lint('router', "import { compileTable } from '../table/index.ts';\nexport const c = compileTable;\n"), []);
  t.match(await lint('forwarder', "import { parseDuration } from '../config/index.ts';\nexport const p = parseDuration;\n"), [/src\/forwarder may not import values from src\/config/]);
  t.match(await lint('cli', "export { RuntimeState } from '../state/index.ts';\n"), [/src\/cli may not import values from src\/state/], 're-exports are imports too');
  t.match(await lint('rollout', "export async function f() { return import('../dataplane/index.ts'); }\n"), [/src\/rollout may not import values from src\/dataplane/], 'and so are dynamic imports');
  const results = await eslint.lintFiles([join(SRC, '**/*.ts')]);
  const broken = results.flatMap((r) => r.messages.filter((m) => m.ruleId === 'rooms/imports').map((m) => `${r.filePath}:${m.line} ${m.message}`));
  t.same(broken, [], 'every room of src/ keeps to the table');
  t.ok(results.length > 50, `${results.length} files of src/ checked`);
  for (const room of ROOMS) t.ok(results.some((r) => r.filePath.startsWith(join(SRC, room))), `src/${room} exists and was checked`);
});
