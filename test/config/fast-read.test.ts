// The fast reader must give exactly what the full reader gives for every
// valid config, and step aside for everything else.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { locateIssues, parseConfigText } from '../../src/config/index.ts';
import { readFast } from '../../src/config/fast-read.ts';
import { compileTable } from '../../src/table/index.ts';
import { FIXTURES } from '../helpers/fixtures.ts';
import { ROOT } from '../helpers/veer.ts';

const ENV = { VEER_ADMIN_TOKEN: 's3cret', WORKERS: '2', SHOP_V2: 'http://127.0.0.1:3002', HOOK_TOKEN: 'x', UNSET_BUT_EMPTY: '' };

const validFiles = [
  ...readdirSync(join(FIXTURES, 'valid')).map((f) => join(FIXTURES, 'valid', f)),
  join(ROOT, 'config', 'veer.yaml'),
];

t.test('every valid config reads the same through both readers', async (t) => {
  for (const file of validFiles) {
    const text = readFileSync(file, 'utf8');
    const fast = parseConfigText(text, ENV);
    const full = parseConfigText(text, ENV, { fast: false });
    t.equal(fast.ok, full.ok, `${file}: same verdict`);
    if (fast.ok && full.ok) t.same(fast.config, full.config, `${file}: same config`);
  }
});

t.test('the fast reader takes plain configs and steps aside for anchors, aliases, tags, binary numbers, duplicates and unset variables', async (t) => {
  const plain = 'services:\n  - name: a\n    match: { hosts: ["*.example.com"] }\n    versions: [{ name: v1, upstream: "http://127.0.0.1:1" }]\n';
  t.not(readFast(plain, {}, []), null, 'a quoted wildcard host is fine');
  const sub: string[] = [];
  t.match(readFast('workers: ${W}\nlisten: "0.0.0.0:${P:-8080}"\n', { W: '2' }, sub), { workers: '2', listen: '0.0.0.0:8080' });
  t.same(sub, ['/workers'], 'a whole reference is noted for coercion');
  for (const [what, text] of [
    ['an anchor and an alias', 'a: &x 1\nb: *x\n'],
    ['a tag', 'a: !!str 1\n'],
    ['a directive', '%YAML 1.2\n---\na: 1\n'],
    ['a binary number', 'workers: 0b10\n'],
    ['a duplicate key', 'a: 1\na: 2\n'],
    ['a syntax error', 'a: [1, 2\n'],
    ['an unset variable', 'a: ${NOPE}\n'],
    ['a malformed reference', 'a: ${oops\n'],
  ] as const) {
    t.equal(readFast(text, {}, []), null, `${what}: the full reader runs`);
  }
});

t.test('a valid config read fast still places compile problems in the file', async (t) => {
  const text = `services:
  - name: shop
    versions:
      - { name: v1, upstream: "http://127.0.0.1:1" }
    split:
      weights: { v1: 100, v3: 0 }
`;
  const loaded = parseConfigText(text, {});
  if (!loaded.ok) throw new Error('expected the config to load');
  const compiled = compileTable(loaded.config);
  if (compiled.ok) throw new Error('expected a compile issue');
  const [issue] = locateIssues(compiled.issues, loaded.locate);
  t.match(issue, { code: 'unknown_version', path: 'services[0].split.weights.v3', line: 6, column: 27 });
  const full = parseConfigText(text, {}, { fast: false });
  if (!full.ok) throw new Error('expected the config to load');
  t.same(locateIssues(compiled.issues, full.locate), [issue], 'the same place as the full reader gives');
});

t.test('a config with a problem is reported by the full reader, with its place', async (t) => {
  const loaded = parseConfigText('listen: nowhere\nservices:\n  - name: a\n    versions: [{ name: v1, upstream: "http://127.0.0.1:1" }]\n', {});
  t.equal(loaded.ok, false);
  if (!loaded.ok) t.match(loaded.issues, [{ code: 'invalid_listen', path: 'listen', line: 1 }]);
});
