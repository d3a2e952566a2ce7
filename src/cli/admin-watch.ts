// `veer rollout watch SERVICE`: polls GET .../rollout and shows a progress
// bar of the steps with the phase and the last analysis, until the rollout
// ends. Exit 0 when promoted, 1 when aborted (or on error or timeout).
//
// On a terminal: one cli-progress bar, redrawn in place. In a pipe or a CI
// log: one line per change (step, phase or analysis check), no redraws.

import cliProgress from 'cli-progress';
import type { RolloutStatus } from '../admin/index.ts';
import { AdminCallError, callAdmin } from './admin-client.ts';
import { UsageError, targetOf, type AdminFlags, type CommandIO } from './admin-io.ts';

/** Options of `rollout watch`. */
export interface WatchFlags extends AdminFlags {
  readonly interval: string;
  readonly timeout: string;
}

/** How long veer may be unreachable (a restart) before the watch gives up. */
const UNREACHABLE_GRACE_MS = 30_000;

function checkText(r: RolloutStatus): string {
  const a = r.lastAnalysis;
  if (a === null) return r.analysis === null ? 'no analysis' : 'no check yet';
  const metrics = (a.metrics ?? []).map((m) => `, ${m.name} ${m.value ?? 'n/a'}`).join('');
  return `${a.verdict} (canary ${a.canary.requests} req, ${(a.canary.errorRatio * 100).toFixed(1)}% err, p99 ${a.canary.p99Ms === null ? 'n/a' : `${a.canary.p99Ms}ms`}${metrics})`;
}

function progressOf(r: RolloutStatus): number {
  if (r.phase === 'promoted') return r.stepCount;
  return Math.min(r.stepCount, r.step + 1);
}

/** One line describing the rollout now. */
export function describeWatchLine(r: RolloutStatus): string {
  return `${r.service}: ${r.phase}${r.pausedBy ? ` (${r.pausedBy})` : ''} step ${progressOf(r)}/${r.stepCount}, ${r.canary} at ${r.canaryWeight}%; last check: ${checkText(r)}`;
}

/** Watches until the rollout ends; returns the exit code. */
export async function runWatch(flags: WatchFlags, service: string, io: CommandIO, tty = process.stderr.isTTY === true): Promise<number> {
  const intervalMs = Number(flags.interval);
  const timeoutS = Number(flags.timeout);
  if (!(intervalMs >= 50) || !(timeoutS >= 0)) throw new UsageError('--interval must be at least 50 (ms) and --timeout a number of seconds');
  const target = targetOf(flags);
  const path = `/api/v1/services/${encodeURIComponent(service)}/rollout`;
  const deadline = timeoutS > 0 ? Date.now() + timeoutS * 1000 : Number.POSITIVE_INFINITY;
  const bar = tty
    ? new cliProgress.SingleBar({ format: `${service} [{bar}] step {value}/{total} | {phase} | {weight} | {check}`, hideCursor: true, barsize: 24, clearOnComplete: false }, cliProgress.Presets.shades_classic)
    : null;
  let last = '';
  let unreachableSince: number | null = null;
  let started = false;
  try {
    // Bounded by --timeout, by the rollout ending, and by UNREACHABLE_GRACE_MS without an answer.
    for (;;) {
      let r: RolloutStatus;
      try {
        r = await callAdmin<RolloutStatus>(target, 'GET', path);
        unreachableSince = null;
      } catch (err) {
        if (!(err instanceof AdminCallError) || err.code !== 'unreachable') throw err;
        unreachableSince ??= Date.now();
        if (Date.now() - unreachableSince > UNREACHABLE_GRACE_MS) throw err;
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
        continue;
      }
      const payload = { phase: r.phase + (r.pausedBy ? ` (${r.pausedBy})` : ''), weight: `${r.canary} ${r.canaryWeight}%`, check: checkText(r) };
      if (bar) {
        if (!started) bar.start(r.stepCount, progressOf(r), payload);
        else bar.update(progressOf(r), payload);
        started = true;
      } else {
        const line = describeWatchLine(r);
        if (line !== last) io.out(line);
        last = line;
      }
      if (r.phase === 'promoted' || r.phase === 'aborted' || r.phase === 'rolledBack') {
        bar?.stop();
        started = false;
        io.out(`rollout of ${service} ${r.phase}: ${r.reason}`);
        return r.phase === 'promoted' ? 0 : 1;
      }
      if (Date.now() >= deadline) {
        bar?.stop();
        started = false;
        io.err(`veer: the rollout of ${service} is still ${r.phase} after ${timeoutS}s [timeout]`);
        return 1;
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  } finally {
    if (started) bar?.stop();
  }
}
