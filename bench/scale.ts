// `node bench/scale.ts`: what veer costs as the number of services grows.
// For 1, 1 000 and 10 000 services (each two versions, a header rule and a
// sticky split, like bench/lib/veer.ts's) it starts the real `veer serve`,
// and measures, next to the goals:
//
//   ready        spawn -> "veer is serving"                           (goal: 10k <= 3 s, 1 <= 0.5 s)
//   RSS          resident memory once ready, process tree               (goal: 10k <= 300 MB, 1 <= 90 MB)
//   PUT          one weight change, admin PUT until its answer (which   (goal: 10k <= 2x the 1-service figure)
//                comes once the data plane serves the new table)
//   reload       SIGHUP after an edit -> "config reloaded"              (goal: 10k <= 3 s)
//   reload p99   latency of requests in flight during that reload       (goal: <= 50 ms)
//   /metrics     one scrape after traffic on a few services             (goal: 10k <= 1 s)
//
// Medians of --reps repetitions of the PUT; one start per size. Two more rows:
//
//   floor        Node with veer's run-time dependencies loaded and an idle HTTP
//                server: what no veer can go below on this machine (same run)
//   etcd         the largest size again with the etcd store (--etcd, on by
//                default when etcd is installed and not --quick): a replica
//                starting from etcd's records, and what one PUT writes there
//
// veer runs as users run it: bin/veer.js, which runs the build in dist/
// (`npm run build`) when it is there and current. Flags: --quick (1 and
// 1 000 services), --sizes 1,1000,10000, --workers N, --reps N, --etcd /
// --no-etcd, --out DIR, --cpu-prof DIR (a CPU profile of each veer, written
// when it stops).

import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import { request } from 'undici';
import { processTree, readRssBytes } from './lib/cpu.ts';
import { findFreePort, readyLineProbe, spawnChild, type BenchChild } from './lib/child.ts';
import { startUpstreamServer } from './lib/upstream.ts';
import { ROOT, VEER_BIN } from './lib/veer.ts';

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sizes: { type: 'string' },
    workers: { type: 'string', default: '1' },
    reps: { type: 'string', default: '7' },
    out: { type: 'string', default: join(ROOT, 'bench', 'results') },
    etcd: { type: 'boolean' },
    'cpu-prof': { type: 'string' },
  },
  allowNegative: true,
});
const sizes = (flags.sizes ?? (flags.quick ? '1,1000' : '1,1000,10000')).split(',').map(Number);
const workers = Number(flags.workers);
const reps = Number(flags.reps);
const ETCD_BIN = process.env.VEER_BENCH_ETCD_BIN ?? '/usr/bin/etcd';
const withEtcd = flags.etcd ?? (!flags.quick && existsSync(ETCD_BIN));
const log = (s: string) => process.stderr.write(`scale: ${s}\n`);

/** The config for `n` services over the upstream's two origins. */
/** Where the state lives: the file store in `dir`, or etcd. */
type StateAt = { readonly dir: string; readonly etcd?: { readonly endpoint: string; readonly prefix: string } };

function configFor(n: number, origins: readonly [string, string], at: StateAt, edit = 0): string {
  const state = at.etcd ? `state: { store: etcd, etcd: { endpoints: ["${at.etcd.endpoint}"], prefix: "${at.etcd.prefix}" } }` : `state: { path: ${join(at.dir, 'state.json')} }`;
  const lines = [`listen: 127.0.0.1:0`, `admin: { listen: 127.0.0.1:0 }`, `workers: ${workers}`, state, `log: { level: info }`, `services:`];
  for (let i = 0; i < n; i++) {
    // `edit` changes the last service's config weights: what a reload has to apply.
    const v2 = i === n - 1 ? 10 + edit : 10;
    lines.push(`  - name: svc-${i}
    match: { hosts: [svc-${i}.scale.internal] }
    versions:
      - { name: v1, upstream: "${origins[0]}" }
      - { name: v2, upstream: "${origins[1]}" }
    routes:
      - match: { header: { name: x-canary, value: "always" } }
        to: v2
    split:
      weights: { v1: ${100 - v2}, v2: ${v2} }
      sticky: { header: x-user-id }`);
  }
  return `${lines.join('\n')}\n`;
}

interface Row {
  services: number | string;
  readyMs: number;
  rssMb: number;
  putMs: number;
  reloadMs: number;
  reloadP99Ms: number;
  metricsMs: number;
  metricsSeries: number;
  /** etcd only: keys one PUT wrote, and in how many transactions. */
  etcdKeysPerPut?: number;
  etcdTxnsPerPut?: number;
  /** etcd only: which keys (service, history/*, replicas/*). */
  etcdKeys?: string[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function waitForLine(child: BenchChild, from: number, text: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      const line = child.output().slice(from).split('\n').find((l) => l.includes(text));
      if (line !== undefined) {
        clearInterval(poll);
        resolve(line);
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(poll);
        reject(new Error(`no "${text}" within ${timeoutMs} ms`));
      }
    }, 5);
  });
}

/** Requests to the data plane, `concurrency` at a time, until `until` resolves; their latencies in ms. */
async function loadDuring(port: number, n: number, until: Promise<unknown>, concurrency = 8): Promise<number[]> {
  const latencies: number[] = [];
  let done = false;
  void until.finally(() => (done = true));
  let i = 0;
  const worker = async () => {
    while (!done) {
      const host = `svc-${i++ % Math.min(n, 50)}.scale.internal`;
      const start = performance.now();
      const res = await request(`http://127.0.0.1:${port}/x`, { headers: { host, 'x-user-id': `u${i}` } });
      await res.body.dump();
      latencies.push(performance.now() - start);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return latencies;
}

async function measure(n: number, origins: readonly [string, string], etcd?: BenchEtcd): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'veer-scale-'));
  const file = join(dir, 'veer.yaml');
  const at: StateAt = { dir, ...(etcd && { etcd: { endpoint: etcd.endpoint, prefix: `/veer-scale-${n}/` } }) };
  if (etcd) await seedEtcd(etcd, at.etcd!.prefix, n);
  writeFileSync(file, configFor(n, origins, at));
  const spawnedAt = performance.now();
  const veer = await spawnChild(`veer-${n}`, process.execPath, [VEER_BIN, 'serve', '--config', file], {
    timeoutMs: 180_000,
    spawn: { cwd: ROOT, env: { ...process.env, VEER_LOG_FORMAT: 'json', ...(flags['cpu-prof'] && { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${flags['cpu-prof']}` }) } },
    probe: (line) => {
      if (!line.includes('veer is serving')) return null;
      const listen = (JSON.parse(line) as { listen?: string }).listen ?? '';
      return Number(listen.slice(listen.lastIndexOf(':') + 1)) || null;
    },
  });
  try {
    const readyMs = performance.now() - spawnedAt;
    const serving = JSON.parse(veer.output().split('\n').find((l) => l.includes('veer is serving'))!) as { admin: string };
    const admin = `http://${serving.admin}`;
    await new Promise((resolve) => setTimeout(resolve, 500)); // let start-up garbage be collected
    const rssMb = processTree(veer.pid).reduce((sum, pid) => sum + readRssBytes(pid), 0) / 1e6;

    const puts: number[] = [];
    const counted = etcd ? await etcd.countWrites(at.etcd!.prefix) : null;
    for (let r = 0; r < reps; r++) {
      const start = performance.now();
      const res = await request(`${admin}/api/v1/services/svc-0/weights`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ weights: { v1: 80 - r, v2: 20 + r } }),
      });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`PUT answered ${res.statusCode}`);
      puts.push(performance.now() - start);
    }
    const written = counted ? await counted() : null;

    writeFileSync(file, configFor(n, origins, at, 5));
    const from = veer.output().length;
    const reloadStart = performance.now();
    veer.child.kill('SIGHUP');
    const reloaded = waitForLine(veer, from, 'config reloaded', 120_000);
    const latencies = await loadDuring(veer.port, n, reloaded);
    await reloaded;
    const reloadMs = performance.now() - reloadStart;
    latencies.sort((a, b) => a - b);
    const reloadP99Ms = latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] ?? 0;

    const scrapeStart = performance.now();
    const scrape = await request(`${admin}/metrics`);
    const text = await scrape.body.text();
    const metricsMs = performance.now() - scrapeStart;
    const metricsSeries = text.split('\n').filter((l) => l.startsWith('veer_')).length;
    const row: Row = { services: etcd ? `${n}, etcd` : n, readyMs, rssMb, putMs: median(puts), reloadMs, reloadP99Ms, metricsMs, metricsSeries };
    if (written) Object.assign(row, { etcdKeysPerPut: written.keys.length / reps, etcdTxnsPerPut: written.revisions / reps, etcdKeys: [...new Set(written.keys)] });
    return row;
  } finally {
    await veer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The floor: Node with veer's run-time dependencies imported and an idle HTTP server listening. */
async function measureFloor(): Promise<Row> {
  const deps = ['undici/lib/dispatcher/pool.js', 'fastify', 'pino', 'prom-client', 'ajv', '@sinclair/typebox', 'js-yaml', 'chokidar', 're2js', 'commander'];
  const script = `for (const m of ${JSON.stringify(deps)}) await import(m);
const s = (await import('node:http')).createServer((q, r) => r.end()).listen(0, '127.0.0.1', () => console.log(JSON.stringify({ ready: true, port: s.address().port })));
process.once('SIGTERM', () => process.exit(0));`;
  const spawnedAt = performance.now();
  const child = await spawnChild('floor', process.execPath, ['--input-type=module', '-e', script], { spawn: { cwd: ROOT }, probe: readyLineProbe });
  try {
    const readyMs = performance.now() - spawnedAt;
    await new Promise((resolve) => setTimeout(resolve, 500));
    return { services: 'floor', readyMs, rssMb: readRssBytes(child.pid) / 1e6, putMs: Number.NaN, reloadMs: Number.NaN, reloadP99Ms: Number.NaN, metricsMs: Number.NaN, metricsSeries: 0 };
  } finally {
    await child.stop();
  }
}

/** An etcd of the bench's own, on loopback ports, with its data in a temp dir. */
interface BenchEtcd {
  readonly endpoint: string;
  /** Counts what is written under `prefix` until the returned function is called: keys (puts) and transactions (revisions). */
  countWrites(prefix: string): Promise<() => Promise<{ keys: string[]; revisions: number }>>;
  stop(): Promise<void>;
}

async function startEtcd(): Promise<BenchEtcd> {
  const dataDir = mkdtempSync(join(tmpdir(), 'veer-scale-etcd-'));
  const [clientPort, peerPort] = [await findFreePort(), await findFreePort()];
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = ['--name', 'scale', '--data-dir', dataDir, '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint];
  args.push('--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `scale=${peer}`, '--log-level', 'warn');
  const child = await spawnChild('etcd', ETCD_BIN, args, { fixedPort: clientPort, timeoutMs: 15_000 });
  const client = new Etcd3({ hosts: endpoint });
  return {
    endpoint,
    countWrites: async (prefix) => {
      const keys: string[] = [];
      const revisions = new Set<string>();
      const watcher = await client.watch().prefix(prefix).create();
      watcher.on('put', (kv) => {
        keys.push(kv.key.toString().slice(prefix.length).replace(/\/[^/]*$/, '/*'));
        revisions.add(kv.mod_revision);
      });
      return async () => {
        await new Promise((resolve) => setTimeout(resolve, 200)); // the last events in flight
        await watcher.cancel();
        return { keys, revisions: revisions.size };
      };
    },
    stop: async () => {
      client.close();
      await child.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Writes `n` service records (a weight change each) under `prefix`, as replicas before this one would have. */
async function seedEtcd(etcd: BenchEtcd, prefix: string, n: number): Promise<void> {
  const client = new Etcd3({ hosts: etcd.endpoint });
  try {
    const record = JSON.stringify({ weights: { v1: 85, v2: 15 } });
    for (let i = 0; i < n; i += 100) {
      const batch = Array.from({ length: Math.min(100, n - i) }, (_, j) => client.put(`${prefix}services/svc-${i + j}`).value(record).exec());
      await Promise.all(batch);
    }
  } finally {
    client.close();
  }
}

function formatTable(rows: readonly Row[]): string {
  // Each store is compared with its own 1-service row.
  const oneOf = (r: Row) => rows.find((o) => o.services === (typeof r.services === 'string' && r.services.endsWith('etcd') ? '1, etcd' : 1));
  const cell = (v: number, digits = 0) => v.toFixed(digits);
  const lines = [
    `| services | ready ms | RSS MB | PUT ms | PUT vs 1 service | reload ms | p99 during reload ms | /metrics ms | veer_ series |`,
    `|---:|---:|---:|---:|---:|---:|---:|---:|---:|`,
  ];
  for (const r of rows) {
    if (r.services === 'floor') {
      lines.push(`| floor: Node + dependencies, idle | ${cell(r.readyMs)} | ${cell(r.rssMb)} | | | | | | |`);
      continue;
    }
    const one = oneOf(r);
    const ratio = one ? `${(r.putMs / one.putMs).toFixed(2)}x` : '-';
    const etcdNote = r.etcdKeys === undefined ? '' : ` (${r.etcdTxnsPerPut} txn, ${r.etcdKeysPerPut} keys: ${r.etcdKeys.join(', ')})`;
    lines.push(
      `| ${r.services} | ${cell(r.readyMs)} | ${cell(r.rssMb)} | ${cell(r.putMs, 1)}${etcdNote} | ${ratio} | ${cell(r.reloadMs)} | ${cell(r.reloadP99Ms, 1)} | ${cell(r.metricsMs)} | ${r.metricsSeries} |`,
    );
  }
  lines.push(
    `| goal (10 000) | <= 3000 | <= 300 | | <= 2x | <= 3000 | <= 50 | <= 1000 | |`,
    `| goal (1) | <= 500 | <= 90 | | | | | | |`,
    `| goal (10 000, etcd) | <= 5000 | | one key | | | | | |`,
  );
  return lines.join('\n');
}

const upstream = await startUpstreamServer();
const origin = `http://127.0.0.1:${upstream.port}`;
const rows: Row[] = [];
try {
  log('floor: Node and the dependencies');
  rows.push(await measureFloor());
  for (const n of sizes) {
    log(`${n} services, workers: ${workers}`);
    rows.push(await measure(n, [origin, origin]));
    log(JSON.stringify(rows.at(-1)));
  }
  if (withEtcd) {
    const etcd = await startEtcd();
    try {
      for (const n of new Set([Math.min(...sizes), Math.max(...sizes)])) {
        log(`${n} services, etcd store`);
        rows.push(await measure(n, [origin, origin], etcd));
        log(JSON.stringify(rows.at(-1)));
      }
    } finally {
      await etcd.stop();
    }
  }
} finally {
  upstream.server.closeAllConnections();
  upstream.server.close();
}
const table = formatTable(rows);
process.stdout.write(`veer scale bench ${new Date().toISOString()}, workers: ${workers}, node ${process.version}\n\n${table}\n`);
mkdirSync(flags.out, { recursive: true });
writeFileSync(join(flags.out, `scale-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), `${JSON.stringify({ workers, rows }, null, 2)}\n`);
