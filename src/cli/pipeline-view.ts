// What `veer pipeline run` shows while it works. On a terminal: one line per
// stage (cli-progress bars, redrawn in place) with pipeline events printed
// above them. In a pipe or a CI log: one line per change, no redraws.
//
//   dev      [████████████████████] promoted      promoted and soaked
//   staging  [██████████░░░░░░░░░░] running       progressing step 2/4, v2 at 25%; last check pass
//   prod-eu  [░░░░░░░░░░░░░░░░░░░░] pending       not started

import cliProgress from 'cli-progress';
import type { CommandIO } from './admin-io.ts';
import type { PipelineState, StageState } from './pipeline-state.ts';

/** Receives the pipeline's changes. */
export interface PipelineView {
  /** A stage changed (its status or detail). */
  stage(s: StageState): void;
  /** A pipeline-level event. */
  note(line: string): void;
  /** Ends the live view (the terminal gets its cursor back). */
  close(): void;
}

/** `dev: running: progressing step 1/2, v2 at 50%; last check pass` (and the rollback, when there was one). */
export function describeStage(s: StageState): string {
  const rollback = s.rollback === null ? '' : `; ${s.rollback.status === 'done' ? 'rolled back' : 'rollback failed'}: ${s.rollback.detail}`;
  return `${s.name}: ${s.status}: ${s.detail}${rollback}`;
}

function progressOf(s: StageState): [value: number, total: number] {
  if (s.status === 'promoted' || s.status === 'soaking') return [1, 1];
  if (s.rollout === null || s.rollout.stepCount === 0) return [0, 1];
  const step = s.rollout.phase === 'promoted' ? s.rollout.stepCount : s.rollout.step + 1;
  return [Math.min(step, s.rollout.stepCount), s.rollout.stepCount];
}

/** One line per change: for logs and pipes. */
export function lineView(io: CommandIO): PipelineView {
  const last = new Map<string, string>();
  return {
    stage(s) {
      const line = describeStage(s);
      if (last.get(s.name) === line) return;
      last.set(s.name, line);
      io.out(line);
    },
    note: (line) => io.out(line),
    close: () => undefined,
  };
}

/** Bars redrawn in place on `stream` (a terminal), one per stage of `state`. */
export function liveView(state: PipelineState, stream: NodeJS.WritableStream = process.stderr): PipelineView {
  const width = Math.max(...state.stages.map((s) => s.name.length));
  const multi = new cliProgress.MultiBar(
    {
      stream,
      format: '{stage} [{bar}] {status} {detail}',
      barsize: 20,
      hideCursor: true,
      clearOnComplete: false,
      gracefulExit: false,
      forceRedraw: true,
      autopadding: true,
      linewrap: false,
      barCompleteChar: '\u2588',
      barIncompleteChar: '\u2591',
    },
    cliProgress.Presets.shades_classic,
  );
  const payload = (s: StageState) => ({ stage: s.name.padEnd(width), status: s.status.padEnd(9), detail: describeStage(s).slice(s.name.length + s.status.length + 4) });
  const bars = new Map(
    state.stages.map((s) => {
      const [value, total] = progressOf(s);
      return [s.name, multi.create(total, value, payload(s))] as const;
    }),
  );
  let closed = false;
  return {
    stage(s) {
      const bar = bars.get(s.name);
      if (bar === undefined || closed) return;
      const [value, total] = progressOf(s);
      bar.setTotal(total);
      bar.update(value, payload(s));
    },
    note(line) {
      if (!closed) multi.log(`${line}\n`);
    },
    close() {
      if (closed) return;
      closed = true;
      multi.update();
      multi.stop();
    },
  };
}
