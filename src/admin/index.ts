// Owns: the admin HTTP server: health, readiness, token auth, the JSON admin API under /api/v1.
// Must not touch: the route table directly, sockets of the data plane; every write is a command to state/.

export { createAdminServer } from './server.ts';
export type { AdminOptions } from './server.ts';
export { registerAdminApi, actorOf } from './api.ts';
export type { AdminApi } from './api.ts';
export { checkBearer, PUBLIC_PATHS } from './api-auth.ts';
export type { ServiceView, VersionView } from './api-views.ts';
