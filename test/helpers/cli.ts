// Running the real `veer` binary as a child process and collecting its output.

import { spawn } from 'node:child_process';
import { FROM_SOURCE, ROOT, VEER_BIN } from './veer.ts';

/** What a finished CLI run printed and returned. */
export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `veer ARGS` (`bin`: another copy of bin/veer.js) to completion (killed after `timeoutMs`, default 20 s). */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000, bin = VEER_BIN): Promise<CliRun> {
  return new Promise((resolve) => {
    // The caller's own admin settings must not leak into the run.
    const base = { ...process.env };
    delete base.VEER_ADMIN_URL;
    delete base.VEER_ADMIN_TOKEN;
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: ROOT,
      env: { ...base, ...FROM_SOURCE, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
