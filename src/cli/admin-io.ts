// What every admin-talking command shares: where to write, and how a failed
// call becomes `veer: MESSAGE [CODE]` on stderr and exit code 1.

import { AdminCallError, DEFAULT_ADMIN_URL, type AdminTarget } from './admin-client.ts';

/** Output channels of a command (stdout, stderr). */
export interface CommandIO {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

/** The terminal's stdout and stderr. */
export const processIO: CommandIO = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** A local usage problem (bad argument); reported like an API error. */
export class UsageError extends Error {}

/** Runs `fn`; an admin or usage error is printed and gives exit code 1. */
export async function reportErrors(io: CommandIO, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AdminCallError) {
      io.err(`veer: ${err.message} [${err.code}]`);
      return 1;
    }
    if (err instanceof UsageError) {
      io.err(`veer: ${err.message} [usage]`);
      return 1;
    }
    throw err;
  }
}

/** Options every admin-talking command takes. */
export interface AdminFlags {
  readonly admin: string;
  readonly token?: string;
  readonly json?: boolean;
}

/** The admin target from the flags. */
export function targetOf(flags: AdminFlags): AdminTarget {
  // An empty $VEER_ADMIN_URL means "not set".
  const url = flags.admin || DEFAULT_ADMIN_URL;
  return flags.token ? { url, token: flags.token } : { url };
}

/** Prints an API answer: as JSON with --json, else as `format` renders it. Returns exit code 0. */
export function printAnswer<T>(io: CommandIO, flags: AdminFlags, answer: T, format: (answer: T) => string): number {
  io.out(flags.json ? JSON.stringify(answer, null, 2) : format(answer));
  return 0;
}
