// What a bench run measured, for its results JSON: the machine, and the veer
// source (the commit, how many src files differ from it, a digest of src/ as
// it is on disk: the tree may be dirty).

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './veer.ts';

/** Which veer was measured: the commit, and a digest of src/ as it is on disk (the tree may be dirty). */
export function describeSource(): { commit: string; dirtySrcFiles: number; srcDigest: string } {
  const git = (...args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  };
  const hash = createHash('sha256');
  const files = (readdirSync(join(ROOT, 'src'), { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).sort();
  for (const f of files) hash.update(f).update(readFileSync(join(ROOT, 'src', f)));
  const dirty = git('status', '--porcelain', '--', 'src');
  return { commit: git('rev-parse', '--short', 'HEAD') || 'unknown', dirtySrcFiles: dirty === '' ? 0 : dirty.split('\n').length, srcDigest: hash.digest('hex').slice(0, 12) };
}

/** The machine a run is on: CPU model and count, kernel, Node, and the load average at the start. */
export function describeMachine(): { cpu: string; cores: number; kernel: string; node: string; loadavgAtStart: number[] } {
  return { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, kernel: release(), node: process.version, loadavgAtStart: loadavg() };
}
