// Tests that need a program from a Debian package (etcd, Prometheus,
// Chromium, openssl). On a developer's machine without it they are skipped
// with the reason; under CI (CI=true), where .ci/run installs every package
// of .ci/apt-packages, a missing one is a failure: a broken install step
// must not pass green.

import { existsSync } from 'node:fs';

/** True when running under CI. */
export function underCi(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI === 'true' || env.CI === '1';
}

/**
 * Why the tests that need `binary` (from Debian package `pkg`) cannot run,
 * or null when they can. Throws under CI when it is missing, which fails the
 * test file that asked.
 */
export function missingBinary(binary: string, pkg: string, env: NodeJS.ProcessEnv = process.env): string | null {
  if (existsSync(binary)) return null;
  const why = `${binary} is not installed (apt-get install ${pkg})`;
  if (underCi(env)) throw new Error(`${why}: under CI every test must run, and .ci/run installs ${pkg} from .ci/apt-packages`);
  return `${why}; skipping`;
}
