// What the state store keeps: runtime weights, the rollout and shift of each
// service, and the history of every change. Plain JSON data with a TypeBox
// schema, so a file someone edited by hand is checked before it is trusted.
//
//   PersistedState
//   ├── format: "veer-state/1"
//   ├── services: { [service]: ServiceRecord }
//   │     ├── weights?  { v1: 90, v2: 10 }   runtime weights (win over the config's)
//   │     ├── rollout?  RolloutRecord        the latest rollout, running or ended
//   │     └── shift?    ShiftRecord          a gradual move in progress
//   └── history: HistoryEntry[]              oldest first, bounded

import { Type, type Static } from '@sinclair/typebox';

/** The `format` tag of the state document this code reads and writes. */
export const STATE_FORMAT = 'veer-state/1';

const Weights = Type.Record(Type.String(), Type.Number({ minimum: 0 }));

/** A Prometheus query (placeholders not yet filled) whose value must stay within [min, max]. */
const MetricCheckSchema = Type.Object({
  name: Type.String(),
  query: Type.String(),
  min: Type.Union([Type.Number(), Type.Null()]),
  max: Type.Union([Type.Number(), Type.Null()]),
});

/** Thresholds of a rollout's analysis, with defaults filled in. */
export const AnalysisSpecSchema = Type.Object({
  intervalMs: Type.Number({ exclusiveMinimum: 0 }),
  minRequests: Type.Integer({ minimum: 0 }),
  maxErrorRate: Type.Union([Type.Number(), Type.Null()]),
  maxP99Ms: Type.Union([Type.Number(), Type.Null()]),
  failureLimit: Type.Integer({ minimum: 1 }),
  /** Metric checks from Prometheus (absent: none). */
  metrics: Type.Optional(Type.Array(MetricCheckSchema)),
});

/** A step: the canary's weight, its pause (a duration, `forever`, or none), and its own analysis when it has one. */
const Step = Type.Object({ weight: Type.Number({ minimum: 0, maximum: 100 }), pause: Type.Optional(Type.String()), analysis: Type.Optional(AnalysisSpecSchema) });

/** One call of a rollout hook: the URL without its query or credentials, the answer's status (null: no answer) and how long it took. */
export const HookCallSchema = Type.Object({
  type: Type.String(),
  url: Type.String(),
  at: Type.String(),
  status: Type.Union([Type.Integer(), Type.Null()]),
  ok: Type.Boolean(),
  durationMs: Type.Number(),
  error: Type.Optional(Type.String()),
  attempts: Type.Optional(Type.Integer({ minimum: 1 })),
});

/** One metric check's outcome: the value (null: none), the filled-in query, and why. */
const MetricResultSchema = Type.Object({
  name: Type.String(),
  verdict: Type.Union([Type.Literal('pass'), Type.Literal('fail'), Type.Literal('inconclusive')]),
  value: Type.Union([Type.Number(), Type.Null()]),
  query: Type.String(),
  reason: Type.String(),
});

/** One replica's share of a check's window: its canary and stable requests; `leader` for the replica that ran the check. */
const ReplicaShareSchema = Type.Object({
  replica: Type.String(),
  leader: Type.Boolean(),
  canary: Type.Number(),
  stable: Type.Number(),
  canaryErrors: Type.Number(),
});

/** The numbers and verdict of one analysis check. */
export const AnalysisResultSchema = Type.Object({
  at: Type.String(),
  verdict: Type.Union([Type.Literal('pass'), Type.Literal('fail'), Type.Literal('inconclusive')]),
  reasons: Type.Array(Type.String()),
  windowMs: Type.Number(),
  canary: Type.Object({ requests: Type.Number(), errors: Type.Number(), errorRatio: Type.Number(), p99Ms: Type.Union([Type.Number(), Type.Null()]) }),
  stable: Type.Object({ requests: Type.Number(), errors: Type.Number(), errorRatio: Type.Number(), p99Ms: Type.Union([Type.Number(), Type.Null()]) }),
  z: Type.Union([Type.Number(), Type.Null()]),
  /** The metric checks of this check (absent: none configured). */
  metrics: Type.Optional(Type.Array(MetricResultSchema)),
  /** The `rollout` hooks called before this check. */
  hooks: Type.Optional(Type.Array(HookCallSchema)),
  /** With several replicas (etcd): the requests each live replica contributed to the window (absent: this replica's alone). */
  replicas: Type.Optional(Type.Array(ReplicaShareSchema)),
});

/** Phases of a rollout: progressing <-> paused -> promoted | aborted; promoted -> rolledBack (abort within the rollback window). The one list: metrics' veer_rollout_info is given it. */
export const ROLLOUT_PHASES = ['progressing', 'paused', 'promoted', 'aborted', 'rolledBack'] as const;
export const RolloutPhaseSchema = Type.Union(ROLLOUT_PHASES.map((phase) => Type.Literal(phase)));

/** What a rollout and a release share: the plan's steps and analysis, where the run is in them, and why. */
const RunFields = {
  steps: Type.Array(Step, { minItems: 1 }),
  analysis: Type.Union([AnalysisSpecSchema, Type.Null()]),
  phase: RolloutPhaseSchema,
  step: Type.Integer({ minimum: 0 }),
  stepStartedAt: Type.String(),
  startedAt: Type.String(),
  updatedAt: Type.String(),
  endedAt: Type.Union([Type.String(), Type.Null()]),
  /** Why the run is in its phase (e.g. why it paused or aborted). */
  reason: Type.String(),
};

const RolloutRecordSchema = Type.Object({
  id: Type.String(),
  /** blueGreen: one step at 0% with the preview rule open, then one switch (absent: canary steps). */
  strategy: Type.Optional(Type.Literal('blueGreen')),
  /** blueGreen: promote on the first passing check. */
  autoPromote: Type.Optional(Type.Boolean()),
  canary: Type.String(),
  /** Weights of the other versions when the rollout started; they share what the canary does not take. */
  stable: Weights,
  /** Every version's weight before the rollout started. */
  baseline: Weights,
  ...RunFields,
  /** Who holds a paused rollout: the plan (a step without pause), an operator, the analysis (too little traffic), or a confirm-promotion hook that has not said yes. */
  pausedBy: Type.Union([Type.Literal('plan'), Type.Literal('operator'), Type.Literal('analysis'), Type.Literal('confirm-promotion'), Type.Null()]),
  lastAnalysis: Type.Union([AnalysisResultSchema, Type.Null()]),
});

const ShiftRecordSchema = Type.Object({
  id: Type.String(),
  to: Type.String(),
  step: Type.Number({ exclusiveMinimum: 0, maximum: 100 }),
  everyMs: Type.Number({ exclusiveMinimum: 0 }),
  until: Type.Number({ minimum: 0, maximum: 100 }),
  startedAt: Type.String(),
  lastStepAt: Type.String(),
});

/** One member of a release: its canary, its stable version and every version's weight before the release. */
const ReleaseMemberSchema = Type.Object({ canary: Type.String(), stable: Type.String(), baseline: Weights });

/**
 * A release across services, kept whole in every member's record (all
 * members are written in one change, so the copies never differ).
 */
const ReleaseRecordSchema = Type.Object({
  name: Type.String(),
  id: Type.String(),
  members: Type.Record(Type.String(), ReleaseMemberSchema),
  ...RunFields,
  pausedBy: Type.Union([Type.Literal('plan'), Type.Literal('operator'), Type.Literal('analysis'), Type.Null()]),
  /** The last check of each member's canary. */
  lastAnalysis: Type.Record(Type.String(), AnalysisResultSchema),
});

const ServiceRecordSchema = Type.Object({
  weights: Type.Optional(Weights),
  rollout: Type.Optional(RolloutRecordSchema),
  shift: Type.Optional(ShiftRecordSchema),
  /** The latest release that held the service, running or ended. */
  release: Type.Optional(ReleaseRecordSchema),
});

const HistoryEntrySchema = Type.Object({
  seq: Type.Integer({ minimum: 1 }),
  at: Type.String(),
  service: Type.String(),
  actor: Type.String(),
  action: Type.String(),
  reason: Type.String(),
  before: Type.Record(Type.String(), Type.Number()),
  after: Type.Record(Type.String(), Type.Number()),
  details: Type.Optional(Type.Unknown()),
});

/** The whole state document. */
export const PersistedStateSchema = Type.Object({
  format: Type.Literal(STATE_FORMAT),
  updatedAt: Type.String(),
  services: Type.Record(Type.String(), ServiceRecordSchema),
  history: Type.Array(HistoryEntrySchema),
});

/** Runtime weights of one service, by version. */
export type WeightMap = Static<typeof Weights>;
/** Thresholds of a rollout's analysis. */
export type AnalysisSpec = Static<typeof AnalysisSpecSchema>;
/** One analysis check's verdict and numbers. */
export type AnalysisResult = Static<typeof AnalysisResultSchema>;
/** One replica's share of a check's window. */
export type ReplicaShare = Static<typeof ReplicaShareSchema>;
/** One call of a rollout hook, as the history and the status show it. */
export type HookCall = Static<typeof HookCallSchema>;
/** One metric check of an analysis spec. */
export type MetricCheck = Static<typeof MetricCheckSchema>;
/** One metric check's outcome. */
export type MetricResult = Static<typeof MetricResultSchema>;
/** One of the rollout phases. */
export type RolloutPhase = (typeof ROLLOUT_PHASES)[number];
/** A rollout, running or ended. */
export type RolloutRecord = Static<typeof RolloutRecordSchema>;
/** A gradual weight move in progress. */
export type ShiftRecord = Static<typeof ShiftRecordSchema>;
/** A release across services, running or ended. */
export type ReleaseRecord = Static<typeof ReleaseRecordSchema>;
/** One member of a release. */
export type ReleaseMember = Static<typeof ReleaseMemberSchema>;
/** What the store keeps about one service. */
export type ServiceRecord = Static<typeof ServiceRecordSchema>;
/** One line of the audit log. */
export type HistoryEntry = Static<typeof HistoryEntrySchema>;
/** The whole state document. */
export type PersistedState = Static<typeof PersistedStateSchema>;

/** True while a rollout holds the service's weights (a person or the plan may still move them). */
export function isRolloutActive(rollout: RolloutRecord | undefined): boolean {
  return rollout !== undefined && (rollout.phase === 'progressing' || rollout.phase === 'paused');
}

/** True while a release holds the service (its weights move with the other members'). */
export function isReleaseActive(release: ReleaseRecord | undefined): boolean {
  return release !== undefined && (release.phase === 'progressing' || release.phase === 'paused');
}

/** An empty document. */
export function emptyState(at: string): PersistedState {
  return { format: STATE_FORMAT, updatedAt: at, services: {}, history: [] };
}
