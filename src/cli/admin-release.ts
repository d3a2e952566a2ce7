// `veer release start|pause|resume|promote|abort|status|watch NAME`: a
// release across services through POST /api/v1/releases/{name}/{verb}.
// `watch` polls until the release ends: exit 0 when promoted, 1 when aborted
// or rolled back,
// one line per change (step, phase, or a member's check).

import type { ReleaseStatus } from '../admin/index.ts';
import { callAdmin } from './admin-client.ts';
import { UsageError, targetOf, type AdminFlags, type CommandIO, printAnswer } from './admin-io.ts';

/** The verbs that change a release. */
export type ReleaseCommandVerb = 'start' | 'pause' | 'resume' | 'promote' | 'abort';

/** Options of `release watch`. */
export interface ReleaseWatchFlags extends AdminFlags {
  readonly interval: string;
  readonly timeout: string;
}

const pathOf = (name: string) => `/api/v1/releases/${encodeURIComponent(name)}`;

/** One line for the release: phase, step, weight. */
export function describeReleaseLine(r: ReleaseStatus): string {
  const step = r.step === null ? '-' : `${Math.min(r.stepCount, r.step + 1)}/${r.stepCount}`;
  return `release ${r.name}: ${r.phase}${r.pausedBy ? ` (${r.pausedBy})` : ''} step ${step}, canaries at ${r.canaryWeight}%`;
}

/** The release and each member: canary, labels, weights, last check. */
export function formatRelease(r: ReleaseStatus): string {
  const lines = [describeReleaseLine(r)];
  if (r.reason) lines.push(`  reason: ${r.reason}`);
  if (r.rollbackUntil) lines.push(`  abort rolls every member back until ${r.rollbackUntil}`);
  for (const [service, m] of Object.entries(r.members)) {
    const labels = Object.entries(m.labels).map(([k, v]) => `${k}=${v}`).join(' ');
    const weights = Object.entries(m.weights).map(([v, w]) => `${v}=${w}`).join(' ');
    const check = m.lastAnalysis === null ? 'no check yet' : `${m.lastAnalysis.verdict}: ${m.lastAnalysis.reasons.join('; ')}`;
    lines.push(`  ${service}: canary ${m.canary}${labels ? ` [${labels}]` : ''}, stable ${m.stable ?? '-'}; weights ${weights}; last check: ${check}`);
  }
  return lines.join('\n');
}

/** Applies a verb (start included); returns the exit code. */
export async function runReleaseVerb(flags: AdminFlags & { reason?: string }, verb: ReleaseCommandVerb, name: string, io: CommandIO): Promise<number> {
  const status = await callAdmin<ReleaseStatus>(targetOf(flags), 'POST', `${pathOf(name)}/${verb}`, flags.reason ? { reason: flags.reason } : {});
  return printAnswer(io, flags, status, formatRelease);
}

/** Shows the release; returns the exit code. */
export async function runReleaseStatus(flags: AdminFlags, name: string, io: CommandIO): Promise<number> {
  const status = await callAdmin<ReleaseStatus>(targetOf(flags), 'GET', pathOf(name));
  return printAnswer(io, flags, status, formatRelease);
}

/** Watches until the release ends; returns the exit code (0 promoted, 1 aborted, rolled back or timed out). */
export async function runReleaseWatch(flags: ReleaseWatchFlags, name: string, io: CommandIO): Promise<number> {
  const intervalMs = Number(flags.interval);
  const timeoutS = Number(flags.timeout);
  if (!(intervalMs >= 50) || !(timeoutS >= 0)) throw new UsageError('--interval must be at least 50 (ms) and --timeout a number of seconds');
  const deadline = timeoutS > 0 ? Date.now() + timeoutS * 1000 : Number.POSITIVE_INFINITY;
  let last = '';
  // Bounded by --timeout and by the release ending; an unreachable veer ends the watch with its error.
  for (;;) {
    const r = await callAdmin<ReleaseStatus>(targetOf(flags), 'GET', pathOf(name));
    const checks = Object.entries(r.members).map(([s, m]) => `${s} ${m.lastAnalysis?.verdict ?? '-'}`).join(', ');
    const line = `${describeReleaseLine(r)}; checks: ${checks}`;
    if (line !== last) io.err(line);
    last = line;
    if (r.phase === 'promoted') return 0;
    if (r.phase === 'aborted' || r.phase === 'rolledBack') {
      io.err(`release ${name} ${r.phase === 'aborted' ? 'aborted' : 'rolled back'}: ${r.reason ?? ''}`);
      return 1;
    }
    if (Date.now() >= deadline) {
      io.err(`release ${name} still ${r.phase} after ${timeoutS}s`);
      return 1;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
