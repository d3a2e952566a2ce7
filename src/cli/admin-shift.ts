// `veer shift SERVICE --to v2 --step 10 --every 30s [--until 100]` and `--stop`.

import type { ShiftStatus } from '../admin/index.ts';
import { callAdmin } from './admin-client.ts';
import { UsageError, targetOf, type AdminFlags, type CommandIO, printAnswer } from './admin-io.ts';

/** Options of `veer shift`. */
export interface ShiftFlags extends AdminFlags {
  readonly to?: string;
  readonly step?: string;
  readonly every?: string;
  readonly until: string;
  readonly stop?: boolean;
}

function describe(status: ShiftStatus): string {
  const weights = Object.entries(status.weights)
    .map(([v, w]) => `${v}=${w}`)
    .join(' ');
  return status.shift === null ? `${status.service}: ${weights} (no shift running)` : `${status.service}: ${weights}; shifting toward ${status.shift.to} until ${status.shift.until}% (+${status.shift.step} every ${status.shift.everyMs}ms)`;
}

/** Starts a shift; returns the exit code. */
export async function runShift(flags: ShiftFlags, service: string, io: CommandIO): Promise<number> {
  if (flags.to === undefined || flags.step === undefined || flags.every === undefined) throw new UsageError('give --to, --step and --every (or --stop)');
  const step = Number(flags.step);
  const until = Number(flags.until);
  if (!Number.isFinite(step) || !Number.isFinite(until)) throw new UsageError('--step and --until must be numbers');
  const status = await callAdmin<ShiftStatus>(targetOf(flags), 'POST', `/api/v1/services/${encodeURIComponent(service)}/shift`, { to: flags.to, step, every: flags.every, until });
  return printAnswer(io, flags, status, describe);
}

/** Stops a shift; returns the exit code. */
export async function runShiftStop(flags: ShiftFlags, service: string, io: CommandIO): Promise<number> {
  const status = await callAdmin<ShiftStatus>(targetOf(flags), 'DELETE', `/api/v1/services/${encodeURIComponent(service)}/shift`);
  return printAnswer(io, flags, status, describe);
}
