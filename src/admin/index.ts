// Owns: the admin HTTP server: health, readiness, /metrics, token auth, the JSON admin API under /api/v1, the dashboard.
// Must not touch: the route table directly, sockets of the data plane; every write is a command to state/.

export { createAdminServer } from './server.ts';
export type { AdminOptions } from './server.ts';
export { registerAdminApi, actorOf } from './api.ts';
export type { AdminApi } from './api.ts';
export { checkBearer, PUBLIC_PATHS } from './api-auth.ts';
export type { EndpointView, EndpointsOf, ServiceView, VersionView } from './api-views.ts';
// The answers' types, for clients of the API (the CLI).
export type { RolloutStatus, ShiftStatus, ReleaseStatus, ReleaseMemberStatus } from '../rollout/index.ts';
export type { AnalysisResult, HistoryEntry } from '../state/index.ts';
