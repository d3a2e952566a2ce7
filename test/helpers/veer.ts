// Starting veer for tests: in-process on a temp config, or as a child
// process of the real `veer` binary.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLogger } from '../../src/log/index.ts';
import { startVeer, type Veer } from '../../src/main.ts';

/** Root of the repository. */
export const ROOT = resolve(import.meta.dirname, '..', '..');
/** The veer binary. */
export const VEER_BIN = join(ROOT, 'bin', 'veer.js');
/** Makes the binary run the TypeScript sources, never a build that may be older (bin/veer.js). */
export const FROM_SOURCE = { VEER_FROM_SOURCE: '1' } as const;

/** Writes `yaml` to a fresh temp dir and returns the file's path. */
export function writeConfig(yaml: string, name = 'veer.yaml'): string {
  const dir = mkdtempSync(join(tmpdir(), 'veer-test-'));
  const file = join(dir, name);
  writeFileSync(file, yaml);
  return file;
}

/** A config with one service over the given versions; listeners on free ports. */
export function serviceConfig(opts: {
  versions: Record<string, string>;
  weights?: Record<string, number>;
  extra?: string;
  sticky?: string;
  timeouts?: string;
  top?: string;
}): string {
  const versions = Object.entries(opts.versions)
    .map(([name, url]) => `      - name: ${name}\n        upstream: ${url}`)
    .join('\n');
  const weights = opts.weights ?? Object.fromEntries(Object.keys(opts.versions).map((v, i) => [v, i === 0 ? 100 : 0]));
  return `listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
log: { level: silent }
drainTimeout: 5s
${opts.top ?? ''}
services:
  - name: svc
    versions:
${versions}
    split:
      weights: ${JSON.stringify(weights)}
${opts.sticky ? `      sticky: ${opts.sticky}\n` : ''}${opts.timeouts ? `    timeouts: ${opts.timeouts}\n` : ''}${opts.extra ?? ''}`;
}

/** A config of services with one version (v1) each: [name, the `match` mapping, upstream URL]. */
export function oneVersionServices(services: readonly (readonly [name: string, match: string, url: string])[]): string {
  const blocks = services.map(([name, match, url]) => `  - name: ${name}\n    match: ${match}\n    versions:\n      - name: v1\n        upstream: ${url}\n`);
  return `listen: 127.0.0.1:0\nadmin: { listen: 127.0.0.1:0 }\nlog: { level: silent }\nservices:\n${blocks.join('')}`;
}

/** A veer started in this process, with its URLs. */
export interface RunningVeer {
  readonly veer: Veer;
  readonly url: string;
  readonly adminUrl: string;
  readonly configPath: string;
  stop(): Promise<void>;
}

/** Starts veer in-process on a config file, logging nothing; tests that restart veer call it twice. */
export function startVeerOn(configPath: string, options: { watch?: boolean } = {}): Promise<Veer> {
  return startVeer({ configPath, log: createLogger('silent', { pretty: false }), watch: options.watch ?? false });
}

/** Starts veer in-process on `yaml` (written to a temp file). */
export async function runVeer(yaml: string, options: { watch?: boolean } = {}): Promise<RunningVeer> {
  const configPath = writeConfig(yaml);
  const veer = await startVeerOn(configPath, options);
  return {
    veer,
    configPath,
    url: `http://127.0.0.1:${veer.dataAddress.port}`,
    adminUrl: `http://127.0.0.1:${veer.adminAddress.port}`,
    stop: async () => {
      await veer.stop();
    },
  };
}

/** A veer child process. */
export interface VeerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  /** Resolves with the first JSON log line whose msg matches. */
  waitForLog(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/** Spawns `veer ARGS` (`bin`: another copy of bin/veer.js) with the project's Node; logs as JSON. */
export function spawnVeer(args: string[], env: NodeJS.ProcessEnv = {}, bin = VEER_BIN): VeerProcess {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...FROM_SOURCE, VEER_LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let partial = '';
  const records: Record<string, unknown>[] = [];
  // Each wait consumes the first matching record after the previous match,
  // so waiting twice for the same message finds two occurrences.
  let consumed = 0;
  const waiters: { msg: string; resolve: (v: Record<string, unknown>) => void }[] = [];
  const settle = () => {
    while (waiters.length > 0) {
      const waiter = waiters[0]!;
      const index = records.findIndex((r, i) => i >= consumed && r.msg === waiter.msg);
      if (index === -1) return;
      consumed = index + 1;
      waiters.shift();
      waiter.resolve(records[index]!);
    }
  };
  const onData = (chunk: Buffer) => {
    const text = chunk.toString();
    out += text;
    const lines = (partial + text).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        records.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log record
      }
    }
    settle();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolveExit) => child.on('exit', (code) => resolveExit(code)));
  return {
    child,
    pid: child.pid!,
    output: () => out,
    exited,
    waitForLog(msg, timeoutMs = 15_000) {
      return new Promise((resolveLog, reject) => {
        const timer = setTimeout(() => reject(new Error(`no log "${msg}" within ${timeoutMs} ms; output:\n${out}`)), timeoutMs);
        waiters.push({
          msg,
          resolve: (v) => {
            clearTimeout(timer);
            resolveLog(v);
          },
        });
        settle();
      });
    },
  };
}

/** Starts veer in-process for one test and stops it when that test ends. */
export async function runVeerIn(t: { teardown(fn: () => unknown): void }, yaml: string, options: { watch?: boolean } = {}): Promise<RunningVeer> {
  const veer = await runVeer(yaml, options);
  t.teardown(() => veer.stop());
  return veer;
}

/**
 * `veer serve --config FILE` as a child process, stopped when `t` ends:
 * SIGTERM and its exit, or with `workers`, SIGKILL by pid of the primary and
 * of every worker in `workerPids` (a test adds replacements it sees).
 * Resolves once it serves, with its "veer is serving" record.
 */
export async function serveInChild(
  t: { teardown(fn: () => unknown): void },
  configPath: string,
  options: { workers?: number; env?: NodeJS.ProcessEnv; bin?: string } = {},
): Promise<{ veer: VeerProcess; serving: Record<string, unknown>; workerPids: number[] }> {
  const veer = spawnVeer(['serve', '--config', configPath], options.env, options.bin);
  const workerPids: number[] = [];
  if (options.workers === undefined) {
    t.teardown(async () => {
      veer.child.kill('SIGTERM');
      await veer.exited;
    });
  } else {
    t.teardown(() => {
      for (const pid of [veer.pid, ...workerPids]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    });
    for (let i = 0; i < options.workers; i++) workerPids.push(Number((await veer.waitForLog('worker started')).workerPid));
  }
  return { veer, serving: await veer.waitForLog('veer is serving'), workerPids };
}
