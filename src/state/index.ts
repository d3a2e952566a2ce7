// Owns: the one writer of the current route table; runtime weights; config reload consumption.
// Must not touch: HTTP serving, YAML parsing details, sockets.

export { RouteState } from './route-state.ts';
export type { BindUpstream, TableListener } from './route-state.ts';
export { ConfigReloader } from './config-reloader.ts';
export type { ReloadStats, ReloadOutcome } from './config-reloader.ts';
