// Smoke test of bench/tls.ts: a --quick run (1 s per load, no nginx) starts
// veer's TLS listener and the bare https proxy, prints the three tables and
// writes its JSON. No timing assertions: the numbers depend on the machine.

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { opensslMissing } from '../helpers/certs.ts';
import { missingBinary } from '../helpers/system-packages.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const skip = opensslMissing() ?? missingBinary('/usr/bin/h2load', 'nghttp2-client');

t.test('node bench/tls.ts --quick prints the keep-alive, handshake and HTTP/2 tables and writes JSON', { skip: skip ?? false }, async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'veer-tls-bench-smoke-'));
  const child = spawn(process.execPath, [join(ROOT, 'bench', 'tls.ts'), '--quick', '--out', out], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  // About 15 s; a hung run is stopped (the bench stops its children on SIGTERM).
  const timer = setTimeout(() => child.kill('SIGTERM'), 60_000);
  const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
  clearTimeout(timer);
  t.equal(code, 0, 'exits 0', { stderr: stderr.slice(-3000) });

  t.match(stdout, /^\| veer-tls +\| autocannon +\| http\/1\.1 +\| +\d+ \|/m, 'a keep-alive row for veer with a number');
  t.match(stdout, /^\| bare-undici-https +\| h2load --h1 +\| http\/1\.1 +\| +\d+ \|/m, 'and the bare https baseline');
  t.match(stdout, /\| case +\| tool +\| protocol +\| conn\/s +\|/, 'the new-connections table');
  t.match(stdout, /^\| veer-tls +\| h2load +\| (h2 +\| +\d+|not negotiated \([^)]*\) +\| +-) \|/m, 'an HTTP/2 row: numbers, or why there are none');

  const files = readdirSync(out).filter((f) => f.startsWith('tls-') && f.endsWith('.json'));
  t.equal(files.length, 1, 'writes one JSON result');
  const result = JSON.parse(readFileSync(join(out, files[0]!), 'utf8')) as { rows: { bench: string; name: string; rps: number; errors: number }[] };
  const handshake = result.rows.find((r) => r.bench === 'handshake' && r.name === 'veer-tls');
  t.ok(handshake !== undefined && handshake.rps > 0, 'veer accepted new TLS connections');
  t.equal(result.rows.reduce((a, r) => a + r.errors, 0), 0, 'no errors');
});

t.test('TLS rows: paired ratios, and an h2 row that was not negotiated has no numbers', async (t) => {
  const { formatTlsTable, summarizeTls } = await import('../../bench/lib/tls-table.ts');
  const sample = (bench: 'keepalive' | 'h2', name: string, tool: string, rep: number, rps: number, cpu: number, protocol = 'http/1.1', negotiated = true) => ({
    bench, name, tool, rep, rps, p50: 1, p99: 2, cpuUsPerRequest: cpu, requests: rps, errors: 0, protocol, negotiated, clientCores: 0.3, machineCores: 1.5, loadavg1: 1,
  });
  const baselines = {
    keepalive: [{ label: 'vs nginx', name: 'nginx-tls' }],
    handshake: [],
    h2: [{ label: 'vs nginx', name: 'nginx-tls' }, { label: 'vs own h1', bench: 'keepalive' as const, tool: 'h2load --h1' }],
  };
  const rows = summarizeTls(
    [
      sample('keepalive', 'veer-tls', 'h2load --h1', 1, 100, 30),
      sample('keepalive', 'nginx-tls', 'h2load --h1', 1, 200, 10),
      sample('keepalive', 'veer-tls', 'h2load --h1', 2, 300, 30),
      sample('keepalive', 'nginx-tls', 'h2load --h1', 2, 400, 20),
      sample('h2', 'veer-tls', 'h2load', 1, 5000, 99, 'http/1.1', false),
      sample('h2', 'nginx-tls', 'h2load', 1, 800, 5, 'h2'),
    ],
    baselines,
  );
  const veer = rows.find((r) => r.bench === 'keepalive' && r.name === 'veer-tls')!;
  t.equal(veer.rps, 200, 'median req/s');
  t.equal(veer.ratios['vs nginx']!.rps, (0.5 + 0.75) / 2, 'req/s ratio: the median of per-repetition ratios');
  t.equal(veer.ratios['vs nginx']!.cpu, (3 + 1.5) / 2, 'and the CPU ratio');
  const h2 = rows.find((r) => r.bench === 'h2' && r.name === 'veer-tls')!;
  t.equal(h2.negotiated, false);
  t.ok(Number.isNaN(h2.rps), 'no req/s');
  t.equal(h2.ratios['vs nginx']!.rps, null, 'no ratio');
  t.equal(rows.find((r) => r.bench === 'h2' && r.name === 'nginx-tls')!.ratios['vs own h1']!.rps, 4, 'h2 over its own h1, same repetition');
  t.match(formatTlsTable([h2], baselines.h2), /\| veer-tls \| h2load \| not negotiated \(http\/1\.1\) \| +- \|/);
});
