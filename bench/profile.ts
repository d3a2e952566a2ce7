// Profiles veer under the bench load: spawns the real binary with
// `node --cpu-prof`, drives it with autocannon, stops it with SIGTERM (so
// V8 writes the profile on exit) and prints the top self-time functions,
// the hot-path functions' inclusive share, and self time by file/package.
//
// `node bench/profile.ts [--proxy veer|veer-resilience|bare-undici|node-http-proxy] [--tls] [--seconds 10]
//  [--dir /tmp/veer-prof] [--top 15] [--profile FILE [--skip-ms N]]` (--tls: over the
// proxy's HTTPS listener, veer's or the bare proxy's; self times are also per response, so
// two profiles read side by side; --profile
// only summarises an existing .cpuprofile). The baselines can be profiled the
// same way, to tell veer's own cost from what every Node proxy pays.

import { appendFileSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startUpstream } from './lib/cases.ts';
import { findFreePort, readyLineProbe, spawnChild, type BenchChild } from './lib/child.ts';
import { readCpuProfile, summarizeCpuProfile, type ProfileEntry } from './lib/cpuprofile.ts';
import { runAutocannon } from './lib/load.ts';
import { formatMarkdownTable } from './lib/table.ts';
import { makeBenchPki } from './lib/tls-cases.ts';
import { runAutocannonHttps } from './lib/tls-load.ts';
import { ROOT, spawnVeer, writeVeerConfig } from './lib/veer.ts';

/** Functions whose inclusive share answers "what does each stage of a request cost". */
export const STAGES = [
  'onRequest',
  'routeRequest',
  'forwardRequest',
  'buildUpstreamHeaders',
  'onResponseStart',
  'buildClientHeaders',
  'onResponseData',
  'onResponseEnd',
  'dispatch',
  'writeHead',
  'parserOnIncoming',
  'parserOnHeadersComplete',
  'onStreamRead',
];

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    dir: { type: 'string', default: '/tmp/veer-prof' },
    top: { type: 'string', default: '15' },
    profile: { type: 'string' },
    proxy: { type: 'string', default: 'veer' },
    'skip-ms': { type: 'string', default: '0' },
    tls: { type: 'boolean', default: false },
  },
});

/** Milliseconds from spawning the proxy to the end of the warm-up: start-up samples left out of the summary. */
let skipMs = 0;
/** Responses in the profiled load (0 when only summarising a file): per-request figures need it. */
let requests = 0;

async function recordProfile(): Promise<string> {
  mkdirSync(values.dir, { recursive: true });
  const before = new Set(readdirSync(values.dir));
  const upstream = await startUpstream();
  try {
    const [v1, v2] = upstream.ports;
    const flags = ['--cpu-prof', '--cpu-prof-dir', values.dir];
    const spawnedAt = performance.now();
    let proxy: BenchChild;
    const origins = [`http://127.0.0.1:${v1}`, `http://127.0.0.1:${v2}`] as const;
    // --tls: the proxy's HTTPS listener (veer's `tls:`, or the bare proxy behind https.createServer), loaded over TLS.
    const pki = values.tls ? makeBenchPki() : null;
    let port: number;
    if (values.proxy === 'veer' || values.proxy === 'veer-resilience') {
      const file = writeVeerConfig(origins, { resilience: values.proxy === 'veer-resilience' });
      const tlsPort = pki === null ? 0 : await findFreePort();
      // A top-level key after the services list: the generated config ends with it.
      if (pki !== null) appendFileSync(file, `tls:\n  listen: 127.0.0.1:${tlsPort}\n  certificates:\n    - { cert: ${pki.serverCert}, key: ${pki.serverKey} }\n`);
      proxy = await spawnVeer(file, flags);
      port = pki === null ? proxy.port : tlsPort;
    } else if (values.proxy === 'bare-undici' || values.proxy === 'node-http-proxy') {
      if (pki !== null && values.proxy !== 'bare-undici') throw new Error('--tls profiles veer and bare-undici (over https.createServer)');
      const script = join(ROOT, 'bench', 'lib', pki === null ? `${values.proxy}.ts` : 'bare-undici-https.ts');
      const env = pki === null ? process.env : { ...process.env, VEER_BENCH_TLS_CERT: pki.serverCert, VEER_BENCH_TLS_KEY: pki.serverKey };
      proxy = await spawnChild(values.proxy, process.execPath, [...flags, script, '--upstream', `http://127.0.0.1:${v1}`], { probe: readyLineProbe, spawn: { env } });
      port = proxy.port;
    } else throw new Error(`--proxy must be veer, veer-resilience, bare-undici or node-http-proxy, not ${values.proxy}`);
    try {
      const load = { port, connections: Number(values.connections), seconds: Number(values.seconds) };
      const run = pki === null ? runAutocannon : runAutocannonHttps;
      await run({ ...load, seconds: 2 }); // warm-up: JIT and pools settle; left out of the summary
      skipMs = performance.now() - spawnedAt;
      const r = await run(load);
      requests = r.requests;
      process.stderr.write(`profile load on ${values.proxy}${pki === null ? '' : ' over TLS'}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, errors ${r.errors}\n`);
    } finally {
      await proxy.stop(15_000);
    }
  } finally {
    await upstream.child.stop();
  }
  const fresh = readdirSync(values.dir).filter((f) => f.endsWith('.cpuprofile') && !before.has(f));
  if (fresh.length === 0) throw new Error(`veer wrote no .cpuprofile into ${values.dir}`);
  return fresh.map((f) => join(values.dir, f)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0]!;
}

/** Self time per response in µs, so two profiles (veer and a baseline) read side by side; '-' without a request count. */
const perRequest = (ms: number) => (requests > 0 ? ((ms * 1000) / requests).toFixed(2) : '-');

function table(entries: readonly ProfileEntry[], withWhere: boolean): string {
  const header = withWhere ? ['#', 'function', 'where', 'self ms', 'self µs/req', 'self %', 'total %'] : ['#', 'origin', 'self ms', 'self µs/req', 'self %'];
  const rows = entries.map((e, i) =>
    withWhere
      ? [String(i + 1), e.name, e.where, e.selfMs.toFixed(0), perRequest(e.selfMs), e.selfPct.toFixed(1), e.totalPct.toFixed(1)]
      : [String(i + 1), e.name, e.selfMs.toFixed(0), perRequest(e.selfMs), e.selfPct.toFixed(1)],
  );
  return formatMarkdownTable([header, ...rows], withWhere ? [true, false, false, true, true, true, true] : [true, false, true, true, true]);
}

const file = values.profile ?? (await recordProfile());
const summary = summarizeCpuProfile(readCpuProfile(file), values.profile ? Number(values['skip-ms']) : skipMs);
const top = Number(values.top);
const stages = STAGES.map((name) => summary.functions.filter((f) => f.name === name).sort((a, b) => b.totalPct - a.totalPct)[0]).filter(
  (e): e is ProfileEntry => e !== undefined,
);
process.stdout.write(
  `${file}: ${(summary.totalMs / 1000).toFixed(1)} s of non-idle samples after the first ${(skipMs || Number(values['skip-ms'])).toFixed(0)} ms${requests > 0 ? `, ${requests} responses: ${perRequest(summary.totalMs)} µs each` : ''}\n\n`,
);
process.stdout.write(`top ${top} functions by self time\n\n${table(summary.functions.slice(0, top), true)}\n\n`);
process.stdout.write(`request stages, inclusive\n\n${table(stages, true)}\n\n`);
process.stdout.write(`self time by origin\n\n${table(summary.origins.slice(0, top), false)}\n`);
process.exit(0);
