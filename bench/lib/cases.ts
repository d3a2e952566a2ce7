// The cases of a load run: what serves the load, in which process, and
// whose CPU counts. Every proxy is its own child process; "direct" hits
// the upstream itself and has no proxy CPU.

import { request } from 'node:http';
import { join } from 'node:path';
import { spawnChild, readyLineProbe, type BenchChild } from './child.ts';
import { findBinary, startHaproxy, startNginx } from './native.ts';
import { startOtlpSink } from './otlp-sink.ts';
import { ROOT, spawnVeer, writeVeerConfig } from './veer.ts';

/** A running case: the port to load and the process whose CPU is the proxy's (null for direct). */
export interface BenchCase {
  readonly name: string;
  readonly port: number;
  readonly proxy: BenchChild | null;
}

/** The shared upstream: one process listening on two ports (veer's v1 and v2 origins). */
export interface BenchUpstream {
  readonly child: BenchChild;
  readonly ports: readonly [number, number];
}

/** Starts the upstream child and learns both of its ports. */
export async function startUpstream(): Promise<BenchUpstream> {
  let ports: [number, number] = [0, 0];
  const child = await spawnChild('upstream', process.execPath, [join(ROOT, 'bench', 'lib', 'upstream.ts'), '--ports', '2'], {
    probe: (line) => {
      const port = readyLineProbe(line);
      if (port !== null) ports = (JSON.parse(line) as { ports: [number, number] }).ports;
      return port;
    },
  });
  return { child, ports };
}

function startNodeProxy(name: string, file: string, upstreamPort: number): Promise<BenchChild> {
  return spawnChild(name, process.execPath, [join(ROOT, 'bench', 'lib', file), '--upstream', `http://127.0.0.1:${upstreamPort}`], {
    probe: readyLineProbe,
  });
}

/** The Node proxies veer is compared with, each a child running bench/lib/FILE. */
const NODE_BASELINES = [
  ['bare-undici', 'bare-undici.ts'],
  ['bare-undici-stream', 'bare-undici-stream.ts'],
  ['node-http-proxy', 'node-http-proxy.ts'],
  ['fastify-http-proxy', 'fastify-http-proxy.ts'],
] as const;

/** Every case name `--cases` accepts. */
export const CASE_NAMES: readonly string[] = ['veer', 'veer-workers-2', ...NODE_BASELINES.map(([name]) => name), 'nginx', 'haproxy', 'veer-access-log', 'veer-resilience', 'veer-tracing'];

/** Cases that run only when `--cases` names them. */
const OPT_IN: ReadonlySet<string> = new Set(['veer-access-log', 'veer-resilience', 'veer-tracing']);

/** Why a case did not run, for the report. */
export interface SkippedCase {
  readonly name: string;
  readonly reason: string;
}

/**
 * Starts every case in the order they are measured: direct, veer (and
 * veer-access-log when named), the Node baselines, then nginx and haproxy
 * when `native` and installed.
 */
export async function startCases(
  upstream: BenchUpstream,
  native: boolean,
  workers2 = true,
  only: ReadonlySet<string> | null = null,
  baselineRoot: string | null = null,
): Promise<{ cases: BenchCase[]; skipped: SkippedCase[] }> {
  const [v1, v2] = upstream.ports;
  const cases: BenchCase[] = [{ name: 'direct', port: v1, proxy: null }];
  const skipped: SkippedCase[] = [];
  const add = (proxy: BenchChild) => cases.push({ name: proxy.name, port: proxy.port, proxy });
  // --cases: the named ones only (direct always runs: it is the machine's ceiling).
  const wanted = (name: string) => (only === null ? !OPT_IN.has(name) : only.has(name));
  const origins = [`http://127.0.0.1:${v1}`, `http://127.0.0.1:${v2}`] as const;
  try {
    if (wanted('veer')) add(await spawnVeer(writeVeerConfig(origins)));
    // The same config with `log.access: true`, right after veer so the two are measured side by
    // side: what the access line costs per request. Its lines go to the bench through a pipe,
    // as they would to a container runtime.
    if (wanted('veer-access-log')) add(await spawnVeer(writeVeerConfig(origins, { accessLog: true }), [], 'veer-access-log'));
    else skipped.push({ name: 'veer-access-log', reason: 'opt-in: --cases veer,veer-access-log' });
    // `resilience: {}` on every service: what the safety nets cost when nothing fails.
    if (wanted('veer-resilience')) add(await spawnVeer(writeVeerConfig(origins, { resilience: true }), [], 'veer-resilience'));
    else skipped.push({ name: 'veer-resilience', reason: 'opt-in: --cases veer,veer-resilience' });
    // `tracing:` sampling every request and exporting every span to a collector that takes them.
    if (wanted('veer-tracing')) add(await spawnVeer(writeVeerConfig(origins, { tracing: await startOtlpSink() }), [], 'veer-tracing'));
    else skipped.push({ name: 'veer-tracing', reason: 'opt-in: --cases veer,veer-tracing' });
    // --baseline-veer: the same config served by another checkout (an earlier commit), for A/B runs.
    if (baselineRoot !== null) add(await spawnVeer(writeVeerConfig(origins), [], 'veer-baseline', baselineRoot));
    // The same config with `workers: 2`: its CPU is the primary's and both workers'.
    if (!wanted('veer-workers-2')) skipped.push({ name: 'veer-workers-2', reason: 'not in --cases' });
    else if (workers2) add(await spawnVeer(writeVeerConfig(origins, { workers: 2 }), [], 'veer-workers-2'));
    else skipped.push({ name: 'veer-workers-2', reason: 'off in this run (--quick)' });
    for (const [name, file] of NODE_BASELINES) if (wanted(name)) add(await startNodeProxy(name, file, v1));
    for (const [name, start] of [
      ['nginx', startNginx],
      ['haproxy', startHaproxy],
    ] as const) {
      const binary = findBinary(name);
      if (!wanted(name)) skipped.push({ name, reason: 'not in --cases' });
      else if (!native) skipped.push({ name, reason: 'native proxies off in this run (--quick or --no-native)' });
      else if (binary === null) skipped.push({ name, reason: `${name} is not installed (--with-native installs it with apt-get)` });
      else {
        // A native proxy that will not start (sandbox limits, port clash) is a skipped row, not a failed run.
        try {
          add(await start(binary, v1));
        } catch (err) {
          skipped.push({ name, reason: `failed to start: ${(err as Error).message.split('\n').slice(0, 4).join(' ')}` });
        }
      }
    }
  } catch (err) {
    await stopCases(cases);
    throw err;
  }
  return { cases, skipped };
}

/** Stops every proxy child by its PID (the upstream is stopped by its owner). */
export async function stopCases(cases: readonly BenchCase[]): Promise<void> {
  await Promise.all(cases.map((c) => c.proxy?.stop()));
}

/** One request through a case; throws unless it answers 200 (catches a miswired case before timing it). */
export async function checkCase(c: BenchCase, headers: Record<string, string>, path: string): Promise<void> {
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: c.port, path, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.on('error', (err) => reject(new Error(`${c.name} failed the bench request: ${err.message}${c.proxy ? `\n${c.proxy.output().slice(-2000)}` : ''}`)));
    req.end();
  });
  if (status !== 200) throw new Error(`${c.name} answered ${status} to the bench request, expected 200${c.proxy ? `\n${c.proxy.output().slice(-2000)}` : ''}`);
}
