// Reads a V8 .cpuprofile (what `node --cpu-prof` writes) and ranks
// functions by self time and by inclusive time, and files/packages by
// self time, so a profile can be summarised without opening DevTools.
//
//   profile.nodes:   call tree, each { id, callFrame, children }
//   profile.samples: node id per sample; profile.timeDeltas: µs before each sample

import { readFileSync } from 'node:fs';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

/** The parts of a V8 CPU profile this summary reads. */
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** One function or file with its share of the profile. */
export interface ProfileEntry {
  readonly name: string;
  readonly where: string;
  readonly selfMs: number;
  readonly selfPct: number;
  readonly totalPct: number;
}

/** Where a frame comes from: src file, package, or node internal area; grouping key for the file table. */
export function frameOrigin(url: string): string {
  if (url === '') return '(native/VM)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const src = /\/work\/[^/]+\/(src\/.*|bench\/.*)$/.exec(url) ?? /((?:src|bench)\/[^/]+\/[^/]+\.ts)$/.exec(url);
  if (src) return src[1]!;
  if (url.startsWith('node:')) return url.split('/').slice(0, 3).join('/');
  return url;
}

function shortWhere(frame: CallFrame): string {
  if (frame.url === '') return '';
  const origin = frameOrigin(frame.url);
  const file = frame.url.slice(frame.url.lastIndexOf('/') + 1);
  const where = origin.endsWith(file) ? origin : `${origin}/${file}`;
  return `${where}:${frame.lineNumber + 1}`;
}

/**
 * Ranks functions by self time (with inclusive time beside) and origins by
 * self time. Samples in the first `skipMs` of the profile (start-up, warm-up)
 * are left out.
 */
export function summarizeCpuProfile(profile: CpuProfile, skipMs = 0, excludeIdle = true): { functions: ProfileEntry[]; origins: ProfileEntry[]; totalMs: number } {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  // V8 names regexp code after its whole source; keep tables readable.
  const clip = (name: string) => (name.length > 60 ? `${name.slice(0, 57)}...` : name);
  const key = (f: CallFrame) => `${clip(f.functionName || '(anonymous)')}\u0000${shortWhere(f)}`;
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const origins = new Map<string, number>();
  let totalUs = 0;
  let elapsedUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    const delta = profile.timeDeltas[i] ?? 0;
    elapsedUs += delta;
    if (elapsedUs < skipMs * 1000) continue;
    if (!node || (excludeIdle && node.callFrame.functionName === '(idle)')) continue;
    totalUs += delta;
    const k = key(node.callFrame);
    self.set(k, (self.get(k) ?? 0) + delta);
    const origin = node.callFrame.url === '' ? clip(node.callFrame.functionName || '(native/VM)') : frameOrigin(node.callFrame.url);
    origins.set(origin, (origins.get(origin) ?? 0) + delta);
    // Inclusive time: each function once per sample, however deep it recurses.
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const kk = key(byId.get(id)!.callFrame);
      if (seen.has(kk)) continue;
      seen.add(kk);
      total.set(kk, (total.get(kk) ?? 0) + delta);
    }
  }
  const pct = (us: number) => (totalUs > 0 ? (us / totalUs) * 100 : 0);
  const functions = [...total]
    .map(([k, us]) => {
      const [name, where] = k.split('\u0000') as [string, string];
      const selfUs = self.get(k) ?? 0;
      return { name, where, selfMs: selfUs / 1000, selfPct: pct(selfUs), totalPct: pct(us) };
    })
    .sort((a, b) => b.selfMs - a.selfMs);
  const originRows = [...origins].map(([name, us]) => ({ name, where: '', selfMs: us / 1000, selfPct: pct(us), totalPct: pct(us) })).sort((a, b) => b.selfMs - a.selfMs);
  return { functions, origins: originRows, totalMs: totalUs / 1000 };
}

/** Inclusive share of every function whose name matches, for hot-path questions ("how much is routeRequest?"). */
export function inclusiveOf(profile: CpuProfile, names: readonly string[], skipMs = 0): Record<string, number> {
  const { functions } = summarizeCpuProfile(profile, skipMs);
  const out: Record<string, number> = {};
  for (const name of names) out[name] = Math.max(0, ...functions.filter((f) => f.name === name).map((f) => f.totalPct));
  return out;
}

/** Loads a .cpuprofile file. */
export function readCpuProfile(file: string): CpuProfile {
  return JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
}
