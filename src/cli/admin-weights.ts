// `veer weights SERVICE v1=90 v2=10`: sets a service's weights in one change.

import type { ServiceView } from '../admin/index.ts';
import { callAdmin } from './admin-client.ts';
import { formatWeights } from './admin-format.ts';
import { UsageError, targetOf, type AdminFlags, type CommandIO, printAnswer } from './admin-io.ts';

/** `["v1=90", "v2=10"]` -> `{ v1: 90, v2: 10 }`; throws UsageError on anything else. */
export function parseWeightArgs(args: readonly string[]): Record<string, number> {
  if (args.length === 0) throw new UsageError('give weights as VERSION=WEIGHT, e.g. veer weights shop v1=90 v2=10');
  const weights: Record<string, number> = {};
  for (const arg of args) {
    const eq = arg.indexOf('=');
    if (eq <= 0) throw new UsageError(`${JSON.stringify(arg)} is not VERSION=WEIGHT`);
    const name = arg.slice(0, eq);
    const text = arg.slice(eq + 1).trim();
    const value = text === '' ? Number.NaN : Number(text);
    if (!Number.isFinite(value)) throw new UsageError(`${JSON.stringify(arg)}: the weight must be a number`);
    if (Object.hasOwn(weights, name)) throw new UsageError(`${name} is given twice`);
    weights[name] = value;
  }
  return weights;
}

/** Sets the weights (or, with `reset`, drops the runtime weights so the config's apply); returns the exit code. */
export async function runWeights(flags: AdminFlags & { reset?: boolean }, service: string, args: readonly string[], io: CommandIO): Promise<number> {
  const path = `/api/v1/services/${encodeURIComponent(service)}/weights`;
  if (flags.reset && args.length > 0) throw new UsageError('give weights or --reset, not both');
  const answer = flags.reset ? await callAdmin<{ service: ServiceView }>(targetOf(flags), 'DELETE', path) : await callAdmin<{ service: ServiceView }>(targetOf(flags), 'PUT', path, { weights: parseWeightArgs(args) });
  return printAnswer(io, flags, answer, (a) => `${service}: ${formatWeights(a.service)}`);
}
