// `veer pipeline run PLAN.yaml`: carries the plan's rollout through its
// stages, group after group (a parallel group's stages at once), saving the
// progress after every change; then ends promoted (exit 0), or stops the
// pipeline (pipeline-stop.ts) and ends failed (exit 1). Bad input: exit 2.
//
// Resuming: the state file says what each stage reached. A promoted stage is
// never run again; a running one is followed through the rollout id it
// recorded; a soaking one soaks until its recorded end; a pipeline that was
// stopping finishes stopping.

import { unlinkSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { AdminCallError } from './admin-client.ts';
import type { CommandIO } from './admin-io.ts';
import { StageClient, pause, type RetryOptions } from './pipeline-client.ts';
import { stagesOf, type PipelinePlan } from './pipeline-plan.ts';
import { runStage, type StageContext } from './pipeline-stage.ts';
import { ExternalChangeError, PipelineStore, acquireLock, newPipelineState, readPipelineState, type PipelineState, type StageState } from './pipeline-state.ts';
import { stopPipeline, type StopContext } from './pipeline-stop.ts';
import { lineView, liveView, type PipelineView } from './pipeline-view.ts';

/** How `run` and `abort` talk to the stages. */
export interface PipelineRunOptions {
  readonly stateFile: string;
  readonly intervalMs: number;
  readonly retry: RetryOptions;
  /** A live view on the terminal (else one line per change). */
  readonly tty: boolean;
}

/** The exit code a pipeline's phase stands for: 0 promoted, 1 anything else. */
export function exitCodeOf(state: PipelineState): number {
  return state.phase === 'promoted' ? 0 : 1;
}

/** `pipeline of shop to v2: promoted in every stage (dev, staging)`; `... failed: <reason>`. */
export function summaryOf(state: PipelineState): string {
  const head = `pipeline of ${state.service} to ${state.canary}`;
  if (state.phase === 'promoted') return `${head}: promoted in every stage (${state.stages.map((s) => s.name).join(', ')})`;
  const rolled = state.stages.filter((s) => s.rollback?.status === 'done').map((s) => s.name);
  const notRolled = state.stages.filter((s) => s.rollback?.status === 'failed').map((s) => s.name);
  const rollback = `${rolled.length > 0 ? `; rolled back: ${rolled.join(', ')}` : ''}${notRolled.length > 0 ? `; rollback failed: ${notRolled.join(', ')}` : ''}`;
  return `${head}: ${state.phase}: ${state.reason}${rollback}`;
}

/** The clients of every stage; each reports its retries as the stage's detail. */
export function clientsOf(plan: PipelinePlan, state: PipelineState, retry: RetryOptions, view: () => PipelineView): Map<string, StageClient> {
  return new Map(
    stagesOf(plan).map((p) => {
      const s = state.stages.find((x) => x.name === p.name)!;
      return [
        p.name,
        new StageClient(p, plan.service, retry, (message) => {
          s.detail = `no answer: ${message}`;
          view().stage(s);
        }),
      ];
    }),
  );
}

/** Runs (or resumes) the pipeline; returns the exit code. */
export async function runPipeline(plan: PipelinePlan, options: PipelineRunOptions, io: CommandIO): Promise<number> {
  let lock: Awaited<ReturnType<typeof acquireLock>>;
  try {
    lock = await acquireLock(options.stateFile);
  } catch (err) {
    io.err(`veer: ${(err as Error).message} [pipeline_locked]`);
    return 2;
  }
  let view: PipelineView | undefined;
  // Ctrl-C or a TERM only detaches: the rollouts go on, and `run` again resumes.
  const onSignal = (signal: NodeJS.Signals) => {
    view?.close();
    try {
      if (Number(readFileSync(`${options.stateFile}.lock`, 'utf8').trim()) === process.pid) unlinkSync(`${options.stateFile}.lock`);
    } catch {
      // already gone
    }
    process.stderr.write(`veer: pipeline detached on ${signal}; its rollouts go on: \`veer pipeline run\` again resumes, \`veer pipeline abort\` stops them\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const read = await readPipelineState(options.stateFile);
    if (read !== null && read.fingerprint !== plan.fingerprint) {
      io.err(`veer: the state file ${options.stateFile} belongs to another plan (its service, canary, stages or soak changed since it started); move it away to start this plan over, or give --state [pipeline_changed]`);
      return 2;
    }
    const state = read ?? newPipelineState(plan, new Date());
    if (state.phase === 'promoted' || state.phase === 'failed' || state.phase === 'aborted') {
      io.out(`${summaryOf(state)} (ended ${state.endedAt}; move ${options.stateFile} away to run it again)`);
      return exitCodeOf(state);
    }
    const store = new PipelineStore(options.stateFile, `run:${process.pid}@${hostname()}`, read);
    if (read === null) await store.save(state);
    const v = options.tty ? liveView(state) : lineView(io);
    view = v;
    if (read !== null) v.note(`resuming the pipeline of ${state.service} to ${state.canary} from ${options.stateFile}: ${state.stages.map((s) => `${s.name} ${s.status}`).join(', ')}`);
    else v.note(`pipeline of ${state.service} to ${state.canary}: ${plan.groups.map((g) => (g.parallel ? `(${g.stages.map((s) => s.name).join(' + ')})` : g.stages[0]!.name)).join(' -> ')}; onAbort: ${plan.onAbort}`);
    const clients = clientsOf(plan, state, options.retry, () => v);
    const base = { state, clients, save: () => store.save(state), show: (s: StageState) => v.stage(s), note: (l: string) => v.note(l), now: () => new Date() };
    try {
      if (state.phase === 'running') await forward({ ...base, plan, intervalMs: options.intervalMs }, store);
      if (state.phase === 'stopping') {
        v.note(`stopping the pipeline: ${state.reason}`);
        await stopPipeline(base);
      }
    } catch (err) {
      if (!(err instanceof ExternalChangeError)) throw err;
      await abortOwnRollouts(state, clients);
      v.close();
      io.err(`veer: the pipeline was taken over: ${err.message} (${err.current.reason}); this run stops`);
      return 1;
    } finally {
      v.close();
    }
    io.out(summaryOf(state));
    return exitCodeOf(state);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await lock.release();
  }
}

/** Runs the groups in order; a failed stage interrupts its group and turns the pipeline to `stopping`. */
async function forward(ctx: StageContext & StopContext, store: PipelineStore): Promise<void> {
  const { state, plan } = ctx;
  for (const group of plan.groups) {
    const stages = group.stages.map((p) => state.stages.find((s) => s.name === p.name)!);
    if (stages.every((s) => s.status === 'promoted')) continue;
    const interrupt = new AbortController();
    const done = new AbortController();
    let failed: StageState | null = null;
    let external: unknown = null;
    // `veer pipeline abort` writes the state file: seen here within an interval.
    const watching = (async () => {
      while (await pause(ctx.intervalMs, done.signal)) {
        try {
          await store.check();
        } catch (err) {
          external ??= err;
          interrupt.abort();
          return;
        }
      }
    })();
    await Promise.all(
      stages.map(async (s) => {
        try {
          const outcome = await runStage(ctx, s, ctx.clients.get(s.name)!, interrupt.signal);
          if (outcome === 'failed' && failed === null) {
            failed = s;
            interrupt.abort();
          }
        } catch (err) {
          external ??= err;
          interrupt.abort();
        }
      }),
    );
    done.abort();
    await watching;
    if (external !== null) throw external;
    if (failed !== null) {
      const f: StageState = failed;
      state.phase = 'stopping';
      state.outcome = 'failed';
      state.reason = `stage ${f.name} failed: ${f.detail}`;
      await ctx.save();
      return;
    }
  }
  state.phase = 'promoted';
  state.reason = 'every stage promoted';
  state.endedAt = new Date().toISOString();
  await ctx.save();
}

/** After `veer pipeline abort` took over: abort the rollouts this run was following (it may have started one after abort looked). */
async function abortOwnRollouts(state: PipelineState, clients: ReadonlyMap<string, StageClient>): Promise<void> {
  await Promise.all(
    state.stages
      .filter((s) => s.status === 'running' && s.rolloutId !== null)
      .map(async (s) => {
        const client = clients.get(s.name)!;
        try {
          const r = await client.rollout();
          if (r !== null && r.id === s.rolloutId && (r.phase === 'progressing' || r.phase === 'paused')) await client.abort('pipeline aborted');
        } catch (err) {
          if (!(err instanceof AdminCallError)) throw err;
        }
      }),
  );
}

