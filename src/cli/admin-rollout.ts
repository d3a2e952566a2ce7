// `veer rollout start|pause|resume|promote|abort|status SERVICE`.

import type { RolloutStatus } from '../admin/index.ts';
import { callAdmin } from './admin-client.ts';
import { formatRollout } from './admin-format.ts';
import { UsageError, targetOf, type AdminFlags, type CommandIO, printAnswer } from './admin-io.ts';

/** Overrides `rollout start` may give. */
export interface StartFlags extends AdminFlags {
  readonly canary?: string;
  readonly steps?: string;
}

/** `5:30s,25:1m,100` -> [{weight:5,pause:'30s'},{weight:25,pause:'1m'},{weight:100}] */
export function parseStepsArg(text: string): { weight: number; pause?: string }[] {
  return text.split(',').map((part) => {
    const [w, pause, extra] = part.trim().split(':');
    const weight = Number(w);
    if (extra !== undefined || w === undefined || w === '' || !Number.isFinite(weight)) throw new UsageError(`--steps ${JSON.stringify(text)}: each step is WEIGHT or WEIGHT:PAUSE, e.g. 5:30s,25:1m,100`);
    return pause === undefined || pause === '' ? { weight } : { weight, pause };
  });
}

/** Starts the configured plan (with overrides); returns the exit code. */
export async function runRolloutStart(flags: StartFlags, service: string, io: CommandIO): Promise<number> {
  const body: Record<string, unknown> = {};
  if (flags.canary !== undefined) body.canary = flags.canary;
  if (flags.steps !== undefined) body.steps = parseStepsArg(flags.steps);
  const status = await callAdmin<RolloutStatus>(targetOf(flags), 'POST', `/api/v1/services/${encodeURIComponent(service)}/rollout`, body);
  return printAnswer(io, flags, status, formatRollout);
}

/** Applies pause, resume, promote or abort; returns the exit code. */
export async function runRolloutVerb(flags: AdminFlags & { reason?: string }, verb: 'pause' | 'resume' | 'promote' | 'abort', service: string, io: CommandIO): Promise<number> {
  const status = await callAdmin<RolloutStatus>(targetOf(flags), 'POST', `/api/v1/services/${encodeURIComponent(service)}/rollout/${verb}`, flags.reason ? { reason: flags.reason } : {});
  return printAnswer(io, flags, status, formatRollout);
}

/** Shows the rollout; returns the exit code. */
export async function runRolloutStatus(flags: AdminFlags, service: string, io: CommandIO): Promise<number> {
  const status = await callAdmin<RolloutStatus>(targetOf(flags), 'GET', `/api/v1/services/${encodeURIComponent(service)}/rollout`);
  return printAnswer(io, flags, status, formatRollout);
}
