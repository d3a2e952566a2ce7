// Child processes of a bench run: every server under test runs in its own
// process so its CPU time can be read from /proc, and each one is stopped
// by its own PID (SIGTERM, then SIGKILL after a grace period).
//
//   run.ts ──spawn──> upstream.ts   prints {"ready":true,"port":N} on stdout
//          ──spawn──> bare-undici.ts / node-http-proxy.ts (same protocol)
//          ──spawn──> bin/veer.js serve   logs JSON "veer is serving" with listen
//          ──spawn──> nginx / haproxy     ready when its port accepts connections

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { connect, createServer, type AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

/** A server process started by the bench, with the port it serves on. */
export interface BenchChild {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  /** Everything it printed so far (for error messages). */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** How to recognise that a child is ready and which port it serves on. */
export type ReadyProbe = (line: string) => number | null;

/** Ready line of the bench's own servers: `{"ready":true,"port":N}`. */
export const readyLineProbe: ReadyProbe = (line) => {
  if (!line.startsWith('{')) return null;
  try {
    const msg = JSON.parse(line) as { ready?: boolean; port?: number };
    return msg.ready === true && typeof msg.port === 'number' ? msg.port : null;
  } catch {
    return null;
  }
};

/** Prints the ready line a parent's readyLineProbe waits for. */
export function announceReady(port: number): void {
  process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`);
}

/**
 * The main of a baseline proxy run as a child: reads `--upstream URL`, starts
 * the proxy, prints the ready line, and closes it and exits on SIGTERM.
 */
export async function runProxyChild(start: (upstream: string) => Promise<{ readonly port: number; close(): unknown }>): Promise<void> {
  const { values } = parseArgs({ options: { upstream: { type: 'string' } } });
  if (!values.upstream) throw new Error('--upstream URL is required');
  const proxy = await start(values.upstream);
  announceReady(proxy.port);
  process.once('SIGTERM', () => void Promise.resolve(proxy.close()).finally(() => process.exit(0)));
}

/** Spawns `command args`; resolves when `probe` finds the port in its output, or when `fixedPort` accepts. */
export function spawnChild(
  name: string,
  command: string,
  args: readonly string[],
  options: { probe?: ReadyProbe; fixedPort?: number; timeoutMs?: number; spawn?: SpawnOptions } = {},
): Promise<BenchChild> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options.spawn });
  let out = '';
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const handle = (port: number): BenchChild => ({
    name,
    child,
    pid: child.pid!,
    port,
    output: () => out,
    async stop(graceMs = 5000) {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => !exited && child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  });
  return new Promise((resolve, reject) => {
    let settled = false;
    let pending = '';
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!exited) child.kill('SIGKILL');
      reject(new Error(`${name}: ${why}\n${out.slice(-2000)}`));
    };
    const timer = setTimeout(() => fail(`not ready within ${options.timeoutMs ?? 15_000} ms`), options.timeoutMs ?? 15_000);
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      // Keep only the tail: a proxy that logs per request must not grow this without bound.
      out = (out + text).slice(-20_000);
      if (settled || !options.probe) return;
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const port = options.probe(line);
        if (port !== null) {
          settled = true;
          clearTimeout(timer);
          resolve(handle(port));
          return;
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (err) => fail(err.message));
    child.once('exit', (code, signal) => fail(`exited early (code ${code}, signal ${signal})`));
    if (options.fixedPort !== undefined) {
      const port = options.fixedPort;
      void waitForPort(port, options.timeoutMs ?? 15_000).then(
        () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve(handle(port));
        },
        (err: Error) => fail(err.message),
      );
    }
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for servers that need one in their config). */
export async function findFreePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolves once 127.0.0.1:`port` accepts a connection; native servers print no ready line. */
export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => (socket.destroy(), resolve(false)));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`port ${port} did not open within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
