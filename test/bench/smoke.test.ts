// Smoke test of the bench: a --quick run starts every Node case, prints the
// table with a veer row and writes its JSON. No timing assertions: the
// numbers depend on the machine.

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { etcdMissing } from '../helpers/etcd.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** Runs `node bench/SCRIPT ARGS` to its end (SIGTERM after `limitMs`: every run is bounded); its exit code and output. */
async function runBench(script: string, args: readonly string[], limitMs = 90_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'bench', script), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGTERM'), limitMs);
  const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

t.test('npm run bench -- --quick prints a table with veer and writes JSON', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'veer-bench-smoke-'));
  // The quick run takes 30-40 s; a hung run is killed (the bench stops its children on SIGTERM).
  const { code, stdout, stderr } = await runBench('run.ts', ['--quick', '--out', out]);
  t.equal(code, 0, 'bench exits 0', { stderr: stderr.slice(-3000) });

  t.match(stdout, /\| case +\| tool +\| req\/s +\|/, 'prints the load table header');
  t.match(stdout, /^\| veer +\| autocannon +\| +\d+ \|/m, 'the table has a veer row with a number');
  t.match(stdout, /^\| bare-undici +\|/m, 'and the bare undici baseline');
  t.match(stdout, /^\| bare-undici-stream +\|/m, "and the bare proxy on undici's stream API");
  t.match(stdout, /^\| node-http-proxy +\|/m, 'and node-http-proxy');
  t.match(stdout, /ns\/decision/, 'prints the router table');

  const files = readdirSync(out).filter((f) => f.endsWith('.json'));
  t.equal(files.length, 1, 'writes one JSON result');
  const result = JSON.parse(readFileSync(join(out, files[0]!), 'utf8')) as { rows: { name: string; rps: number }[]; router: unknown };
  const veer = result.rows.find((r) => r.name === 'veer');
  t.ok(veer, 'the JSON has a veer row');
  t.ok(veer !== undefined && veer.rps > 0, 'veer served requests');
  t.ok(result.router, 'the JSON has the router results');
});

t.test('--cases names only known cases', async (t) => {
  const child = spawn(process.execPath, [join(ROOT, 'bench', 'run.ts'), '--cases', 'veer,nope'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
  clearTimeout(timer);
  t.equal(code, 2, 'exits 2 before starting anything');
  t.match(stderr, /unknown case "nope" \(known: veer, veer-workers-2, bare-undici/, 'and names the known cases');
});

t.test('bench/scale.ts prints its table next to the goals and writes JSON', { skip: etcdMissing() ?? false }, async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'veer-scale-smoke-'));
  const { code, stdout, stderr } = await runBench('scale.ts', ['--sizes', '1,200', '--reps', '2', '--etcd', '--out', out]);
  t.equal(code, 0, 'exits 0', { stderr: stderr.slice(-3000) });
  t.match(stdout, /\| services \| ready ms \| RSS MB \| PUT ms \|/, 'prints the table header');
  t.match(stdout, /^\| floor: Node \+ dependencies, idle \| \d+ \| \d+ \|/m, 'the floor, measured in the same run');
  t.match(stdout, /^\| 200 \| \d+ \| \d+ \| [\d.]+ \| [\d.]+x \| \d+ \| [\d.]+ \| \d+ \| \d+ \|$/m, 'a row per size, every column a number');
  t.match(stdout, /^\| 200, etcd \| \d+ \| \d+ \| [\d.]+ \([\d.]+ txn, [\d.]+ keys: services\/\*/m, 'the etcd rows say what a PUT wrote');
  t.match(stdout, /^\| goal \(10 000\) \|/m, 'and the goals');
  const files = readdirSync(out).filter((f) => f.endsWith('.json'));
  t.equal(files.length, 1, 'writes one JSON result');
  const result = JSON.parse(readFileSync(join(out, files[0]!), 'utf8')) as { rows: { services: number | string; putMs: number }[] };
  t.same(result.rows.map((r) => r.services), ['floor', 1, 200, '1, etcd', '200, etcd']);
  t.ok(result.rows.slice(1).every((r) => r.putMs > 0), 'every size changed a weight');
});
