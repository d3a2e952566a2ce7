// Smoke test of the bench: a --quick run starts every Node case, prints the
// table with a veer row and writes its JSON. No timing assertions: the
// numbers depend on the machine.

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';

const ROOT = resolve(import.meta.dirname, '..', '..');

t.test('npm run bench -- --quick prints a table with veer and writes JSON', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'veer-bench-smoke-'));
  const child = spawn(process.execPath, [join(ROOT, 'bench', 'run.ts'), '--quick', '--out', out], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  // Bounded: the quick run takes 30-40 s; a hung run is killed (the bench stops its children on SIGTERM).
  const timer = setTimeout(() => child.kill('SIGTERM'), 90_000);
  const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
  clearTimeout(timer);
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
