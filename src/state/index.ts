// Owns: the one writer of the current table (table publisher), the command pipeline (runtime weights, rollout and shift
// records, history), the state stores (file, etcd/), and config reload consumption.
// Must not touch: HTTP serving, YAML parsing details, sockets other than the etcd client's.

export { TablePublisher } from './table-publisher.ts';
export type { TableChange, TableListener } from './table-publisher.ts';
export { ConfigReloader } from './config-reloader.ts';
export type { ReloadStats, ReloadOutcome, ReloadListener } from './config-reloader.ts';
export { RuntimeState } from './runtime-state.ts';
export type { ServiceChange, ServiceView, CommandResult, ChangeListener, RuntimeStateOptions, MultiChange, MemberChange } from './runtime-state.ts';
export { FileStore } from './file-store.ts';
// The etcd store is opened through openStateStore, which loads its client only when the config asks for it.
export type { EtcdStore, EtcdStoreOptions } from './etcd/store.ts';
export { openStateStore } from './open-store.ts';
export { StateLoadError, StoreConflictError } from './store.ts';
export type { StateStore, SaveChange, SaveResult, StoreChange, StoreHealth, ReplicaView, Leadership, FleetWindowStore } from './store.ts';
export { CommandQueue } from './command-queue.ts';
export { checkWeights, toPercents, splitAround, roundPercent, MAX_WEIGHT } from './weights.ts';
export { STATE_FORMAT, PersistedStateSchema, ROLLOUT_PHASES, isRolloutActive, isReleaseActive, emptyState } from './records.ts';
export type { AnalysisSpec, AnalysisResult, ReplicaShare, HookCall, MetricCheck, MetricResult, ReleaseMember, ReleaseRecord, RolloutPhase, RolloutRecord, ShiftRecord, ServiceRecord, HistoryEntry, PersistedState, WeightMap } from './records.ts';
// Records keep durations in the config's grammar (a step's `pause`, a shift's `every`); whoever reads or writes them parses them alike.
export { parseDuration, Duration } from '../config/index.ts';
