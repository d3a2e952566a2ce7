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
// Medians of --reps repetitions of the PUT; one start per size. Flags:
// --quick (1 and 1 000 services), --sizes 1,1000,10000, --workers N, --out DIR.

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { processTree, readRssBytes } from './lib/cpu.ts';
import { spawnChild, type BenchChild } from './lib/child.ts';
import { startUpstreamServer } from './lib/upstream.ts';
import { ROOT, VEER_BIN } from './lib/veer.ts';

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sizes: { type: 'string' },
    workers: { type: 'string', default: '1' },
    reps: { type: 'string', default: '7' },
    out: { type: 'string', default: join(ROOT, 'bench', 'results') },
  },
});
const sizes = (flags.sizes ?? (flags.quick ? '1,1000' : '1,1000,10000')).split(',').map(Number);
const workers = Number(flags.workers);
const reps = Number(flags.reps);
const log = (s: string) => process.stderr.write(`scale: ${s}\n`);

/** The config for `n` services over the upstream's two origins. */
function configFor(n: number, origins: readonly [string, string], dir: string, edit = 0): string {
  const lines = [`listen: 127.0.0.1:0`, `admin: { listen: 127.0.0.1:0 }`, `workers: ${workers}`, `state: { path: ${join(dir, 'state.json')} }`, `log: { level: info }`, `services:`];
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
  services: number;
  readyMs: number;
  rssMb: number;
  putMs: number;
  reloadMs: number;
  reloadP99Ms: number;
  metricsMs: number;
  metricsSeries: number;
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

async function measure(n: number, origins: readonly [string, string]): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'veer-scale-'));
  const file = join(dir, 'veer.yaml');
  writeFileSync(file, configFor(n, origins, dir));
  const spawnedAt = performance.now();
  const veer = await spawnChild(`veer-${n}`, process.execPath, [VEER_BIN, 'serve', '--config', file], {
    timeoutMs: 180_000,
    spawn: { cwd: ROOT, env: { ...process.env, VEER_LOG_FORMAT: 'json' } },
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

    writeFileSync(file, configFor(n, origins, dir, 5));
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
    return { services: n, readyMs, rssMb, putMs: median(puts), reloadMs, reloadP99Ms, metricsMs, metricsSeries };
  } finally {
    await veer.stop();
  }
}

function formatTable(rows: readonly Row[]): string {
  const one = rows.find((r) => r.services === 1);
  const cell = (v: number, digits = 0) => v.toFixed(digits);
  const lines = [
    `| services | ready ms | RSS MB | PUT ms | PUT vs 1 service | reload ms | p99 during reload ms | /metrics ms | veer_ series |`,
    `|---:|---:|---:|---:|---:|---:|---:|---:|---:|`,
  ];
  for (const r of rows) {
    const ratio = one ? `${(r.putMs / one.putMs).toFixed(2)}x` : '-';
    lines.push(`| ${r.services} | ${cell(r.readyMs)} | ${cell(r.rssMb)} | ${cell(r.putMs, 1)} | ${ratio} | ${cell(r.reloadMs)} | ${cell(r.reloadP99Ms, 1)} | ${cell(r.metricsMs)} | ${r.metricsSeries} |`);
  }
  lines.push(
    `| goal (10 000) | <= 3000 | <= 300 | | <= 2x | <= 3000 | <= 50 | <= 1000 | |`,
    `| goal (1) | <= 500 | <= 90 | | | | | | |`,
  );
  return lines.join('\n');
}

const upstream = await startUpstreamServer();
const origin = `http://127.0.0.1:${upstream.port}`;
const rows: Row[] = [];
try {
  for (const n of sizes) {
    log(`${n} services, workers: ${workers}`);
    rows.push(await measure(n, [origin, origin]));
    log(JSON.stringify(rows.at(-1)));
  }
} finally {
  upstream.server.closeAllConnections();
  upstream.server.close();
}
const table = formatTable(rows);
process.stdout.write(`veer scale bench ${new Date().toISOString()}, workers: ${workers}, node ${process.version}\n\n${table}\n`);
mkdirSync(flags.out, { recursive: true });
writeFileSync(join(flags.out, `scale-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), `${JSON.stringify({ workers, rows }, null, 2)}\n`);
