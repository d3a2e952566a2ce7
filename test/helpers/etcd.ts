// A real etcd for tests: Debian's /usr/bin/etcd on free 127.0.0.1 ports with
// a temp data dir, killed by PID in teardown. Tests that need it skip with a
// clear message when it is not installed, and fail under CI
// (system-packages.ts; .ci/apt-packages lists etcd-server).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { missingBinary } from './system-packages.ts';
import { freePort } from './upstreams.ts';

/** Where Debian's etcd-server package puts the binary. */
export const ETCD_BIN = process.env.VEER_TEST_ETCD_BIN ?? '/usr/bin/etcd';

/** Why etcd tests cannot run here, or null when they can. */
export function etcdMissing(): string | null {
  return missingBinary(ETCD_BIN, 'etcd-server');
}

/** A running etcd that a test can stop and start again on the same ports and data. */
export interface TestEtcd {
  /** The client URL, e.g. http://127.0.0.1:23790. */
  readonly endpoint: string;
  /** PID of the current etcd process (null while stopped). */
  pid(): number | null;
  /** Kills etcd (SIGKILL, by PID) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data dir; resolves once it answers. */
  start(): Promise<void>;
  /** Stops it for good and removes its data dir. */
  destroy(): Promise<void>;
  /** What etcd printed, for failure messages. */
  output(): string;
}

/** Server side of TLS to clients: etcd's certificate and key, and the CA whose client certificates it requires. */
export interface EtcdTlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/**
 * Starts a single-member etcd on free ports; resolves once /health answers.
 * With `tls`, clients need https:// and a certificate from `tls.ca`
 * (mutual TLS); /health is then polled on a plain-http metrics port.
 */
export async function startEtcd(options: { tls?: EtcdTlsFiles } = {}): Promise<TestEtcd> {
  const dataDir = mkdtempSync(join(tmpdir(), 'veer-etcd-'));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const endpoint = `${options.tls ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const { tls } = options;
  const healthUrl = tls ? `http://127.0.0.1:${await freePort()}` : endpoint;
  const tlsFlags = tls
    ? ['--cert-file', tls.cert, '--key-file', tls.key, '--trusted-ca-file', tls.ca, '--client-cert-auth', '--listen-metrics-urls', healthUrl]
    : [];
  let child: ChildProcess | null = null;
  let out = '';

  const start = async () => {
    const proc = spawn(
      ETCD_BIN,
      [
        '--name', 'default',
        '--data-dir', dataDir,
        '--listen-client-urls', endpoint,
        '--advertise-client-urls', endpoint,
        '--listen-peer-urls', peer,
        '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `default=${peer}`,
        '--log-level', 'warn',
        ...tlsFlags,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (out.length > 200_000) out = out.slice(-100_000);
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    let exited = false;
    proc.once('exit', () => {
      exited = true;
    });
    // Bounded wait: up to 10 s for /health.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`etcd exited at start:\n${out}`);
      try {
        const res = await request(`${healthUrl}/health`, { headersTimeout: 500, bodyTimeout: 500 });
        const body = await res.body.text();
        if (res.statusCode === 200 && body.includes('true')) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`etcd did not become healthy within 10 s:\n${out}`);
  };

  const stop = async () => {
    const proc = child;
    child = null;
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    process.kill(proc.pid!, 'SIGKILL');
    await exited;
  };

  await start();
  return {
    endpoint,
    pid: () => child?.pid ?? null,
    stop,
    start,
    destroy: async () => {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
    output: () => out,
  };
}

let prefixCounter = 0;

/** A key prefix no other test uses, e.g. /veer-test/1234-1/. */
export function uniquePrefix(): string {
  return `/veer-test/${process.pid}-${++prefixCounter}-${Date.now().toString(36)}/`;
}
