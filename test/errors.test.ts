import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ERRORS, ERROR_STATUS, VeerError, formatErrorBody } from '../src/errors.ts';
import { ROOT } from './helpers/veer.ts';

/** Every `code` in the first column of a table row of the README's Errors section, with its second column. */
function readmeErrorRows(): Map<string, string> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Errors\n');
  const end = readme.indexOf('\n## ', start + 1);
  const rows = new Map<string, string>();
  for (const line of readme.slice(start, end).split('\n')) {
    const match = /^\| `([a-z_]+)` \| ([^|]+) \|/.exec(line);
    if (match) rows.set(match[1]!, match[2]!.trim());
  }
  return rows;
}

t.test("the README's error tables and the code's table name the same codes", async (t) => {
  const rows = readmeErrorRows();
  t.ok(rows.size > 30, `${rows.size} codes in the README`);
  for (const [code, spec] of Object.entries(ERRORS)) {
    t.ok(rows.has(code), `${code} is documented`);
    if (spec.status !== null) t.equal(rows.get(code), String(spec.status), `${code} is documented with status ${spec.status}`);
  }
  for (const code of rows.keys()) t.ok(code in ERRORS, `the README's ${code} exists in src/errors.ts`);
});

t.test('every code answered over HTTP has a 4xx or 5xx status; config issues have none', async (t) => {
  for (const [code, spec] of Object.entries(ERRORS)) {
    if (spec.kind === 'config') t.equal(spec.status, null, `${code} is not an HTTP answer`);
    else t.ok(spec.status !== null && spec.status >= 400 && spec.status < 600, `${code} -> ${spec.status}`);
  }
  t.same(Object.keys(ERROR_STATUS).sort(), Object.entries(ERRORS).filter(([, s]) => s.status !== null).map(([c]) => c).sort());
});

t.test('VeerError carries the code and the status of the code', async (t) => {
  const err = new VeerError('upstream_timeout', 'slow');
  t.equal(err.code, 'upstream_timeout');
  t.equal(err.status, 504);
  t.same(JSON.parse(formatErrorBody('no_route', 'x')), { error: { code: 'no_route', message: 'x' } });
});
