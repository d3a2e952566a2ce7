// A Kubernetes TLS Secret volume laid out as the kubelet writes one, for
// tests that run veer on the rendered manifests: each key is a symlink
// through ..data to a timestamped folder, and an update writes a new folder
// and swaps ..data with one rename (so the files veer polls change at once,
// and a file watcher on them sees nothing).
//
//   <dir>/<secret>/tls.crt -> ..data/tls.crt
//                  tls.key -> ..data/tls.key
//                  ..data  -> ..2025_01_01_00_00_00.1
//                  ..2025_01_01_00_00_00.1/tls.crt, tls.key

import { copyFileSync, mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

/** A certificate and its key, as files. */
export interface PemPair {
  readonly cert: string;
  readonly key: string;
}

let generation = 0;

function writeGeneration(folder: string, pair: PemPair): string {
  const stamp = `..${new Date().toISOString().replace(/[-:T]/g, '_').replace(/\..*$/, '')}.${++generation}`;
  mkdirSync(join(folder, stamp), { recursive: true });
  copyFileSync(pair.cert, join(folder, stamp, 'tls.crt'));
  copyFileSync(pair.key, join(folder, stamp, 'tls.key'));
  return stamp;
}

/** Mounts `pair` as the TLS Secret `secret` under `dir` (dir/secret/tls.crt, tls.key); returns the Secret's folder. */
export function mountTlsSecret(dir: string, secret: string, pair: PemPair): string {
  const folder = join(dir, secret);
  symlinkSync(writeGeneration(folder, pair), join(folder, '..data'));
  for (const file of ['tls.crt', 'tls.key']) symlinkSync(join('..data', file), join(folder, file));
  return folder;
}

/** Updates a mounted Secret as the kubelet does: a new folder, ..data swapped by rename, the old folder removed. */
export function updateTlsSecret(folder: string, pair: PemPair): void {
  const old = readlinkSync(join(folder, '..data'));
  symlinkSync(writeGeneration(folder, pair), join(folder, '..data_tmp'));
  renameSync(join(folder, '..data_tmp'), join(folder, '..data'));
  rmSync(join(folder, old), { recursive: true, force: true });
}
