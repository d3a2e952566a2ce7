// What GET /api/v1/releases/{name} answers: the configured release, its
// stored record (held by every member) and the engine's live view.

import type { ReleaseConfig } from '../config/index.ts';
import type { AnalysisResult, ReleaseRecord } from '../state/index.ts';
import { releaseRollbackUntil } from './release.ts';
import type { LiveRun } from './run-loop.ts';

/** The engine's in-memory view of one running release (run-loop.ts); its lastAnalysis is the last check of each member's canary. */
export interface LiveRelease extends LiveRun<Record<string, AnalysisResult>> {
  /** The last check passed for every member. */
  lastPassed: boolean;
}

/** One member as the status shows it. */
export interface ReleaseMemberStatus {
  readonly canary: string;
  readonly stable: string | null;
  /** The canary version's labels (commit, image, ...). */
  readonly labels: Readonly<Record<string, string>>;
  /** The member's weights as published now. */
  readonly weights: Readonly<Record<string, number>>;
  readonly lastAnalysis: AnalysisResult | null;
}

/** A release as the API shows it. */
export interface ReleaseStatus {
  readonly name: string;
  /** `idle` when it never ran. */
  readonly phase: ReleaseRecord['phase'] | 'idle';
  readonly id: string | null;
  readonly step: number | null;
  readonly stepCount: number;
  readonly canaryWeight: number;
  readonly pausedBy: ReleaseRecord['pausedBy'];
  readonly reason: string | null;
  readonly startedAt: string | null;
  readonly endedAt: string | null;
  /** Until when `abort` rolls a promoted release back (its rollbackWindow after the promotion); null unless promoted. */
  readonly rollbackUntil: string | null;
  readonly nextCheckAt: string | null;
  readonly consecutiveFailures: number;
  readonly members: Readonly<Record<string, ReleaseMemberStatus>>;
}

/** Merges the config, the stored record and the live view. */
export function describeRelease(
  config: ReleaseConfig,
  record: ReleaseRecord | undefined,
  live: LiveRelease | undefined,
  weights: Readonly<Record<string, Readonly<Record<string, number>>>>,
  labels: Readonly<Record<string, Readonly<Record<string, string>>>>,
): ReleaseStatus {
  const running = record !== undefined && (record.phase === 'progressing' || record.phase === 'paused');
  const current = running && live !== undefined && live.runId === record.id ? live : undefined;
  const members: Record<string, ReleaseMemberStatus> = {};
  for (const [service, canary] of Object.entries(config.services)) {
    const held = record?.members[service];
    members[service] = {
      canary,
      stable: held?.stable ?? null,
      labels: labels[service] ?? {},
      weights: weights[service] ?? {},
      lastAnalysis: current?.lastAnalysis?.[service] ?? record?.lastAnalysis[service] ?? null,
    };
  }
  const step = record === undefined ? null : record.step;
  return {
    name: config.name,
    phase: record?.phase ?? 'idle',
    id: record?.id ?? null,
    step,
    stepCount: record?.steps.length ?? config.steps.length,
    canaryWeight: record === undefined ? 0 : record.phase === 'promoted' ? 100 : record.phase === 'aborted' || record.phase === 'rolledBack' ? 0 : (record.steps[record.step]?.weight ?? 0),
    pausedBy: record?.pausedBy ?? null,
    reason: record?.reason ?? null,
    startedAt: record?.startedAt ?? null,
    endedAt: record?.endedAt ?? null,
    rollbackUntil: releaseRollbackUntil(record, config.rollbackWindow),
    nextCheckAt: current?.nextCheckAt != null ? new Date(current.nextCheckAt).toISOString() : null,
    consecutiveFailures: current?.failures ?? 0,
    members,
  };
}
