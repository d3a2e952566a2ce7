// Regression: more than 100 YAML alias uses threw an uncaught error; a
// running veer exited on hot reload. Now it is a yaml_syntax issue with its
// place, and the last good config keeps serving.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { request } from 'undici';
import { parseConfigText } from '../../src/config/index.ts';
import { runCli } from '../helpers/cli.ts';
import { startUpstream } from '../helpers/upstreams.ts';
import { runVeerIn, serviceConfig } from '../helpers/veer.ts';

/** Ten anchors, each a list of ten aliases of the one before: 10^10 values if expanded. */
function billionLaughs(): string {
  const names = 'abcdefghij';
  let yaml = 'laughs:\n  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
  for (let i = 1; i < 10; i++) yaml += `  ${names[i]}: &${names[i]} [${Array(10).fill(`*${names[i - 1]}`).join(', ')}]\n`;
  return yaml;
}

t.test('a billion-laughs block and an anchor used 101 times are yaml_syntax issues, placed, not thrown', async (t) => {
  const laughs = parseConfigText(`${billionLaughs()}services: []\n`, {});
  t.equal(laughs.ok, false);
  if (!laughs.ok) t.match(laughs.issues, [{ code: 'yaml_syntax', path: '(document)', line: 3, message: /alias/ }]);
  const many = parseConfigText(`x: &x 1\nlist: [${Array(101).fill('*x').join(', ')}]\nservices: []\n`, {});
  t.equal(many.ok, false);
  if (!many.ok) t.match(many.issues, [{ code: 'yaml_syntax', line: 2, message: /at most 100 alias uses/ }]);
  const few = parseConfigText(`services:\n  - name: a\n    versions: [{ name: v1, upstream: &x "http://127.0.0.1:1" }, { name: v2, upstream: *x }]\n`, {});
  t.equal(few.ok, true, 'a few aliases are fine');
});

t.test('veer validate reports it with FILE:LINE:COL and exits 1, without a stack trace', async (t) => {
  const file = join(t.testdir(), 'veer.yaml');
  writeFileSync(file, `${billionLaughs()}services: []\n`);
  const run = await runCli(['validate', '--config', file]);
  t.equal(run.code, 1);
  t.match(run.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:\\d+ \\(document\\): .*\\[yaml_syntax\\]`));
  t.notMatch(run.stderr, /\n\s+at /, 'no stack trace');
});

t.test('a hot reload to a billion-laughs config is refused and the last good config keeps serving', async (t) => {
  const upstream = await startUpstream('v1');
  t.teardown(() => upstream.close());
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: upstream.url } }));
  writeFileSync(veer.configPath, `${billionLaughs()}${serviceConfig({ versions: { v1: upstream.url } })}`);
  t.equal(await veer.veer.reloader.reload('test'), 'failure');
  t.match(veer.veer.reloader.stats.lastError?.issues, [{ code: 'yaml_syntax', line: 3 }]);
  const res = await request(`${veer.url}/x`);
  await res.body.dump();
  t.equal(res.statusCode, 200, 'still serving');
});
