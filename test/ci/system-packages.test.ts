// A test that needs a Debian package skips without it on a developer's
// machine and fails under CI; .ci/run stops when apt-get cannot install.

import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { missingBinary, underCi } from '../helpers/system-packages.ts';
import { ROOT } from '../helpers/veer.ts';

t.test('missingBinary: null when present, a reason outside CI, a failure under CI', async (t) => {
  t.equal(missingBinary(process.execPath, 'nodejs', {}), null);
  t.match(missingBinary('/nonexistent/etcd', 'etcd-server', {}), /\/nonexistent\/etcd is not installed \(apt-get install etcd-server\); skipping/);
  t.throws(() => missingBinary('/nonexistent/etcd', 'etcd-server', { CI: 'true' }), /under CI every test must run, and \.ci\/run installs etcd-server/);
  t.equal(missingBinary(process.execPath, 'nodejs', { CI: 'true' }), null, 'present is fine under CI too');
  t.equal(underCi({ CI: '1' }), true);
  t.equal(underCi({}), false);
});

t.test('.ci/run stops with a clear message when apt-get fails, before running anything', async (t) => {
  const dir = t.testdir();
  mkdirSync(join(dir, '.ci'));
  copyFileSync(join(ROOT, '.ci', 'run'), join(dir, '.ci', 'run'));
  writeFileSync(join(dir, '.ci', 'apt-packages'), '# test\nveer-no-such-package\n');
  // Stand-ins on PATH: dpkg knows no package, apt-get fails, npm must never be reached.
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const stub = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  stub('dpkg', 'exit 1');
  stub('apt-get', 'echo "E: Unable to locate package" >&2; exit 100');
  stub('npm', `echo npm-was-run >> "${join(dir, 'npm.log')}"; exit 0`);
  const run = spawnSync('bash', [join(dir, '.ci', 'run')], { cwd: dir, encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin`, HOME: dir }, timeout: 30_000 });
  t.equal(run.status, 1, 'exits 1');
  t.match(run.stdout, /error: apt-get could not install veer-no-such-package/, 'names the packages');
  t.match(run.stdout, /^0 passed, 1 failed$/m, 'ends with the summary CI reads');
  t.notMatch(run.stdout, /== npm ci/, 'and runs nothing after');
});
