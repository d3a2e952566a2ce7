// A real DNS server for tests: dnsmasq (Debian's dnsmasq-base) on a free
// loopback port, answering from a hosts file the test rewrites; SIGHUP makes
// it read the file again. TTL 0, so a resolver asks it anew every time.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promises as dns } from 'node:dns';
import { missingBinary } from './system-packages.ts';

export const DNSMASQ_BIN = process.env.VEER_TEST_DNSMASQ_BIN ?? '/usr/sbin/dnsmasq';

/** Why dnsmasq tests cannot run here, or null (throws under CI when it is missing). */
export function dnsmasqMissing(): string | null {
  return missingBinary(DNSMASQ_BIN, 'dnsmasq-base');
}

export interface TestDns {
  /** `127.0.0.1:PORT`, for `resolver.servers`. */
  readonly server: string;
  /** Replaces the records: name -> addresses. */
  setRecords(records: Record<string, readonly string[]>): Promise<void>;
  stop(): Promise<void>;
}

/** A loopback port free for UDP and for TCP (dnsmasq listens on both); another process may still take it before dnsmasq binds. */
async function freeDnsPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  const tcp = createServer();
  const tcpFree = await new Promise<boolean>((resolve) => {
    tcp.once('error', () => resolve(false));
    tcp.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (tcpFree) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return tcpFree ? port : freeDnsPort();
}

/** dnsmasq on a free port, answering; a port taken between the check and dnsmasq's bind is tried again with another. */
async function spawnDnsmasq(hosts: string, probe: string, attempt = 1): Promise<{ child: ChildProcess; server: string }> {
  const port = await freeDnsPort();
  const server = `127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    DNSMASQ_BIN,
    ['--keep-in-foreground', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts', `--addn-hosts=${hosts}`, '--pid-file=', '--user=root', '--local-ttl=0'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const resolver = new dns.Resolver({ timeout: 200, tries: 1 });
  resolver.setServers([server]);
  // Bounded wait: up to 5 s for the first answer.
  const deadline = Date.now() + 5000;
  for (;;) {
    if (child.exitCode !== null) {
      if (attempt < 5 && /address already in use/i.test(out)) return spawnDnsmasq(hosts, probe, attempt + 1);
      throw new Error(`dnsmasq exited at start: ${out}`);
    }
    const ok = await resolver.resolve4(probe).then(
      () => true,
      () => false,
    );
    if (ok) return { child, server };
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`dnsmasq did not answer within 5 s: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startDnsmasq(records: Record<string, readonly string[]>): Promise<TestDns> {
  const dir = mkdtempSync(join(tmpdir(), 'veer-dns-'));
  const hosts = join(dir, 'hosts');
  const write = (r: Record<string, readonly string[]>) =>
    writeFileSync(hosts, Object.entries(r).flatMap(([name, addresses]) => addresses.map((a) => `${a} ${name}\n`)).join(''), { mode: 0o644 });
  write(records);
  const { child, server } = await spawnDnsmasq(hosts, Object.keys(records)[0]!);
  return {
    server,
    async setRecords(next) {
      write(next);
      child.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 100));
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
