// `veer pipeline run|status|abort PLAN.yaml`, added to the `veer` program.
// Exit codes: 0 every stage promoted (abort: the pipeline is stopped), 1
// failed or aborted, 2 bad input (a plan with errors, an unset ${VAR}, a
// state file that is not this plan's, a pipeline another process runs).

import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { Command, Option } from 'commander';
import { parseDuration } from '../config/index.ts';
import { processIO, type CommandIO } from './admin-io.ts';
import { DEFAULT_RETRY, type RetryOptions } from './pipeline-client.ts';
import { formatPlanIssue, loadPlanFile, type PipelinePlan } from './pipeline-plan.ts';
import { clientsOf, runPipeline, summaryOf } from './pipeline-run.ts';
import { ExternalChangeError, PipelineStore, StateFileError, readPipelineState, type PipelineState } from './pipeline-state.ts';
import { stopPipeline } from './pipeline-stop.ts';
import { describeStage, lineView } from './pipeline-view.ts';

/** Options every pipeline command takes. */
interface PipelineFlags {
  readonly state?: string;
  readonly interval: string;
  readonly retries: string;
  readonly retryDelay: string;
  readonly json?: boolean;
  readonly reason?: string;
}

/** Input the command cannot run with: a bad plan (`invalid_plan`) or a bad flag (`usage`). */
class BadInput extends Error {
  readonly code: string;
  constructor(message: string, code = 'invalid_plan') {
    super(message);
    this.code = code;
  }
}

function stateFileOf(plan: string, flags: PipelineFlags): string {
  return flags.state ?? `${plan}.state.json`;
}

function retryOf(flags: PipelineFlags): RetryOptions {
  const tries = Number(flags.retries);
  let delayMs: number;
  try {
    delayMs = parseDuration(flags.retryDelay);
  } catch {
    throw new BadInput(`--retry-delay ${JSON.stringify(flags.retryDelay)} is not a duration such as 2s or 500ms`, 'usage');
  }
  if (!Number.isInteger(tries) || tries < 1 || tries > 100) throw new BadInput(`--retries must be a whole number from 1 to 100 (got ${JSON.stringify(flags.retries)})`, 'usage');
  return { tries, delayMs };
}

function intervalOf(flags: PipelineFlags): number {
  const ms = Number(flags.interval);
  if (!(ms >= 50)) throw new BadInput(`--interval must be at least 50 (ms), got ${JSON.stringify(flags.interval)}`, 'usage');
  return ms;
}

/** Reads the plan; prints every problem and throws BadInput when it has any. */
async function planOf(file: string, io: CommandIO): Promise<PipelinePlan> {
  const result = await loadPlanFile(file);
  if (result.ok) return result.plan;
  for (const issue of result.issues) io.err(formatPlanIssue(file, issue));
  throw new BadInput(`${file}: ${result.issues.length} problem${result.issues.length === 1 ? '' : 's'}; nothing was started`);
}

/** Runs `fn`; bad input is printed with exit 2, other failures with exit 1. */
async function guarded(io: CommandIO, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof BadInput || err instanceof StateFileError) {
      io.err(`veer: ${err.message} [${err instanceof BadInput ? err.code : 'pipeline_state'}]`);
      return 2;
    }
    io.err(`veer: ${(err as Error).message} [pipeline_error]`);
    return 1;
  }
}

/** `veer pipeline run`. */
export async function runPipelineCommand(planFile: string, flags: PipelineFlags, io: CommandIO, tty = process.stderr.isTTY === true): Promise<number> {
  return guarded(io, async () => {
    const plan = await planOf(planFile, io);
    return runPipeline(plan, { stateFile: stateFileOf(planFile, flags), intervalMs: intervalOf(flags), retry: retryOf(flags), tty }, io);
  });
}

/** `veer pipeline status`: the state file, one line per stage (or the JSON with --json). */
export async function runPipelineStatus(planFile: string, flags: PipelineFlags, io: CommandIO): Promise<number> {
  return guarded(io, async () => {
    const file = stateFileOf(planFile, flags);
    const state = await readPipelineState(file);
    if (state === null) {
      io.err(`veer: the pipeline of ${planFile} has not started (no state file ${file}) [no_pipeline]`);
      return 1;
    }
    if (flags.json) {
      io.out(JSON.stringify(state, null, 2));
      return 0;
    }
    io.out(`pipeline of ${state.service} to ${state.canary}: ${state.phase} (started ${state.startedAt}${state.endedAt ? `, ended ${state.endedAt}` : ''}; onAbort: ${state.onAbort})`);
    if (state.phase !== 'running') io.out(`  ${summaryOf(state)}`);
    for (const s of state.stages) io.out(`  ${describeStage(s)}`);
    if (state.phase === 'running' || state.phase === 'stopping') io.out(`  ${driverOf(file)}`);
    return 0;
  });
}

function driverOf(stateFile: string): string {
  const lock = `${stateFile}.lock`;
  const pid = existsSync(lock) ? Number(readFileSync(lock, 'utf8').trim()) : NaN;
  if (Number.isInteger(pid) && pid > 0) {
    try {
      process.kill(pid, 0);
      return `driven by \`veer pipeline run\` (process ${pid})`;
    } catch {
      // a dead run's lock
    }
  }
  return 'no `veer pipeline run` drives it now: run it again to resume';
}

function actor(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

/** `veer pipeline abort`: marks the pipeline aborted, aborts its running rollouts and, with onAbort: rollback, rolls back its promoted stages. */
export async function runPipelineAbort(planFile: string, flags: PipelineFlags, io: CommandIO): Promise<number> {
  return guarded(io, async () => {
    const plan = await planOf(planFile, io);
    const file = stateFileOf(planFile, flags);
    const retry = retryOf(flags);
    // A `run` that writes between this read and this write makes the save fail: read again and redo.
    for (let attempt = 0; ; attempt++) {
      const state = await readPipelineState(file);
      if (state === null) {
        io.err(`veer: the pipeline of ${planFile} has not started (no state file ${file}); nothing to abort [no_pipeline]`);
        return 1;
      }
      if (state.fingerprint !== plan.fingerprint) throw new BadInput(`the state file ${file} belongs to another plan (its service, canary, stages or soak changed since it started); give the plan it was started with`, 'pipeline_changed');
      if (state.phase === 'promoted' || state.phase === 'failed' || state.phase === 'aborted') {
        io.err(`veer: the pipeline already ended: ${summaryOf(state)} [pipeline_ended]`);
        return 1;
      }
      const view = lineView(io);
      const store = new PipelineStore(file, `abort:${process.pid}`, state);
      try {
        if (state.phase === 'running') {
          state.phase = 'stopping';
          state.outcome = 'aborted';
          state.reason = `aborted by ${actor()}${flags.reason ? ` (${flags.reason})` : ''}`;
          await store.save(state);
        }
        view.note(`stopping the pipeline: ${state.reason}`);
        const clients = clientsOf(plan, state, retry, () => view);
        await stopPipeline({ state, clients, save: () => store.save(state), show: (s) => view.stage(s), note: (l) => view.note(l), now: () => new Date() });
      } catch (err) {
        if (err instanceof ExternalChangeError && attempt < 5) continue;
        throw err;
      }
      io.out(summaryOf(state));
      return rollbackFailed(state) ? 1 : 0;
    }
  });
}

function rollbackFailed(state: PipelineState): boolean {
  return state.stages.some((s) => s.rollback?.status === 'failed');
}

/** Adds `veer pipeline run|status|abort`; `exit` receives each command's exit code. */
export function addPipelineCommands(program: Command, exit: (code: number) => void): void {
  const pipeline = program.command('pipeline').description('carry a rollout through stages (environments, clusters, regions), each gated by its own analysis: run, status, abort');
  const withOptions = (command: Command) =>
    command
      .argument('<plan>', 'the plan, e.g. PLAN.yaml')
      .option('--state <file>', "the pipeline's state file (default: the plan's path + .state.json, e.g. PLAN.yaml.state.json)")
      .option('--interval <ms>', 'how often to poll each stage, in milliseconds', '500')
      .addOption(new Option('--retries <n>', 'tries of a stage that does not answer before it counts as failed').env('VEER_PIPELINE_RETRIES').default(String(DEFAULT_RETRY.tries)))
      .addOption(new Option('--retry-delay <duration>', 'the first wait between tries; each next one doubles').env('VEER_PIPELINE_RETRY_DELAY').default(`${DEFAULT_RETRY.delayMs / 1000}s`));
  withOptions(pipeline.command('run').description('run the plan, or resume it where it was: exit 0 when every stage promoted, 1 when it failed or was aborted, 2 for bad input')).action(
    async (plan: string, flags: PipelineFlags) => exit(await runPipelineCommand(plan, flags, processIO)),
  );
  withOptions(pipeline.command('status').description("the pipeline's progress, from its state file").option('--json', 'print the state file')).action(async (plan: string, flags: PipelineFlags) =>
    exit(await runPipelineStatus(plan, flags, processIO)),
  );
  withOptions(pipeline.command('abort').description('stop the pipeline: abort its running rollouts and, with onAbort: rollback, roll back its promoted stages').option('--reason <text>', 'why, for the state and the history')).action(
    async (plan: string, flags: PipelineFlags) => exit(await runPipelineAbort(plan, flags, processIO)),
  );
}

