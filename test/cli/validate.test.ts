import { execFile } from 'node:child_process';
import { join, relative } from 'node:path';
import t, { type Test } from 'tap';
import { runValidate } from '../../src/cli/validate.ts';
import { listFixtures, type Fixture } from '../helpers/fixtures.ts';
import { FROM_SOURCE, ROOT, VEER_BIN } from '../helpers/veer.ts';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real `veer` binary with the project's Node, from the repository root. */
function veer(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base = { ...process.env };
  // No VEER_* from the outside; no tap instrumentation in the child (it doubles start-up time).
  for (const name of Object.keys(base)) if (/^(VEER_|TAP|_TAPJS_|NODE_OPTIONS$)/.test(name)) delete base[name];
  return new Promise((resolve) => {
    execFile(process.execPath, [VEER_BIN, ...args], { cwd: ROOT, env: { ...base, ...FROM_SOURCE, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

// Every run of the binary starts now, so the processes overlap; each test awaits its own.
const VALID_FILES = ['test/fixtures/valid/full.yaml'];
const INVALID_NAMES = ['env-unset.yaml', 'unknown-version.yaml'];
const INVALID_FIXTURES = listFixtures('invalid').filter((f) => INVALID_NAMES.includes(f.name));
const validRuns = Promise.all(VALID_FILES.map((file) => veer(['validate', '--config', file])));
const invalidRuns = Promise.all(INVALID_FIXTURES.map((f) => veer(['validate', '--config', relative(ROOT, f.file)], f.env)));
const missingRun = veer(['validate', '--config', 'test/fixtures/does-not-exist.yaml']);
const usageRun = veer(['validate']);

const ISSUE_LINE = /^(.+):(\d+):(\d+) (\S+): (.+) \[([a-z_]+)\]$/;

const EXPECTED_SERVICES: Record<string, string[]> = {
  'config/veer.yaml': ['shop'],
  'test/fixtures/valid/full.yaml': ['shop', 'api'],
  'test/fixtures/valid/minimal.yaml': ['web'],
  'test/fixtures/valid/env.yaml': ['env'],
  'test/fixtures/valid/hosts.yaml': ['shop-root', 'shop-api', 'tenants', 'eu-tenants', 'local6', 'fallback', 'fallback-static'],
  'test/fixtures/valid/safety-nets.yaml': ['shop'],
};

/** What a valid run must print. */
function checkValid(t: Test, file: string, run: Run): void {
  t.equal(run.code, 0, `${file}: exit 0 (${run.stderr.trim()})`);
  t.equal(run.stderr, '', `${file}: nothing on stderr`);
  const names = EXPECTED_SERVICES[file] ?? [];
  t.ok(names.length > 0, `${file}: the test knows its services`);
  t.match(run.stdout, new RegExp(`^${file} is valid: ${names.length} services?, listen `), `${file}: says it is valid`);
  for (const name of names) t.match(run.stdout, new RegExp(`^  ${name}  `, 'm'), `${file}: names ${name}`);
}

/** What an invalid run must print: one FILE:LINE:COL path: message [code] line per expected issue, in file order, then the count. */
function checkInvalid(t: Test, f: Fixture, run: Run): void {
  const file = relative(ROOT, f.file);
  t.equal(run.code, 1, `${f.name}: exit 1`);
  t.equal(run.stdout, '', `${f.name}: nothing on stdout`);
  const lines = run.stderr.trimEnd().split('\n');
  const last = lines.pop();
  t.equal(last, `${file}: ${f.expect.length} error${f.expect.length === 1 ? '' : 's'}`, `${f.name}: ends with the count`);
  const parsed = lines.map((l) => ISSUE_LINE.exec(l));
  t.ok(
    parsed.every((m) => m !== null && m[1] === file),
    `${f.name}: every line reads FILE:LINE:COL path: message [code]:\n${lines.join('\n')}`,
  );
  const got = parsed.filter((m) => m !== null).map((m) => `${m[4]} ${m[6]} ${m[2]}:${m[3]}`);
  t.same([...got].sort(), f.expect.map((e) => `${e.path} ${e.code} ${e.line}:${e.column}`).sort(), `${f.name}: the expected issues`);
  const positions = parsed.filter((m) => m !== null).map((m) => Number(m[2]) * 10_000 + Number(m[3]));
  t.same(positions, [...positions].sort((a, b) => a - b), `${f.name}: in file order`);
}

/** runValidate in this process, with the fixture's env, captured like the binary's output. */
async function validateInProcess(file: string, env: Record<string, string>): Promise<Run> {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  let stdout = '';
  let stderr = '';
  try {
    const code = await runValidate(
      file,
      (s) => (stdout += `${s}\n`),
      (s) => (stderr += `${s}\n`),
    );
    return { code, stdout, stderr };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

t.test('the veer binary on valid configs: exit 0 and a summary naming every service', async (t) => {
  const runs = await validRuns;
  VALID_FILES.forEach((file, i) => checkValid(t, file, runs[i]!));
  t.match(runs[0]!.stdout, /api {2}api\.example\.com\/v2 {2}a=33\.3333% b=33\.3333% c=33\.3333% sticky query:user/);
});

t.test('the veer binary on invalid configs: exit 1 and every error with FILE:LINE:COL', async (t) => {
  // One refused while loading (env), one at compile time (several issues).
  t.equal(INVALID_FIXTURES.length, INVALID_NAMES.length);
  const runs = await invalidRuns;
  INVALID_FIXTURES.forEach((f, i) => checkInvalid(t, f, runs[i]!));
});

t.test('validate on every fixture (in process, same output)', async (t) => {
  const example = await validateInProcess('config/veer.yaml', {});
  checkValid(t, 'config/veer.yaml', example);
  t.match(example.stdout, /shop {2}\*\/ {2}v1=90% v2=10% sticky header:x-user-id 2 rules rollout\(canary v2\)/, 'the summary line of config/veer.yaml');
  for (const f of listFixtures('valid')) checkValid(t, relative(ROOT, f.file), await validateInProcess(relative(ROOT, f.file), f.env));
  for (const f of listFixtures('invalid')) checkInvalid(t, f, await validateInProcess(relative(ROOT, f.file), f.env));
});

t.test('a missing file: exit 1 and a clear message', async (t) => {
  const run = await missingRun;
  t.equal(run.code, 1);
  t.equal(run.stdout, '');
  t.match(run.stderr, /cannot read test\/fixtures\/does-not-exist\.yaml: no such file \[config_unreadable\]/);
});

t.test('a directory instead of a file', async (t) => {
  const run = await validateInProcess(join('test', 'fixtures'), {});
  t.equal(run.code, 1);
  t.match(run.stderr, /directory \[config_unreadable\]/);
});

t.test('no --config: non-zero exit and the usage', async (t) => {
  const run = await usageRun;
  t.not(run.code, 0);
  t.ok(run.code !== null, 'exits rather than hangs or crashes');
  t.match(run.stderr, /required option '-c, --config <file>' not specified/);
  t.match(run.stderr, /Usage: veer validate \[options\]/);
});
