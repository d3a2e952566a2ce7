// A pipeline's progress on disk: the state file that lets `veer pipeline run`
// resume where a dead command left off, and the lock that keeps two runs of
// one pipeline apart.
//
//   PLAN.yaml.state.json        written whole after every change: temp file in the
//                               same directory, fsync, rename over the old one
//   PLAN.yaml.state.json.lock   the pid of the `run` that drives it; a dead pid's lock is taken over
//
// `revision` and `writer` make each write a compare-and-swap: a `run` that
// finds another writer's revision on disk (`veer pipeline abort`) stops
// instead of overwriting it.

import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import type { PipelinePlan } from './pipeline-plan.ts';
import { stagesOf } from './pipeline-plan.ts';

/** The `format` tag of the state documents this code reads and writes. */
export const PIPELINE_STATE_FORMAT = 'veer-pipeline-state/1';

const Weights = Type.Record(Type.String(), Type.Number());
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

const StageStateSchema = Type.Object({
  name: Type.String(),
  admin: Type.String(),
  /** pending -> starting -> running -> (soaking) -> promoted; or failed; or stopped (the pipeline stopped it). */
  status: Type.Union(['pending', 'starting', 'running', 'soaking', 'promoted', 'failed', 'stopped'].map((s) => Type.Literal(s))),
  /** Taken just before the rollout was started: the weights to go back to, and the rollout that was there (to tell ours apart after a crash). */
  before: Nullable(Type.Object({ weights: Weights, rolloutId: Nullable(Type.String()), at: Type.String() })),
  /** The id of the rollout this stage started on its veer. */
  rolloutId: Nullable(Type.String()),
  /** The rollout as last seen. */
  rollout: Nullable(Type.Object({ phase: Type.String(), step: Type.Integer(), stepCount: Type.Integer(), canaryWeight: Type.Number() })),
  startedAt: Nullable(Type.String()),
  promotedAt: Nullable(Type.String()),
  soakUntil: Nullable(Type.String()),
  endedAt: Nullable(Type.String()),
  /** What happened last, in words. */
  detail: Type.String(),
  /** Set once the pipeline tried to roll this promoted stage back. */
  rollback: Nullable(Type.Object({ status: Type.Union([Type.Literal('done'), Type.Literal('failed')]), at: Type.String(), detail: Type.String() })),
});

const PipelineStateSchema = Type.Object({
  format: Type.Literal(PIPELINE_STATE_FORMAT),
  fingerprint: Type.String(),
  service: Type.String(),
  canary: Type.String(),
  onAbort: Type.Union([Type.Literal('rollback'), Type.Literal('stop')]),
  /** running -> promoted; running -> stopping (abort the running stages, roll back) -> failed | aborted. */
  phase: Type.Union(['running', 'stopping', 'promoted', 'failed', 'aborted'].map((s) => Type.Literal(s))),
  /** While stopping: how it will end. */
  outcome: Nullable(Type.Union([Type.Literal('failed'), Type.Literal('aborted')])),
  reason: Type.String(),
  revision: Type.Integer({ minimum: 0 }),
  writer: Type.String(),
  startedAt: Type.String(),
  updatedAt: Type.String(),
  endedAt: Nullable(Type.String()),
  stages: Type.Array(StageStateSchema),
});

/** One stage's progress. */
export type StageState = Static<typeof StageStateSchema> & { status: StageStatus };
/** A stage's status. */
export type StageStatus = 'pending' | 'starting' | 'running' | 'soaking' | 'promoted' | 'failed' | 'stopped';
/** A pipeline's phase. */
export type PipelinePhase = 'running' | 'stopping' | 'promoted' | 'failed' | 'aborted';
/** The whole state document. */
export type PipelineState = Omit<Static<typeof PipelineStateSchema>, 'stages' | 'phase'> & { phase: PipelinePhase; stages: StageState[] };

let validateState: ReturnType<Ajv['compile']> | undefined;

/** The state file is there but cannot be used (not JSON, not a pipeline state). */
export class StateFileError extends Error {
  override name = 'StateFileError';
}

/** Another process wrote the state file since this one read or wrote it. */
export class ExternalChangeError extends Error {
  readonly current: PipelineState;
  constructor(current: PipelineState) {
    super(`the pipeline state was changed by ${current.writer} (now ${current.phase})`);
    this.name = 'ExternalChangeError';
    this.current = current;
  }
}

/** Another live process runs this pipeline. */
export class LockedError extends Error {
  override name = 'LockedError';
}

/** A fresh state for `plan`: every stage pending. */
export function newPipelineState(plan: PipelinePlan, now: Date): PipelineState {
  const at = now.toISOString();
  return {
    format: PIPELINE_STATE_FORMAT,
    fingerprint: plan.fingerprint,
    service: plan.service,
    canary: plan.canary,
    onAbort: plan.onAbort,
    phase: 'running',
    outcome: null,
    reason: 'started',
    revision: 0,
    writer: '',
    startedAt: at,
    updatedAt: at,
    endedAt: null,
    stages: stagesOf(plan).map((s) => ({
      name: s.name,
      admin: s.admin,
      status: 'pending',
      before: null,
      rolloutId: null,
      rollout: null,
      startedAt: null,
      promotedAt: null,
      soakUntil: null,
      endedAt: null,
      detail: 'not started',
      rollback: null,
    })),
  };
}

/** Reads the state file: null when there is none; throws StateFileError when it is not a pipeline state. */
export async function readPipelineState(file: string): Promise<PipelineState | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StateFileError(`cannot read the pipeline state ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new StateFileError(`the pipeline state ${file} is not valid JSON (${(err as Error).message}); move it away to start the pipeline over`);
  }
  validateState ??= new Ajv({ strict: false }).compile(PipelineStateSchema);
  if (!validateState(data)) {
    const e = validateState.errors?.[0];
    throw new StateFileError(`${file} is not a veer pipeline state (${e?.instancePath || '/'} ${e?.message ?? ''}); move it away to start the pipeline over`);
  }
  return data as PipelineState;
}

/** Writes the state file and compares-and-swaps against other writers; saves run one at a time. */
export class PipelineStore {
  readonly file: string;
  readonly writer: string;
  #expected: { revision: number; writer: string } | null;
  #chain: Promise<void> = Promise.resolve();

  /** `read`: the state as read from disk (null: no file yet). */
  constructor(file: string, writer: string, read: PipelineState | null) {
    this.file = file;
    this.writer = writer;
    this.#expected = read === null ? null : { revision: read.revision, writer: read.writer };
  }

  /** Writes `state` as the next revision; throws ExternalChangeError when someone else wrote since. */
  save(state: PipelineState): Promise<void> {
    const next = this.#chain.then(async () => {
      await this.#compare();
      state.revision = (this.#expected?.revision ?? 0) + 1;
      state.writer = this.writer;
      state.updatedAt = new Date().toISOString();
      await writeAtomically(this.file, `${JSON.stringify(state, null, 2)}\n`);
      this.#expected = { revision: state.revision, writer: state.writer };
    });
    this.#chain = next.catch(() => undefined);
    return next;
  }

  /** Throws ExternalChangeError when the file on disk is not the one this store last read or wrote (after the saves under way). */
  check(): Promise<void> {
    const next = this.#chain.then(() => this.#compare());
    this.#chain = next.catch(() => undefined);
    return next;
  }

  async #compare(): Promise<void> {
    const disk = await readPipelineState(this.file);
    if (disk === null && this.#expected === null) return;
    if (disk === null || this.#expected === null || disk.revision !== this.#expected.revision || disk.writer !== this.#expected.writer) {
      if (disk !== null) throw new ExternalChangeError(disk);
      throw new StateFileError(`the pipeline state ${this.file} was removed while the pipeline ran`);
    }
  }
}

/** Write a temp file beside `file`, fsync it, rename it over `file`, fsync the directory. */
export async function writeAtomically(file: string, text: string): Promise<void> {
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, file);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  const dir = await open(dirname(file), 'r').catch(() => null);
  if (dir !== null) {
    await dir.sync().catch(() => undefined);
    await dir.close();
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes `STATE.lock` for this process; a lock whose process is gone is taken over. Throws LockedError when a live process holds it. */
export async function acquireLock(stateFile: string): Promise<{ release(): Promise<void> }> {
  const lock = `${stateFile}.lock`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(lock, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return {
        release: async () => {
          const held = await readFile(lock, 'utf8').catch(() => '');
          if (Number(held.trim()) === process.pid) await unlink(lock).catch(() => undefined);
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new LockedError(`the pipeline is already being run by process ${pid} (${lock}); follow it with \`veer pipeline status\`, or stop it with \`veer pipeline abort\``);
    }
    // Its process died (killed, machine restarted): the run that starts now takes over.
    await unlink(lock).catch(() => undefined);
  }
  throw new LockedError(`cannot take the lock ${lock}`);
}
