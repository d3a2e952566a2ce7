// `node bench/tls.ts`: veer's TLS listener against a bare Node https proxy and
// nginx, all in front of the same fast upstream, in one run. Three benchmarks:
//
//   keepalive   HTTPS keep-alive, small responses: 50 connections, autocannon and
//               `h2load --h1 -c 50 -m 1`; proxy CPU per request
//   handshake   a new TLS connection per request (full handshake, no resumption):
//               `h2load --h1 -c 16 -n N` with `Connection: close`, N sized from a
//               warm-up to last --seconds; connections per second and CPU per connection
//   h2          HTTP/2 to clients: `h2load -c 5 -m 10` (50 streams over 5 connections,
//               ALPN h2) next to the keepalive bench's HTTP/1.1 figure on the same
//               listener (50 connections); "not negotiated" when ALPN gives http/1.1
//
//   for rep in 1..R:  for case in [veer-tls, bare-undici-https, nginx-tls]:
//                       keepalive (autocannon, h2load --h1), h2 (veer-tls, nginx-tls)
//                     for case: handshake
//
// Ratios are medians of per-repetition ratios against the baselines' samples of
// the same repetition. Proxy CPU is from /proc (process tree); the client's
// CPU is reported too (on 2 cores a saturated client is the limit).
// Flags: --quick (1 s, 1 rep, no nginx), --seconds N, --reps N, --connections N,
// --handshake-clients N, --only keepalive,handshake,h2, --with-native, --no-native,
// --json (one JSON line on stdout instead of a results file: run.ts), --out DIR.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { TestPki } from '../test/helpers/certs.ts';
import { startUpstream, type BenchCase, type BenchUpstream } from './lib/cases.ts';
import { canSampleCpu, clockTicksPerSecond, readProcessTreeCpuSeconds } from './lib/cpu.ts';
import { BASE_HEADERS, USER_IDS } from './lib/load.ts';
import { installNative } from './lib/native.ts';
import { describeMachine, describeSource } from './lib/source.ts';
import { checkTlsCase, makeBenchPki, negotiatedProtocol, startTlsCases } from './lib/tls-cases.ts';
import { H2LOAD_BIN, readMachineTicks, runAutocannonHttps, runH2load, type TlsLoadResult } from './lib/tls-load.ts';
import { formatTlsTable, summarizeTls, type TlsBaseline, type TlsBenchName, type TlsRow, type TlsSample } from './lib/tls-table.ts';
import { BENCH_PATH, ROOT } from './lib/veer.ts';
import { LOAD_FLAGS } from './lib/flags.ts';

const BENCHES: readonly TlsBenchName[] = ['keepalive', 'handshake', 'h2'];

const { values: flags } = parseArgs({
  options: {
    ...LOAD_FLAGS,
    'handshake-clients': { type: 'string', default: '16' },
    only: { type: 'string' },
    json: { type: 'boolean', default: false },
    out: { type: 'string', default: join(ROOT, 'bench', 'results') },
  },
});

const quick = flags.quick;
const seconds = Number(flags.seconds ?? (quick ? 1 : 10));
const reps = Number(flags.reps ?? (quick ? 1 : 3));
const connections = Number(flags.connections);
const handshakeClients = Number(flags['handshake-clients']);
const benches = new Set(flags.only === undefined ? BENCHES : flags.only.split(',').map((b) => b.trim()));
for (const b of benches) {
  if (BENCHES.includes(b as TlsBenchName)) continue;
  process.stderr.write(`tls bench: --only: unknown benchmark "${b}" (known: ${BENCHES.join(', ')})\n`);
  process.exit(2);
}
const warmupSeconds = quick ? 0.5 : 3;
/** HTTP/2: 50 streams over 5 connections. */
const H2_CLIENTS = 5;
const H2_STREAMS = 10;
const log = (s: string) => process.stderr.write(`tls bench: ${s}\n`);

/** Ratios each benchmark's rows are read against. */
const BASELINES: Record<TlsBenchName, readonly TlsBaseline[]> = {
  keepalive: [
    { label: 'vs bare https', name: 'bare-undici-https' },
    { label: 'vs nginx', name: 'nginx-tls' },
  ],
  handshake: [
    { label: 'vs bare https', name: 'bare-undici-https' },
    { label: 'vs nginx', name: 'nginx-tls' },
  ],
  h2: [
    { label: 'vs nginx', name: 'nginx-tls' },
    { label: 'vs own h1', bench: 'keepalive', tool: 'h2load --h1' },
  ],
};

/** Runs one load and charges the proxy's CPU (its process tree) over exactly that window. */
async function measure(c: BenchCase, bench: TlsBenchName, tool: string, rep: number, run: () => Promise<TlsLoadResult>, wantH2 = false): Promise<TlsSample> {
  const machine0 = readMachineTicks();
  const wall0 = performance.now();
  const cpuBefore = c.proxy && canSampleCpu() ? readProcessTreeCpuSeconds(c.proxy.pid) : null;
  const r = await run();
  const cpuAfter = c.proxy && cpuBefore !== null ? readProcessTreeCpuSeconds(c.proxy.pid) : null;
  const machine1 = readMachineTicks();
  const wallSeconds = (performance.now() - wall0) / 1000;
  const cpu = cpuBefore !== null && cpuAfter !== null && r.requests > 0 ? ((cpuAfter - cpuBefore) * 1e6) / r.requests : null;
  const negotiated = !wantH2 || r.protocol === 'h2';
  const sample: TlsSample = {
    bench,
    name: c.name,
    tool,
    rep,
    rps: r.rps,
    p50: r.p50,
    p99: r.p99,
    cpuUsPerRequest: cpu,
    requests: r.requests,
    errors: r.errors,
    protocol: r.protocol,
    negotiated,
    clientCores: r.seconds > 0 ? r.clientCpuSeconds / r.seconds : 0,
    machineCores: (machine1.busy - machine0.busy) / clockTicksPerSecond() / wallSeconds,
    loadavg1: loadavg()[0]!,
  };
  const unit = bench === 'handshake' ? 'conn/s' : 'req/s';
  log(
    `rep ${rep} ${bench.padEnd(9)} ${c.name.padEnd(17)} ${tool.padEnd(11)} ` +
      (negotiated
        ? `${r.rps.toFixed(0).padStart(6)} ${unit}  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  cpu ${cpu?.toFixed(1) ?? '-'} µs  client ${sample.clientCores.toFixed(2)} cores  machine ${sample.machineCores.toFixed(2)} cores${r.errors ? `  errors ${r.errors}` : ''}`
        : `h2 not negotiated (ALPN: ${r.protocol ?? 'none'})`),
  );
  await new Promise((res) => setTimeout(res, 300));
  return sample;
}

const limitMs = (s: number) => (s * 4 + 15) * 1000;
const keepAliveAutocannon = (c: BenchCase, s: number) => () => runAutocannonHttps({ port: c.port, connections, seconds: s });
const keepAliveH2load = (c: BenchCase, s: number) => () => runH2load({ port: c.port, clients: connections, streams: 1, h1: true, seconds: s, limitMs: limitMs(s) });
const h2H2load = (c: BenchCase, s: number) => () => runH2load({ port: c.port, clients: H2_CLIENTS, streams: H2_STREAMS, h1: false, seconds: s, limitMs: limitMs(s) });
const handshakeH2load = (c: BenchCase, n: number, s: number) => () =>
  runH2load({ port: c.port, clients: handshakeClients, streams: 1, h1: true, newConnections: n, limitMs: limitMs(s) });

/** The report's goal and limit lines, read from the rows. */
function summarizeGoals(rows: readonly TlsRow[]): string[] {
  const lines: string[] = [];
  const find = (bench: TlsBenchName, name: string, tool: string) => rows.find((r) => r.bench === bench && r.name === name && r.tool === tool);
  const hs = find('handshake', 'veer-tls', 'h2load --h1');
  const vsNginx = hs?.ratios['vs nginx']?.rps ?? null;
  if (hs) lines.push(`new TLS connections/s: veer-tls ${vsNginx === null ? 'not compared (no nginx-tls row)' : `${vsNginx.toFixed(2)}x nginx-tls`} (goal: at least 0.70x)${vsNginx === null ? '' : vsNginx >= 0.7 ? ': met' : ': NOT met'}`);
  const h2 = find('h2', 'veer-tls', 'h2load');
  if (h2 && !h2.negotiated) lines.push(`HTTP/2: veer's TLS listener did not negotiate h2 (ALPN gave ${h2.protocol ?? 'nothing'}); its h2 row has no numbers`);
  for (const r of rows) {
    if (r.clientCores >= 0.85) lines.push(`${r.bench} ${r.name} ${r.tool}: the client used ${r.clientCores.toFixed(2)} cores: it, not only the server, limits this row's rate`);
  }
  return lines;
}

async function main(): Promise<void> {
  const machine = describeMachine();
  const source = describeSource();
  const native = flags['with-native'] || (!quick && !flags['no-native']);
  const notes: string[] = [];
  if (flags['with-native']) {
    const failed = installNative(log).filter((b) => b === 'nginx');
    if (failed.length > 0) log('could not install nginx');
  }
  if (!existsSync(H2LOAD_BIN)) {
    process.stderr.write(`tls bench: ${H2LOAD_BIN} is not installed (apt-get install nghttp2-client)\n`);
    process.exit(2);
  }
  if (!canSampleCpu()) notes.push('CPU per request not measured: /proc is not readable on this system');
  log(`${machine.cores} x ${machine.cpu}, node ${machine.node}, load average ${machine.loadavgAtStart.map((l) => l.toFixed(2)).join(' ')}`);

  let pki: TestPki | null = null;
  let upstream: BenchUpstream | null = null;
  let cases: BenchCase[] = [];
  const samples: TlsSample[] = [];
  const h2Check: Record<string, string | null> = {};
  const stopAll = async () => {
    await Promise.all(cases.map((c) => c.proxy?.stop()));
    await upstream?.child.stop();
    pki?.destroy();
  };
  const onSignal = () => void stopAll().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    pki = makeBenchPki();
    upstream = await startUpstream();
    const started = await startTlsCases(upstream, pki, native);
    cases = started.cases;
    for (const s of started.skipped) notes.push(`${s.name} skipped: ${s.reason}`);
    const headers = { ...BASE_HEADERS, 'x-user-id': USER_IDS[0]! };
    for (const c of cases) await checkTlsCase(c, pki, headers, BENCH_PATH);
    // What `curl --http2` would get: h2 rows of servers that do not negotiate it report "not negotiated".
    const h2Cases = cases.filter((c) => c.name !== 'bare-undici-https');
    for (const c of h2Cases) h2Check[c.name] = await negotiatedProtocol(c.port);
    log(`ALPN offering h2, http/1.1: ${h2Cases.map((c) => `${c.name} -> ${h2Check[c.name] ?? 'none'}`).join(', ')}`);
    log(`cases: ${cases.map((c) => c.name).join(', ')}; benchmarks: ${[...benches].join(', ')}; ${reps} x ${seconds} s each`);

    // Warm-up (not counted): JIT, upstream pools; and the handshake rate, which sizes -n to last `seconds`.
    const handshakeCount = new Map<string, number>();
    const noH2 = new Set<string>();
    for (const c of cases) {
      if (benches.has('keepalive') || benches.has('h2')) await keepAliveAutocannon(c, warmupSeconds)();
      if (benches.has('handshake')) {
        const warm = await handshakeH2load(c, quick ? 200 : 1500, warmupSeconds * 4)();
        handshakeCount.set(c.name, Math.max(100, Math.round(warm.rps * seconds)));
      }
    }
    for (let rep = 1; rep <= reps; rep++) {
      for (const c of cases) {
        const h2 = benches.has('h2') && c.name !== 'bare-undici-https';
        if (benches.has('keepalive')) samples.push(await measure(c, 'keepalive', 'autocannon', rep, keepAliveAutocannon(c, seconds)));
        // Also the h2 bench's HTTP/1.1 figure: the same 50 requests in flight, on 50 connections.
        if (benches.has('keepalive') || h2) samples.push(await measure(c, 'keepalive', 'h2load --h1', rep, keepAliveH2load(c, seconds)));
        // A server that did not negotiate h2 in one repetition will not in the next: its row says so once.
        if (h2 && !noH2.has(c.name)) {
          const sample = await measure(c, 'h2', 'h2load', rep, h2H2load(c, seconds), true);
          samples.push(sample);
          if (!sample.negotiated) noH2.add(c.name);
        }
      }
      if (!benches.has('handshake')) continue;
      for (const c of cases) samples.push(await measure(c, 'handshake', 'h2load --h1', rep, handshakeH2load(c, handshakeCount.get(c.name)!, seconds)));
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stopAll();
  }

  const rows = summarizeTls(samples, BASELINES);
  const pick = (bench: TlsBenchName) => rows.filter((r) => r.bench === bench);
  const tables: string[] = [];
  if (benches.has('keepalive')) {
    tables.push(`HTTPS keep-alive, ${connections} connections, 100-byte responses\n\n${formatTlsTable(pick('keepalive'), BASELINES.keepalive)}`);
  }
  if (benches.has('handshake')) {
    tables.push(
      `New TLS connection per request (full handshake, EC P-256 certificate), ${handshakeClients} concurrent clients\n\n${formatTlsTable(pick('handshake'), BASELINES.handshake, 'conn/s')}`,
    );
  }
  if (benches.has('h2')) {
    const h1 = rows.filter((r) => r.bench === 'keepalive' && r.tool === 'h2load --h1' && r.name !== 'bare-undici-https');
    tables.push(`HTTP/2 to clients, ${H2_CLIENTS} connections x ${H2_STREAMS} streams (h2load), next to HTTP/1.1 on ${connections} connections (h2load --h1)\n\n${formatTlsTable([...pick('h2'), ...h1], BASELINES.h2)}`);
  }
  const goals = summarizeGoals(rows);
  notes.push(
    'CPU µs/req is the proxy process tree\'s CPU over the run divided by the responses; "client cores" is the load generator\'s CPU over its wall time; ' +
      '"machine cores" is every process\'s (/proc/stat): near the core count, the machine, not one process, is the limit',
  );

  const date = new Date().toISOString();
  const command = `node bench/tls.ts ${process.argv.slice(2).join(' ')}`.trim();
  const dirty = source.dirtySrcFiles > 0 ? ` + ${source.dirtySrcFiles} changed src files (digest ${source.srcDigest})` : '';
  let report = `veer TLS bench ${date}, veer ${source.commit}${dirty}\n${machine.cores} x ${machine.cpu}, Linux ${machine.kernel}, node ${machine.node}\n`;
  report += `${command}: ${reps} x ${seconds} s per case and tool, medians\n\n${tables.join('\n\n')}\n`;
  for (const line of goals) report += `\n${line}`;
  for (const note of notes) report += `\nnote: ${note}`;
  const settings = { quick, seconds, reps, connections, handshakeClients, h2: { clients: H2_CLIENTS, streams: H2_STREAMS }, warmupSeconds, native, benches: [...benches] };
  const result = { date, command, source, machine, settings, alpn: h2Check, rows, samples, goals, notes };
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ ...result, report })}\n`);
    return;
  }
  process.stdout.write(`${report}\n`);
  mkdirSync(flags.out, { recursive: true });
  const file = join(flags.out, `tls-${date.replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`\nresults written to ${file}\n`);
}

await main();
// Idle keep-alive handles (autocannon's) must not keep a finished run alive.
process.exit(0);
