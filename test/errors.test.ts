import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ERROR_STATUS, VeerError, formatErrorBody } from '../src/errors.ts';
import { ROOT } from './helpers/veer.ts';

t.test('every error code maps to an HTTP status and is documented in the README', async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  for (const [code, status] of Object.entries(ERROR_STATUS)) {
    t.ok(status >= 400 && status < 600, `${code} -> ${status}`);
    t.match(readme, new RegExp(`\`${code}\``), `${code} is documented`);
  }
});

t.test('VeerError carries the code and the status of the code', async (t) => {
  const err = new VeerError('upstream_timeout', 'slow');
  t.equal(err.code, 'upstream_timeout');
  t.equal(err.status, 504);
  t.same(JSON.parse(formatErrorBody('no_route', 'x')), { error: { code: 'no_route', message: 'x' } });
});
