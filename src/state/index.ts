// Owns: the one writer of the current route table; runtime weights, rollout and shift records, history, the state store; config reload consumption.
// Must not touch: HTTP serving, YAML parsing details, sockets.

export { RouteState } from './route-state.ts';
export type { BindUpstream, TableListener } from './route-state.ts';
export { ConfigReloader } from './config-reloader.ts';
export type { ReloadStats, ReloadOutcome } from './config-reloader.ts';
export { RuntimeState } from './runtime-state.ts';
export type { ServiceChange, ServiceView, CommandResult, ChangeListener, RuntimeStateOptions } from './runtime-state.ts';
export { FileStore } from './file-store.ts';
export { EtcdStore } from './etcd-store.ts';
export { openStateStore, storeHealth } from './open-store.ts';
export type { EtcdStoreOptions } from './etcd-store.ts';
export { readEtcdSecurity, describeEtcdError } from './etcd-credentials.ts';
export type { EtcdSecurity, EtcdSecurityResult } from './etcd-credentials.ts';
export { StateLoadError, StoreConflictError } from './store.ts';
export type { StateStore, SaveChange, SaveResult, StoreHealth, ReplicaView, Leadership } from './store.ts';
export { CommandQueue } from './command-queue.ts';
export { checkWeights, toPercents, splitAround, roundPercent, MAX_WEIGHT } from './weights.ts';
export { STATE_FORMAT, PersistedStateSchema, isRolloutActive, emptyState } from './records.ts';
export type { AnalysisSpec, AnalysisResult, RolloutPhase, RolloutRecord, ShiftRecord, ServiceRecord, HistoryEntry, PersistedState, WeightMap } from './records.ts';
