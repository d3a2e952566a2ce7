// Load drivers of the TLS benchmarks (bench/tls.ts), each reporting what the
// client itself burnt, since on a 2-core machine a saturated client caps
// every server alike:
//
//   autocannon over https   in the bench's own process   client CPU: process.cpuUsage()
//   h2load (nghttp2-client) a child, in C                client CPU: this process's reaped
//                                                         children (/proc/self/stat cutime+cstime)
//
// h2load sends the request of load.ts (GET BENCH_PATH, Host BENCH_HOST) with
// one fixed x-user-id (it cannot rotate headers), over HTTP/1.1 (`--h1`) or
// whatever ALPN gives, and writes a per-request log for the percentiles.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clockTicksPerSecond } from './cpu.ts';
import { autocannonRun, BASE_HEADERS, percentile, USER_IDS, type LoadResult } from './load.ts';
import { BENCH_HOST, BENCH_PATH } from './veer.ts';

/**
 * What one TLS load run measured: a load run's figures (latency from request
 * sent to response read; a new connection's handshake is not in it), the
 * protocol ALPN settled on ("h2", "http/1.1"; null when the tool does not
 * say), and the CPU seconds the load generator used over the run.
 */
export interface TlsLoadResult extends Omit<LoadResult, 'tool'> {
  readonly protocol: string | null;
  readonly clientCpuSeconds: number;
}

/** Drives https://127.0.0.1:`port` with autocannon over keep-alive connections (any certificate accepted: a loopback test CA). */
export async function runAutocannonHttps(options: { port: number; connections: number; seconds: number }): Promise<TlsLoadResult> {
  const cpu0 = process.cpuUsage();
  // SNI as a browser sends it (autocannon would send the IP address, which RFC 6066 forbids).
  const { result, latencies } = await autocannonRun({ url: `https://127.0.0.1:${options.port}`, servername: BENCH_HOST, connections: options.connections, seconds: options.seconds });
  const cpu = process.cpuUsage(cpu0);
  return {
    requests: result.requests.total,
    seconds: result.duration,
    rps: result.requests.total / result.duration,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    errors: result.non2xx + result.errors + result.timeouts,
    protocol: 'http/1.1',
    clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

/** How h2load loads a port: for a time (keep-alive), or a number of requests (one connection each). */
export interface H2loadOptions {
  readonly port: number;
  /** Concurrent connections (`-c`). */
  readonly clients: number;
  /** Requests in flight per connection (`-m`): HTTP/2 streams, or HTTP/1.1 pipelining (keep it 1). */
  readonly streams: number;
  /** HTTP/1.1 only (`--h1`); otherwise ALPN offers h2 first and h2load speaks what the server picks. */
  readonly h1: boolean;
  /** Timing-based run (`-D`), or... */
  readonly seconds?: number;
  /**
   * ...a fixed number of requests, each on a new connection (`-n`, `Connection: close`: the server
   * closes after its response and h2load connects again). h2load's `-D` mis-times reconnecting
   * clients (its window stretches and undercounts), so this mode counts and times the whole run.
   */
  readonly newConnections?: number;
  /** Killed (SIGKILL) after this long: every run is bounded. */
  readonly limitMs: number;
}

/** The h2load binary (nghttp2-client), or null when it is not installed. */
export const H2LOAD_BIN = '/usr/bin/h2load';

/** CPU seconds of this process's children that have exited and been reaped (fields 16-17 of /proc/self/stat). */
export function readReapedChildrenCpuSeconds(): number {
  const text = readFileSync('/proc/self/stat', 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3: cutime is field 16, cstime 17.
  return (Number(fields[13]) + Number(fields[14])) / clockTicksPerSecond();
}

/** Busy and total CPU ticks of the whole machine so far (/proc/stat's cpu line): whether the run had the machine to itself. */
export function readMachineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
  const busy = user! + nice! + system! + irq! + softirq! + steal!;
  return { busy, total: busy + idle! + iowait! };
}

/** Runs h2load against https://127.0.0.1:`port`; rejects when it fails or its summary cannot be read. */
export async function runH2load(options: H2loadOptions): Promise<TlsLoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'veer-bench-h2load-'));
  const logFile = join(dir, 'requests.tsv');
  const args = [
    '-c', String(options.clients),
    '-m', String(options.streams),
    '-H', `:authority: ${BENCH_HOST}`,
    '-H', `accept: ${BASE_HEADERS.accept}`,
    '-H', `user-agent: ${BASE_HEADERS['user-agent']}`,
    '-H', `x-user-id: ${USER_IDS[0]!}`,
    '--log-file', logFile,
    ...(options.h1 ? ['--h1'] : []),
    ...(options.newConnections !== undefined ? ['-n', String(options.newConnections), '-H', 'connection: close'] : ['-D', String(options.seconds ?? 1)]),
    `https://127.0.0.1:${options.port}${BENCH_PATH}`,
  ];
  try {
    const cpu0 = readReapedChildrenCpuSeconds();
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(H2LOAD_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (c: Buffer) => (text += c.toString()));
      child.stderr.on('data', (c: Buffer) => (text += c.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), options.limitMs);
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve(text);
        else reject(new Error(`h2load ${signal === 'SIGKILL' ? `killed after ${options.limitMs} ms` : `exited ${code}`}:\n${text.slice(-2000)}`));
      });
    });
    // By 'exit' libuv has reaped h2load, so its CPU is in cutime/cstime.
    const clientCpuSeconds = readReapedChildrenCpuSeconds() - cpu0;
    const summary = parseH2loadOutput(out);
    if (summary === null) throw new Error(`h2load printed no summary:\n${out.slice(-2000)}`);
    const elapsed = readLogLatencies(logFile);
    return { ...summary, p50: percentile(elapsed, 0.5), p99: percentile(elapsed, 0.99), clientCpuSeconds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Response times in ms from h2load's `--log-file` (start µs, status, elapsed µs per line), sorted. */
function readLogLatencies(file: string): Float64Array {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return new Float64Array(0);
  }
  const lines = text.split('\n');
  const out = new Float64Array(lines.length);
  let n = 0;
  for (const line of lines) {
    const tab = line.lastIndexOf('\t');
    if (tab > 0) out[n++] = Number(line.slice(tab + 1)) / 1000;
  }
  return out.subarray(0, n).sort();
}

/** The counts of h2load's summary; null when the output has none. */
export function parseH2loadOutput(text: string): Omit<TlsLoadResult, 'p50' | 'p99' | 'clientCpuSeconds'> | null {
  const finished = /finished in ([\d.]+)(ms|s), ([\d.]+) req\/s/.exec(text);
  const requests = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(text);
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(text);
  if (!finished || !requests || !status) return null;
  const seconds = Number(finished[1]) / (finished[2] === 'ms' ? 1000 : 1);
  const ok = Number(status[1]);
  // "failed" includes the errored, timed-out and non-2xx/3xx ones; h2load counts a 3xx as a success, the bench does not.
  return {
    requests: ok,
    seconds,
    rps: seconds > 0 ? ok / seconds : 0,
    errors: Number(requests[5]) + Number(status[2]),
    protocol: /Application protocol: (\S+)/.exec(text)?.[1] ?? null,
  };
}
