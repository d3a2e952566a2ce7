// Carries one stage of a pipeline to promotion: start the service's rollout
// on that stage's veer (or re-attach to the one it started before a crash),
// follow it until it is promoted or aborted, then soak. Each step is saved
// in the state before the next call, so a run that dies resumes here.
//
//   pending ──record weights──> starting ──POST rollout──> running ──promoted──> soaking ──soak over──> promoted
//                                  │ (crash: a rollout newer than        │ aborted, API error,   │ left promoted,
//                                  │  before.rolloutId is ours)          │ unreachable           │ unhealthy
//                                  ▼                                     ▼                       ▼
//                                adopt                                 failed                  failed

import type { RolloutStatus } from '../admin/index.ts';
import { AdminCallError } from './admin-client.ts';
import { pause, type StageClient } from './pipeline-client.ts';
import type { PipelinePlan } from './pipeline-plan.ts';
import type { StageState } from './pipeline-state.ts';

/** What a stage runner needs from the pipeline. */
export interface StageContext {
  readonly plan: PipelinePlan;
  readonly intervalMs: number;
  /** Saves the whole pipeline state (compare-and-swap; throws when another process wrote it). */
  save(): Promise<void>;
  /** Shows the stage's new detail (no save). */
  show(stage: StageState): void;
  now(): Date;
}

/** How a stage ended: promoted, failed (its status says why), or interrupted by the pipeline (a sibling failed). */
export type StageOutcome = 'promoted' | 'failed' | 'interrupted';

/** A failure of the stage itself (not of the connection): it is not retried. */
class StageFailure extends Error {}

/** `step 2/3, v2 at 50%; last check pass` */
export function describeRollout(r: RolloutStatus): string {
  const check = r.lastAnalysis === null ? (r.analysis === null ? 'no analysis' : 'no check yet') : `last check ${r.lastAnalysis.verdict}`;
  const step = r.phase === 'promoted' ? r.stepCount : Math.min(r.stepCount, r.step + 1);
  return `${r.phase}${r.pausedBy ? ` (${r.pausedBy})` : ''} step ${step}/${r.stepCount}, ${r.canary} at ${r.canaryWeight}%; ${check}`;
}

/** True while the rollout holds the service (progressing or paused). */
export function isActive(r: RolloutStatus | null): boolean {
  return r !== null && (r.phase === 'progressing' || r.phase === 'paused');
}

/** Takes in the rollout as seen now: `moved` when its phase or step changed (worth a save), `changed` when its description did (worth showing). */
function note(s: StageState, r: RolloutStatus): { moved: boolean; changed: boolean } {
  const snapshot = { phase: r.phase, step: r.step, stepCount: r.stepCount, canaryWeight: r.canaryWeight };
  const moved = JSON.stringify(snapshot) !== JSON.stringify(s.rollout);
  s.rollout = snapshot;
  const detail = describeRollout(r);
  const changed = detail !== s.detail;
  s.detail = detail;
  return { moved, changed };
}

/** Runs (or resumes) one stage; resolves once it is promoted, failed, or `signal` interrupts it. */
export async function runStage(ctx: StageContext, s: StageState, client: StageClient, signal: AbortSignal): Promise<StageOutcome> {
  try {
    if (s.status === 'pending' || s.status === 'starting') await ensureStarted(ctx, s, client, signal);
    if (s.status === 'running') await follow(ctx, s, client, signal);
    if (s.status === 'soaking') await soak(ctx, s, client, signal);
  } catch (err) {
    if (signal.aborted) return 'interrupted';
    if (!(err instanceof StageFailure) && !(err instanceof AdminCallError)) throw err;
    s.status = 'failed';
    s.endedAt = ctx.now().toISOString();
    s.detail = err instanceof AdminCallError ? `${err.message} [${err.code}]` : err.message;
    await ctx.save();
    ctx.show(s);
    return 'failed';
  }
  if (s.status === 'promoted') return 'promoted';
  return signal.aborted ? 'interrupted' : 'failed';
}

/** Starts the rollout, or adopts the one this stage started before the command died. */
async function ensureStarted(ctx: StageContext, s: StageState, client: StageClient, signal: AbortSignal): Promise<void> {
  const { service, canary } = ctx.plan;
  await client.retrying(async () => {
    const current = await client.rollout();
    if (s.status === 'starting' && s.before !== null && current !== null && current.id !== s.before.rolloutId) {
      // The start went through before the command died (or its answer was lost): that rollout is ours.
      return adopt(ctx, s, current);
    }
    if (isActive(current)) throw new StageFailure(`a rollout of ${service} (canary ${current!.canary}) is already ${current!.phase} on ${s.name}, not started by this pipeline; finish it first`);
    if (s.status === 'pending') {
      const view = await client.service();
      s.before = { weights: { ...view.weights }, rolloutId: current?.id ?? null, at: ctx.now().toISOString() };
      s.status = 'starting';
      s.startedAt = s.before.at;
      s.detail = `starting the rollout of ${canary}`;
      await ctx.save();
      ctx.show(s);
    }
    if (signal.aborted) return;
    let started: RolloutStatus;
    try {
      started = await client.start(canary);
    } catch (err) {
      if (err instanceof AdminCallError && !isTransientCode(err)) throw new StageFailure(`the rollout did not start: ${err.message} [${err.code}]`);
      throw err;
    }
    return adopt(ctx, s, started);
  }, signal);
}

function isTransientCode(err: AdminCallError): boolean {
  return err.code === 'unreachable' || err.status === 502 || err.status === 503 || err.status === 504;
}

async function adopt(ctx: StageContext, s: StageState, r: RolloutStatus): Promise<void> {
  s.rolloutId = r.id;
  s.status = 'running';
  note(s, r);
  await ctx.save();
  ctx.show(s);
}

/** Polls the stage's rollout until it is promoted (then soaking or promoted) or aborted (failed). */
async function follow(ctx: StageContext, s: StageState, client: StageClient, signal: AbortSignal): Promise<void> {
  for (;;) {
    const r = await client.retrying(() => client.rollout(), signal);
    if (r === null || r.id !== s.rolloutId) {
      throw new StageFailure(r === null ? `the rollout ${s.rolloutId} is gone from ${s.name}` : `the rollout this pipeline started (${s.rolloutId}) was replaced on ${s.name} by another (${r.id}, canary ${r.canary})`);
    }
    // Saved before it is shown: what the output says has reached the state file.
    const { moved, changed } = note(s, r);
    if (moved) await ctx.save();
    if (changed) ctx.show(s);
    if (r.phase === 'aborted') throw new StageFailure(`aborted: ${r.reason.replace(/^aborted: /, '')}`);
    if (r.phase === 'promoted') {
      const now = ctx.now();
      const soakMs = stageSoakMs(ctx, s);
      s.promotedAt = now.toISOString();
      if (soakMs > 0) {
        s.status = 'soaking';
        s.soakUntil = new Date(now.getTime() + soakMs).toISOString();
        s.detail = `promoted; soaking until ${s.soakUntil}`;
      } else {
        s.status = 'promoted';
        s.endedAt = s.promotedAt;
        s.detail = r.reason.replace(/^promoted: /, '');
      }
      await ctx.save();
      ctx.show(s);
      return;
    }
    if (!(await pause(ctx.intervalMs, signal))) return;
  }
}

function stageSoakMs(ctx: StageContext, s: StageState): number {
  return ctx.plan.groups.flatMap((g) => g.stages).find((p) => p.name === s.name)?.soakMs ?? 0;
}

/**
 * Waits until `soakUntil`, checking that the rollout stays promoted with the
 * canary at 100% and, when the rollout has an analysis, that the canary's
 * numbers stay within its maxErrorRate and maxP99Ms (checked every analysis
 * interval; failureLimit failed checks in a row fail the stage).
 */
async function soak(ctx: StageContext, s: StageState, client: StageClient, signal: AbortSignal): Promise<void> {
  const { service, canary } = ctx.plan;
  const until = Date.parse(s.soakUntil ?? '');
  let failures = 0;
  let nextCheck = 0;
  let health = 'no check yet';
  while (ctx.now().getTime() < until) {
    const r = await client.retrying(() => client.rollout(), signal);
    if (r === null || r.id !== s.rolloutId || r.phase !== 'promoted') {
      throw new StageFailure(`left promoted during the soak: ${r === null ? 'the rollout is gone' : r.id !== s.rolloutId ? `another rollout (${r.id}) started` : `${r.phase}: ${r.reason}`}`);
    }
    const total = Object.values(r.weights).reduce((a, b) => a + b, 0);
    if (total <= 0 || (r.weights[canary] ?? 0) < total) {
      throw new StageFailure(`left promoted during the soak: the weights changed to ${Object.entries(r.weights).map(([v, w]) => `${v}=${w}`).join(' ')}`);
    }
    const spec = r.analysis;
    const now = ctx.now().getTime();
    if (spec !== null && now >= nextCheck) {
      nextCheck = now + spec.intervalMs;
      const stats = await client.retrying(() => client.stats(service, canary, spec.intervalMs), signal);
      const verdict = judge(stats, spec);
      health = verdict.text;
      if (verdict.fail) {
        failures++;
        if (failures >= spec.failureLimit) throw new StageFailure(`unhealthy during the soak: ${verdict.text}`);
      } else if (verdict.pass) failures = 0;
    }
    const left = Math.max(0, until - ctx.now().getTime());
    const detail = `promoted; soaking, ${Math.ceil(left / 1000)}s left; ${health}`;
    if (detail !== s.detail) {
      s.detail = detail;
      ctx.show(s);
    }
    if (!(await pause(Math.min(ctx.intervalMs, Math.max(left, 1)), signal))) return;
  }
  s.status = 'promoted';
  s.endedAt = ctx.now().toISOString();
  s.detail = 'promoted and soaked';
  await ctx.save();
  ctx.show(s);
}

/** The canary's window against the rollout's thresholds: fewer than minRequests is neither pass nor fail. */
function judge(stats: { requests: number; errorRatio: number; p99Ms: number | null } | null, spec: NonNullable<RolloutStatus['analysis']>): { pass: boolean; fail: boolean; text: string } {
  if (stats === null || stats.requests < Math.max(1, spec.minRequests)) return { pass: false, fail: false, text: `check inconclusive (${stats?.requests ?? 0} req)` };
  const numbers = `${stats.requests} req, ${(stats.errorRatio * 100).toFixed(1)}% err, p99 ${stats.p99Ms === null ? 'n/a' : `${stats.p99Ms}ms`}`;
  const reasons: string[] = [];
  if (spec.maxErrorRate !== null && stats.errorRatio > spec.maxErrorRate) reasons.push(`error ratio over ${spec.maxErrorRate}`);
  if (spec.maxP99Ms !== null && stats.p99Ms !== null && stats.p99Ms > spec.maxP99Ms) reasons.push(`p99 over ${spec.maxP99Ms}ms`);
  return reasons.length > 0 ? { pass: false, fail: true, text: `check fail (${numbers}: ${reasons.join(', ')})` } : { pass: true, fail: false, text: `check pass (${numbers})` };
}
