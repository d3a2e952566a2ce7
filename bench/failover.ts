// `node bench/failover.ts`: what users see while one of a version's two
// endpoints dies under load. Two upstream processes serve one version; a
// quarter into each run the second one is killed (SIGKILL, as a node or a pod
// dies: its port refuses from then on). Three configs, each in its own run:
//
//   plain      no `resilience`: the dead endpoint's share of requests fails
//   retries    retries on (connect errors go to the other endpoint), no ejection
//   ejection   retries and outlier ejection (the defaults of `resilience: {}`)
//
// Reports requests, throughput, p50, p99 and the non-2xx answers of each run.
// Flags: --seconds N (default 8), --connections N (default 50), --out DIR.

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readyLineProbe, spawnChild, type BenchChild } from './lib/child.ts';
import { runAutocannon, type LoadResult } from './lib/load.ts';
import { BENCH_HOST, ROOT, spawnVeer } from './lib/veer.ts';

const { values: flags } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    connections: { type: 'string', default: '50' },
    out: { type: 'string', default: join(ROOT, 'bench', 'results') },
  },
});
const seconds = Number(flags.seconds);
const connections = Number(flags.connections);
const log = (s: string) => process.stderr.write(`failover: ${s}\n`);

const MODES = [
  ['plain', ''],
  ['retries', '    resilience: { failover: none, outlier: { maxEjectedPercent: 0 } }\n'],
  ['ejection', '    resilience: { failover: none }\n'],
] as const;

function configFor(origins: readonly string[], resilience: string, dir: string): string {
  return `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
state: { path: ${join(dir, 'state.json')} }
services:
  - name: api
    match: { hosts: [${BENCH_HOST}] }
    versions:
      - name: v1
        upstream: [${origins.map((o) => `"${o}"`).join(', ')}]
${resilience}`;
}

const upstreamChild = (name: string): Promise<BenchChild> => spawnChild(name, process.execPath, [join(ROOT, 'bench', 'lib', 'upstream.ts')], { probe: readyLineProbe });

interface Row extends LoadResult {
  readonly mode: string;
}

const rows: Row[] = [];
for (const [mode, resilience] of MODES) {
  const dir = mkdtempSync(join(tmpdir(), 'veer-failover-'));
  const [a, b] = await Promise.all([upstreamChild('upstream-a'), upstreamChild('upstream-b')]);
  const file = join(dir, 'veer.yaml');
  writeFileSync(file, configFor([`http://127.0.0.1:${a.port}`, `http://127.0.0.1:${b.port}`], resilience, dir));
  const veer = await spawnVeer(file, [], `veer-${mode}`);
  try {
    log(`${mode}: ${seconds} s, ${connections} connections; upstream-b dies at ${seconds / 4} s`);
    const kill = setTimeout(() => process.kill(b.pid, 'SIGKILL'), (seconds * 1000) / 4);
    const result = await runAutocannon({ port: veer.port, connections, seconds });
    clearTimeout(kill);
    rows.push({ mode, ...result });
    log(JSON.stringify(rows.at(-1)));
  } finally {
    await Promise.all([veer.stop(), a.stop(), b.stop()]);
  }
}

const lines = [
  `veer failover bench ${new Date().toISOString()}, node ${process.version}: one version, two endpoints, the second killed at ${seconds / 4} s of ${seconds} s`,
  '',
  '| config | requests | req/s | p50 ms | p99 ms | non-2xx |',
  '|---|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.mode} | ${r.requests} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.errors} |`),
];
process.stdout.write(`${lines.join('\n')}\n`);
mkdirSync(flags.out, { recursive: true });
writeFileSync(join(flags.out, `failover-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), `${JSON.stringify({ seconds, connections, rows }, null, 2)}\n`);
