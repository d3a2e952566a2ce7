// The forwarder requires undici's Pool, Dispatcher and errors from their own modules, not
// the package index (src/forwarder/undici-core.ts says why). They must be the
// very classes the index exports: an undici upgrade that moves or copies them
// fails here, not in production with an `instanceof` that is never true.

import { execFileSync } from 'node:child_process';
import t from 'tap';
import * as undici from 'undici';
import { Dispatcher, errors, Pool } from '../../src/forwarder/undici-core.ts';
import { ROOT } from '../helpers/veer.ts';

t.equal(Pool, undici.Pool, 'Pool is undici.Pool');
t.equal(errors, undici.errors, 'errors is undici.errors');
t.equal(Dispatcher, undici.Dispatcher, 'Dispatcher is undici.Dispatcher');
for (const name of ['HTTPParserError', 'ConnectTimeoutError', 'SocketError', 'RequestAbortedError', 'HeadersTimeoutError', 'BodyTimeoutError'] as const) {
  t.equal(typeof errors[name], 'function', `errors.${name}`);
}

t.test('without the index, a Pool still has the request API (mirrors and health checks call it)', async (t) => {
  const script = [
    "const core = await import('./src/forwarder/undici-core.ts');",
    "const { createRequire } = await import('node:module');",
    "const indexLoaded = Object.keys(createRequire(import.meta.url).cache).some((f) => f.endsWith('/undici/index.js'));",
    "const pool = new core.Pool('http://127.0.0.1:1');",
    "console.log(JSON.stringify({ indexLoaded, request: typeof pool.request, upgrade: typeof pool.upgrade }));",
    'await pool.close();',
  ].join('\n');
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  t.same(JSON.parse(out), { indexLoaded: false, request: 'function', upgrade: 'function' });
});
