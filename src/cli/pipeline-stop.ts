// Stopping a pipeline (a stage failed, or `veer pipeline abort`): abort the
// rollouts still running in its stages, then, with `onAbort: rollback`,
// roll back the stages already promoted, newest first, and end the pipeline.
// Every step is saved, so a stop interrupted by a crash finishes on the next
// `veer pipeline run` (or `abort`).
//
// Rolling back, only while the service's latest rollout (or the release) on
// that veer is still the one the pipeline promoted: `abort` on it, which the
// admin API turns into a rollback within its rollbackWindow (one change,
// every member of a release at once, `rollout.rollback`/`release.rollback` in
// that veer's history). Past the window the API refuses, and the stage's
// weights are set back to what they were just before the pipeline started
// it (saved in the state as `before.weights`) with PUT .../weights.

import { AdminCallError } from './admin-client.ts';
import type { StageClient } from './pipeline-client.ts';
import { isActive } from './pipeline-stage.ts';
import type { PipelineState, StageState } from './pipeline-state.ts';

/** What stopping needs from the command that runs it. */
export interface StopContext {
  readonly state: PipelineState;
  readonly clients: ReadonlyMap<string, StageClient>;
  save(): Promise<void>;
  show(stage: StageState): void;
  note(line: string): void;
  now(): Date;
}

const describe = (err: unknown) => (err instanceof AdminCallError ? `${err.message} [${err.code}]` : (err as Error).message);

/** Carries a pipeline in phase `stopping` to its end (`failed` or `aborted`). */
export async function stopPipeline(ctx: StopContext): Promise<void> {
  const { state } = ctx;
  for (const s of state.stages) {
    if (s.status === 'starting' || s.status === 'running') await stopStage(ctx, s);
    else if (s.status === 'soaking') {
      // Promoted already: only the soak is cut short.
      s.status = 'promoted';
      s.endedAt = ctx.now().toISOString();
      s.detail = 'promoted; the soak was cut short when the pipeline stopped';
      await ctx.save();
      ctx.show(s);
    }
  }
  if (state.onAbort === 'rollback') {
    const promoted = state.stages.filter((s) => s.promotedAt !== null && s.rollback === null).sort((a, b) => Date.parse(b.promotedAt!) - Date.parse(a.promotedAt!));
    if (promoted.length > 0) ctx.note(`onAbort: rollback: rolling back ${promoted.map((s) => s.name).join(', ')} (newest first)`);
    for (const s of promoted) await rollBack(ctx, s);
  }
  state.phase = state.outcome ?? 'failed';
  state.outcome = null;
  state.endedAt = ctx.now().toISOString();
  await ctx.save();
}

/** Aborts the stage's rollout when it is the one the pipeline started and still running. */
async function stopStage(ctx: StopContext, s: StageState): Promise<void> {
  const client = ctx.clients.get(s.name)!;
  const why = `pipeline of ${ctx.state.service} stopped: ${ctx.state.reason}`;
  try {
    const r = await client.retrying(() => client.rollout());
    // A stage that was starting owns a rollout newer than the one it saw before starting.
    const ours = r !== null && (r.id === s.rolloutId || (s.rolloutId === null && s.before !== null && r.id !== s.before.rolloutId));
    if (ours && r.phase === 'promoted') {
      s.status = 'promoted';
      s.rolloutId = r.id;
      s.promotedAt ??= ctx.now().toISOString();
      s.detail = 'promoted just as the pipeline stopped';
    } else if (ours && isActive(r)) {
      await client.retrying(async () => {
        try {
          await client.abort(why);
        } catch (err) {
          // 409: it ended meanwhile; nothing left to abort.
          if (!(err instanceof AdminCallError && err.status === 409)) throw err;
        }
      });
      s.status = 'stopped';
      s.rolloutId = r.id;
      s.detail = `its rollout was aborted: ${why}`;
    } else {
      s.status = 'stopped';
      s.detail = ours ? `its rollout had ended ${r.phase}` : 'stopped before its rollout started';
    }
  } catch (err) {
    s.status = 'stopped';
    s.detail = `could not abort its rollout: ${describe(err)}`;
  }
  s.endedAt = ctx.now().toISOString();
  await ctx.save();
  ctx.show(s);
}

/** Puts the stage's weights back to what they were before the pipeline's rollout. */
async function rollBack(ctx: StopContext, s: StageState): Promise<void> {
  const client = ctx.clients.get(s.name)!;
  const before = s.before;
  let result: NonNullable<StageState['rollback']>;
  try {
    const r = await client.retrying(() => client.rollout());
    if (before === null) throw new Error('no weights were recorded before its rollout');
    if (r === null || r.id !== s.rolloutId || r.phase !== 'promoted') {
      throw new Error(r === null ? 'its rollout is gone' : r.id !== s.rolloutId ? `another rollout (${r.id}, ${r.phase}) has run there since; left as it is` : `its rollout is ${r.phase}`);
    }
    const weights = (w: Readonly<Record<string, number>>) => Object.entries(w).map(([v, n]) => `${v}=${n}`).join(' ');
    let how: string;
    try {
      await client.retrying(() => client.abort(`pipeline onAbort: rollback (${ctx.state.reason})`));
      how = `rolled back by ${s.name}'s veer (within its rollbackWindow)`;
    } catch (err) {
      if (!(err instanceof AdminCallError && err.code === 'rollback_window_passed')) throw err;
      await client.retrying(() => client.setWeights(before.weights));
      how = 'set back, past its rollbackWindow';
    }
    const now = await client.retrying(() => client.service());
    result = { status: 'done', at: ctx.now().toISOString(), detail: `weights back to ${weights(now.weights)} (as before the stage: ${how})` };
  } catch (err) {
    result = { status: 'failed', at: ctx.now().toISOString(), detail: `not rolled back: ${describe(err)}` };
  }
  s.rollback = result;
  await ctx.save();
  ctx.show(s);
}
