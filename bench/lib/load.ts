// Load drivers: autocannon (always, in the bench's own process) and wrk
// (when installed, as a child). Both send the same request: GET BENCH_PATH
// with Host BENCH_HOST and an x-user-id cycling over a few users, so veer's
// sticky hash sees different keys while every request stays prebuilt.

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { BENCH_HOST, BENCH_PATH } from './veer.ts';

/** What one load run measured. */
export interface LoadResult {
  readonly tool: 'autocannon' | 'wrk';
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  /** Latency percentiles in milliseconds. */
  readonly p50: number;
  readonly p99: number;
  /** Non-2xx responses plus socket errors and timeouts; a healthy run has 0. */
  readonly errors: number;
}

/** How hard and how long to push. */
export interface LoadOptions {
  readonly port: number;
  readonly connections: number;
  readonly seconds: number;
}

/** The user ids the load cycles through (sticky keys for veer). */
export const USER_IDS = Array.from({ length: 16 }, (_, i) => `user-${1000 + i * 7919}`);

/** Headers every request carries, besides x-user-id. */
export const BASE_HEADERS = { host: BENCH_HOST, accept: 'application/json', 'user-agent': 'veer-bench' };

/** Drives `port` with autocannon; latency is recorded per response (µs precision, not autocannon's whole ms). */
export async function runAutocannon(options: LoadOptions): Promise<LoadResult> {
  const { result, latencies } = await autocannonRun({ url: `http://127.0.0.1:${options.port}`, connections: options.connections, seconds: options.seconds });
  const completed = result.requests.total;
  return {
    tool: 'autocannon',
    requests: completed,
    seconds: result.duration,
    rps: completed / result.duration,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    errors: result.non2xx + result.errors + result.timeouts,
  };
}

/**
 * One autocannon run of the bench request (GET BENCH_PATH, the user ids in
 * turn) against `url`; the latency of every response in ms, sorted, kept in
 * a growing typed array rather than autocannon's whole-ms histogram.
 */
export function autocannonRun(options: { url: string; servername?: string; connections: number; seconds: number }): Promise<{ result: autocannon.Result; latencies: Float64Array }> {
  let latencies = new Float64Array(1 << 16);
  let count = 0;
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        ...(options.servername !== undefined && { servername: options.servername }),
        connections: options.connections,
        duration: options.seconds,
        pipelining: 1,
        requests: USER_IDS.map((id) => ({ method: 'GET', path: BENCH_PATH, headers: { ...BASE_HEADERS, 'x-user-id': id } })),
      },
      (err, result) => (err ? reject(err) : resolve({ result, latencies: latencies.subarray(0, count).sort() })),
    );
    instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => {
      if (count === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[count++] = responseTime;
    });
  });
}

/** The `q` quantile of sorted values (NaN for none). */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** wrk's Lua script: same path, headers and user rotation as the autocannon run. */
export function buildWrkScript(): string {
  const ids = USER_IDS.map((id) => `"${id}"`).join(', ');
  // Canonical case: wrk.format() adds its own "Host" unless that exact key is set.
  const canonical = (name: string) => name.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());
  const headers = Object.entries(BASE_HEADERS)
    .map(([k, v]) => `wrk.headers["${canonical(k)}"] = "${v}"`)
    .join('\n');
  return `wrk.method = "GET"
wrk.path = "${BENCH_PATH}"
${headers}
local ids = { ${ids} }
local n = 0
request = function()
  n = n + 1
  wrk.headers["x-user-id"] = ids[(n % #ids) + 1]
  return wrk.format()
end
`;
}

let wrkScript: string | null = null;

/** Drives `port` with wrk (one thread); resolves with its parsed summary. */
export function runWrk(binary: string, options: LoadOptions): Promise<LoadResult> {
  if (wrkScript === null) {
    wrkScript = join(mkdtempSync(join(tmpdir(), 'veer-bench-wrk-')), 'bench.lua');
    writeFileSync(wrkScript, buildWrkScript());
  }
  const args = ['-t1', `-c${options.connections}`, `-d${options.seconds}s`, '--latency', '-s', wrkScript, `http://127.0.0.1:${options.port}`];
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), (options.seconds + 15) * 1000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const parsed = code === 0 ? parseWrkOutput(out) : null;
      if (parsed === null) reject(new Error(`wrk failed (exit ${code}):\n${out}`));
      else resolve(parsed);
    });
  });
}

/** Parses `wrk --latency` output; null when it is not a complete summary. */
export function parseWrkOutput(text: string): LoadResult | null {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(text);
  const p50 = /^\s*50%\s+([\d.]+)(us|ms|s)/m.exec(text);
  const p99 = /^\s*99%\s+([\d.]+)(us|ms|s)/m.exec(text);
  if (!total || !p50 || !p99) return null;
  const seconds = toMs(Number(total[2]), total[3]!) / 1000;
  const requests = Number(total[1]);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    tool: 'wrk',
    requests,
    seconds,
    rps: requests / seconds,
    p50: toMs(Number(p50[1]), p50[2]!),
    p99: toMs(Number(p99[1]), p99[2]!),
    errors: non2xx + socketErrors,
  };
}

function toMs(value: number, unit: string): number {
  switch (unit) {
    case 'us':
      return value / 1000;
    case 's':
      return value * 1000;
    case 'm':
      return value * 60_000;
    default:
      return value;
  }
}
