// `npm run bench`: veer against a bare undici proxy, node-http-proxy and
// (when installed) nginx and haproxy, all in front of the same fast
// upstream, in one run; then the router microbenchmark, then the TLS and
// HTTP/2 benchmarks (bench/tls.ts, in a child). Medians of interleaved
// repetitions, proxy CPU per request from /proc, JSON results in
// bench/results/.
//
//   for rep in 1..R:  for case in [direct, veer, bare-undici, node-http-proxy, nginx, haproxy]:
//                       for tool in [autocannon, wrk?]: cpu0 = /proc; load N s; cpu1 = /proc
//
// Flags: --quick (2 s, 1 rep, no native, short router run), --seconds N,
// --reps N, --connections N, --with-native (apt-get installs nginx, haproxy,
// wrk when missing), --no-native, --no-wrk, --no-router, --no-tls (also off
// with --quick and --cases), --out DIR.

import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CASE_NAMES, checkCase, startCases, startUpstream, stopCases, type BenchCase, type BenchUpstream } from './lib/cases.ts';
import { canSampleCpu, readProcessTreeCpuSeconds } from './lib/cpu.ts';
import { BASE_HEADERS, runAutocannon, runWrk, USER_IDS, type LoadOptions, type LoadResult } from './lib/load.ts';
import { findBinary, installNative } from './lib/native.ts';
import { describeMachine, describeSource } from './lib/source.ts';
import { formatLoadTable, formatRouterTable, summarizeLoad, type LoadSample, type RouterRow } from './lib/table.ts';
import { BENCH_PATH, ROOT } from './lib/veer.ts';
import { LOAD_FLAGS } from './lib/flags.ts';

const { values: flags } = parseArgs({
  options: {
    ...LOAD_FLAGS,
    'no-wrk': { type: 'boolean', default: false },
    'no-router': { type: 'boolean', default: false },
    'no-tls': { type: 'boolean', default: false },
    cases: { type: 'string' },
    'baseline-veer': { type: 'string' },
    out: { type: 'string', default: join(ROOT, 'bench', 'results') },
  },
});

const quick = flags.quick;
const seconds = Number(flags.seconds ?? (quick ? 2 : 10));
const reps = Number(flags.reps ?? (quick ? 1 : 3));
const connections = Number(flags.connections);
const only = flags.cases === undefined ? null : new Set(flags.cases.split(',').map((name) => name.trim()));
for (const name of only ?? []) {
  if (CASE_NAMES.includes(name)) continue;
  process.stderr.write(`bench: --cases: unknown case "${name}" (known: ${CASE_NAMES.join(', ')})\n`);
  process.exit(2);
}
const warmupSeconds = quick ? 0.5 : 3;
const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

/** Runs one load with one tool and charges the proxy's CPU over exactly that window. */
async function measure(c: BenchCase, tool: 'autocannon' | 'wrk', wrk: string | null, load: LoadOptions): Promise<LoadResult & { cpuUsPerRequest: number | null }> {
  const cpuBefore = c.proxy && canSampleCpu() ? readProcessTreeCpuSeconds(c.proxy.pid) : null;
  const result = tool === 'wrk' ? await runWrk(wrk!, load) : await runAutocannon(load);
  const cpuAfter = c.proxy && cpuBefore !== null ? readProcessTreeCpuSeconds(c.proxy.pid) : null;
  const cpu = cpuBefore !== null && cpuAfter !== null && result.requests > 0 ? ((cpuAfter - cpuBefore) * 1e6) / result.requests : null;
  return { ...result, cpuUsPerRequest: cpu };
}

function runRouterBench(): Promise<{ rows: RouterRow[]; samples: Record<string, number[]> }> {
  return new Promise((resolve, reject) => {
    const args = [join(ROOT, 'bench', 'router.ts'), '--json', ...(quick ? ['--quick'] : [])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), quick ? 60_000 : 600_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) reject(new Error(`router bench failed (exit ${code})`));
      else resolve(JSON.parse(line) as { rows: RouterRow[]; samples: Record<string, number[]> });
    });
  });
}

/** bench/tls.ts in a child, same seconds and repetitions: its tables (`report`) and results, or null when it failed. */
function runTlsBench(native: boolean): Promise<{ report: string; [key: string]: unknown } | null> {
  return new Promise((resolve) => {
    const args = [join(ROOT, 'bench', 'tls.ts'), '--json', '--seconds', String(seconds), '--reps', String(reps), ...(native ? [] : ['--no-native'])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    // About 11 loads of `seconds` per repetition, plus warm-ups and starts; killed well past that.
    const timer = setTimeout(() => child.kill('SIGTERM'), (reps * 11 * (seconds + 2) + 120) * 2000);
    // A stop signal to the bench stops the child's servers too (it stops them by PID and exits).
    const stop = () => child.kill('SIGTERM');
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    child.once('exit', (code) => {
      clearTimeout(timer);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      const line = out.trim().split('\n').pop() ?? '';
      resolve(code === 0 && line.startsWith('{') ? (JSON.parse(line) as { report: string }) : null);
    });
  });
}

async function main(): Promise<void> {
  const machine = describeMachine();
  const source = describeSource();
  const native = flags['with-native'] || (!quick && !flags['no-native']);
  if (flags['with-native']) {
    const failed = installNative(log);
    if (failed.length > 0) log(`could not install: ${failed.join(', ')}`);
  }
  const wrk = flags['no-wrk'] ? null : findBinary('wrk');
  const tools: ('autocannon' | 'wrk')[] = wrk ? ['autocannon', 'wrk'] : ['autocannon'];
  const notes: string[] = [];
  if (!wrk) notes.push(flags['no-wrk'] ? 'wrk rows skipped (--no-wrk)' : 'wrk rows skipped: wrk is not installed');
  if (!canSampleCpu()) notes.push('CPU per request not measured: /proc is not readable on this system');

  log(`${machine.cores} x ${machine.cpu}, node ${machine.node}, load average ${machine.loadavgAtStart.map((l) => l.toFixed(2)).join(' ')}`);
  let upstream: BenchUpstream | null = null;
  let cases: BenchCase[] = [];
  const samples: LoadSample[] = [];
  const stopAll = async () => {
    await stopCases(cases);
    await upstream?.child.stop();
  };
  const onSignal = () => void stopAll().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    upstream = await startUpstream();
    const started = await startCases(upstream, native, !quick, only, flags['baseline-veer'] ?? null);
    cases = started.cases;
    for (const s of started.skipped) notes.push(`${s.name} skipped: ${s.reason}`);
    const headers = { ...BASE_HEADERS, 'x-user-id': USER_IDS[0]! };
    for (const c of cases) await checkCase(c, headers, BENCH_PATH);
    log(`cases: ${cases.map((c) => c.name).join(', ')}; ${reps} x ${seconds} s each with ${tools.join(' and ')}, ${connections} connections`);

    for (const c of cases) {
      // Warm-up: JIT, connection pools and upstream keep-alive, not counted.
      await runAutocannon({ port: c.port, connections, seconds: warmupSeconds });
    }
    for (let rep = 1; rep <= reps; rep++) {
      for (const c of cases) {
        for (const tool of tools) {
          const r = await measure(c, tool, wrk, { port: c.port, connections, seconds });
          samples.push({ name: c.name, tool, rep, rps: r.rps, p50: r.p50, p99: r.p99, cpuUsPerRequest: r.cpuUsPerRequest, requests: r.requests, errors: r.errors, loadavg1: loadavg()[0]! });
          log(`rep ${rep} ${c.name.padEnd(15)} ${tool.padEnd(10)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  cpu ${r.cpuUsPerRequest?.toFixed(1) ?? '-'} µs/req${r.errors ? `  errors ${r.errors}` : ''}`);
          await new Promise((res) => setTimeout(res, 300));
        }
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stopAll();
  }

  const rows = summarizeLoad(samples);
  const router = flags['no-router'] ? null : await runRouterBench();
  if (router === null) notes.push('router bench skipped (--no-router)');
  // TLS and HTTP/2 (bench/tls.ts): minutes more, so not in --quick runs nor in focused --cases runs.
  const tlsOff = flags['no-tls'] ? '--no-tls' : quick ? '--quick' : only !== null ? '--cases' : null;
  const tls = tlsOff === null ? await runTlsBench(native) : null;
  if (tlsOff !== null) notes.push(`TLS benchmarks skipped (${tlsOff}): node bench/tls.ts`);
  else if (tls === null) notes.push('TLS benchmarks failed (their output is above); node bench/tls.ts runs them alone');

  const date = new Date().toISOString();
  const command = `node bench/run.ts ${process.argv.slice(2).join(' ')}`.trim();
  const dirty = source.dirtySrcFiles > 0 ? ` + ${source.dirtySrcFiles} changed src files (digest ${source.srcDigest})` : '';
  let report = `veer bench ${date}, veer ${source.commit}${dirty}\n${machine.cores} x ${machine.cpu}, Linux ${machine.kernel}, node ${machine.node}\n`;
  report += `${command}: ${reps} x ${seconds} s per case and tool, ${connections} connections, medians\n\n${formatLoadTable(rows)}\n`;
  if (router) report += `\nrouteRequest alone, median ns per decision\n\n${formatRouterTable(router.rows)}\n`;
  if (tls) report += `\n${tls.report.slice(tls.report.indexOf('\n\n') + 2)}\n`;
  for (const note of notes) report += `\nnote: ${note}`;
  process.stdout.write(`${report}\n`);

  mkdirSync(flags.out, { recursive: true });
  const file = join(flags.out, `bench-${date.replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`);
  const settings = { quick, seconds, reps, connections, warmupSeconds, tools, native };
  writeFileSync(file, `${JSON.stringify({ date, command, source, machine, settings, rows, samples, router, tls, notes }, null, 2)}\n`);
  process.stdout.write(`\nresults written to ${file}\n`);
}

await main();
// Idle keep-alive handles (autocannon's, undici's) must not keep a finished run alive.
process.exit(0);
