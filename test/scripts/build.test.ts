// `npm run build` (scripts/build.ts): the compiled veer is the one users run
// (bin/veer.js, `npm start`, the image), while every other test runs the
// sources. So the build is checked here as the image lays it out, in a temp
// dir with dist/, bin/, package.json and node_modules but no src/: it reads
// configs exactly as the sources do (with the prebuilt schema validator),
// validates, and serves.

import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseConfigText, type ConfigLoadResult } from '../../src/config/index.ts';
import { runCli } from '../helpers/cli.ts';
import { startUpstream } from '../helpers/upstreams.ts';
import { ROOT, serveInChild, serviceConfig, writeConfig } from '../helpers/veer.ts';

const image = mkdtempSync(join(tmpdir(), 'veer-build-'));
t.teardown(() => rmSync(image, { recursive: true, force: true }));
execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.ts'), '--out', join(image, 'dist')], { cwd: ROOT, stdio: 'pipe' });
mkdirSync(join(image, 'bin'));
cpSync(join(ROOT, 'bin', 'veer.js'), join(image, 'bin', 'veer.js'));
cpSync(join(ROOT, 'package.json'), join(image, 'package.json'));
symlinkSync(join(ROOT, 'node_modules'), join(image, 'node_modules'));
const compiledBin = join(image, 'bin', 'veer.js');
/** Not the tests' VEER_FROM_SOURCE: the copy has no sources, and must not need them. */
const COMPILED = { VEER_FROM_SOURCE: '' };

type Parse = typeof parseConfigText;
const compiled = (await import(join(image, 'dist', 'config.js'))) as { parseConfigText: Parse };

/** What a parse decided, without its functions. */
const outcome = (r: ConfigLoadResult) => (r.ok ? { ok: true, config: r.config } : { ok: false, issues: r.issues });

t.test('dist/ holds JavaScript only, with the prebuilt validator', async (t) => {
  const files = readdirSync(join(image, 'dist'), { recursive: true, encoding: 'utf8' }).filter((f) => /\.[cm]?[jt]s$/.test(f));
  for (const entry of ['cli.js', 'main-worker.js', 'read-worker.js', 'config.js']) t.ok(files.includes(entry), `entry ${entry}`);
  t.ok(files.length < 60, `bundled: ${files.length} files, not one per module`);
  t.same(files.filter((f) => f.endsWith('.ts')), [], 'no TypeScript');
  const tsImports = files.filter((f) => /from '\.[^']*\.ts'/.test(readFileSync(join(image, 'dist', f), 'utf8')));
  t.same(tsImports, [], 'every relative import names a .js file');
  t.ok(existsSync(join(image, 'dist', 'config-validator.cjs')), 'config-validator.cjs');
  t.ok(existsSync(join(image, 'dist', 'dashboard', 'index.html')) && existsSync(join(image, 'dist', 'dashboard', 'app.js')), "the dashboard's page and modules");
  t.notOk(existsSync(join(image, 'dist', 'test')), 'tests are not built');
});

t.test('a compiled veer reads configs exactly as the sources do', async (t) => {
  const texts: [string, string][] = [
    ['config/veer.yaml', readFileSync(join(ROOT, 'config', 'veer.yaml'), 'utf8')],
    ['deploy veer.yaml', readFileSync(join(ROOT, 'deploy', 'kubernetes', 'base', 'veer.yaml'), 'utf8')],
    ['defaults filled in', 'services:\n  - name: a\n    versions: [{ name: v1, upstream: "http://127.0.0.1:1" }]\n'],
    ['env coerced to a number', 'workers: ${W}\nservices:\n  - name: a\n    versions: [{ name: v1, upstream: "http://127.0.0.1:1" }]\n'],
    ['unknown key', 'services:\n  - name: a\n    versoins: []\n'],
    ['wrong types', 'listen: 8080\nworkers: many\nservices: {}\n'],
    ['bad enum and pattern', 'state: { store: redis }\nservices:\n  - name: "Not A Name"\n    versions: [{ name: v1, upstream: "ftp://x" }]\n'],
    ['weights over 100', 'services:\n  - name: a\n    versions: [{ name: v1, upstream: "http://127.0.0.1:1" }]\n    split: { weights: { v1: 101 } }\n'],
    ['not YAML', 'services: [\n'],
    ['empty', ''],
  ];
  const env = { VEER_ADMIN_TOKEN: 't', W: '2' };
  for (const [name, text] of texts) {
    const fromSource = outcome(parseConfigText(text, env));
    t.same(outcome(compiled.parseConfigText(text, env)), fromSource, `${name}: ${fromSource.ok ? 'valid' : `${fromSource.issues?.length} issue(s)`}`);
  }
});

t.test('the compiled binary validates, and says what is wrong', async (t) => {
  const good = await runCli(['validate', '--config', 'config/veer.yaml'], COMPILED, 20_000, compiledBin);
  t.equal(good.code, 0, good.stderr);
  const badFile = writeConfig('services:\n  - name: a\n    versions: []\n');
  const [source, built] = await Promise.all([runCli(['validate', '--config', badFile]), runCli(['validate', '--config', badFile], COMPILED, 20_000, compiledBin)]);
  t.equal(built.code, source.code, `exit ${source.code}`);
  t.not(built.code, 0);
  t.equal(built.stderr, source.stderr, 'the same report');
});

t.test('the compiled binary serves, from dist/', async (t) => {
  const upstream = await startUpstream('v1');
  t.teardown(() => upstream.close());
  const file = writeConfig(serviceConfig({ versions: { v1: upstream.url } }).replace('log: { level: silent }', 'log: { level: info }'));
  const { veer, serving: ready } = await serveInChild(t, file, { env: COMPILED, bin: compiledBin });
  const res = await fetch(`http://${String(ready.listen)}/`);
  t.equal(res.status, 200);
  t.equal(res.headers.get('x-upstream'), 'v1');
  t.match(veer.output(), /"config":/, 'logs as veer does');
  t.notMatch(veer.output(), /\.ts\b:/, 'no TypeScript in any stack it printed');
});
