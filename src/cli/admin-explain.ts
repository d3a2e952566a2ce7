// `veer explain SERVICE [-H 'name: value']... [--cookie k=v]... [--query k=v]... [--path /p] [-X METHOD]`:
// which version such a request gets, and why.

import { callAdmin } from './admin-client.ts';
import { UsageError, targetOf, type AdminFlags, type CommandIO } from './admin-io.ts';

/** The request parts given on the command line. */
export interface ExplainFlags extends AdminFlags {
  readonly header: string[];
  readonly cookie: string[];
  readonly query: string[];
  readonly path?: string;
  readonly method?: string;
}

/** `name: value` pairs (curl's -H syntax). */
export function parseHeaderArgs(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const arg of args) {
    const colon = arg.indexOf(':');
    if (colon <= 0) throw new UsageError(`-H ${JSON.stringify(arg)}: expected 'name: value'`);
    out[arg.slice(0, colon).trim().toLowerCase()] = arg.slice(colon + 1).trim();
  }
  return out;
}

/** `k=v` pairs. */
export function parsePairArgs(flag: string, args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const arg of args) {
    const eq = arg.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag} ${JSON.stringify(arg)}: expected name=value`);
    out[arg.slice(0, eq)] = arg.slice(eq + 1);
  }
  return out;
}

/** Asks the API; returns the exit code. */
export async function runExplain(flags: ExplainFlags, service: string, io: CommandIO): Promise<number> {
  const body = {
    headers: parseHeaderArgs(flags.header),
    cookies: parsePairArgs('--cookie', flags.cookie),
    query: parsePairArgs('--query', flags.query),
    ...(flags.path === undefined ? {} : { path: flags.path }),
    ...(flags.method === undefined ? {} : { method: flags.method }),
  };
  const answer = await callAdmin<{ version: string; by: string; reason: string; weights: Record<string, number> }>(targetOf(flags), 'POST', `/api/v1/services/${encodeURIComponent(service)}/explain`, body);
  if (flags.json) io.out(JSON.stringify(answer, null, 2));
  else io.out(`${service} -> ${answer.version} (${answer.by})\n  ${answer.reason}`);
  return 0;
}
