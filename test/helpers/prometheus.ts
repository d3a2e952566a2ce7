// A real Prometheus for tests: Debian's /usr/bin/prometheus on a free
// 127.0.0.1 port with a temp data dir, scraping the given targets, stopped
// in teardown. Tests that need it skip with a clear message when it is not
// installed, and fail under CI (system-packages.ts; .ci/apt-packages lists
// prometheus).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingBinary } from './system-packages.ts';
import { freePort } from './upstreams.ts';

/** The Prometheus binary (VEER_TEST_PROMETHEUS overrides, e.g. for a downloaded release). */
export const PROMETHEUS_BIN = process.env.VEER_TEST_PROMETHEUS ?? '/usr/bin/prometheus';

/** Why Prometheus tests cannot run here, or null when they can (throws under CI when it is missing). */
export function prometheusMissing(): string | null {
  return missingBinary(PROMETHEUS_BIN, 'prometheus');
}

/** A running Prometheus. */
export interface TestPrometheus {
  /** Its HTTP API, e.g. http://127.0.0.1:9090. */
  readonly url: string;
  /** Instant query now; the samples of a vector answer. */
  query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** Resolves true once every target has been scraped up. */
  waitForTargets(timeoutMs?: number): Promise<boolean>;
  /** What Prometheus printed, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/** Starts Prometheus scraping `targets` (host:port, each its own job) every `scrapeMs`, on `port` (default: a free one). */
export async function startPrometheus(targets: Readonly<Record<string, string>>, options: { scrapeMs?: number; port?: number } = {}): Promise<TestPrometheus> {
  const scrapeMs = options.scrapeMs ?? 200;
  const dir = mkdtempSync(join(tmpdir(), 'veer-prometheus-'));
  const jobs = Object.entries(targets).map(([job, target]) => `  - job_name: ${job}\n    static_configs: [{ targets: ["${target}"] }]`);
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [`global: { scrape_interval: ${scrapeMs}ms, scrape_timeout: ${Math.max(50, scrapeMs - 50)}ms, evaluation_interval: 1s }`, 'scrape_configs:', ...jobs, ''].join('\n'),
  );
  const port = options.port ?? (await freePort());
  const child: ChildProcess = spawn(
    PROMETHEUS_BIN,
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const url = `http://127.0.0.1:${port}`;

  const query = async (promql: string) => {
    const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: promql })}`);
    const body = (await res.json()) as { status: string; error?: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    if (body.status !== 'success') throw new Error(`query failed (${body.error}): ${promql}`);
    return body.data!.result;
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const waitForTargets = async (timeoutMs = 15_000) => {
    const deadline = Date.now() + timeoutMs;
    const want = Object.keys(targets).length;
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        if ((await query('up == 1')).length >= want) return true;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  };
  return { url, query, waitForTargets, output: () => out, stop };
}
