// Owns: the admin HTTP server (health, readiness; the admin API as it grows).
// Must not touch: the route table directly, sockets of the data plane; every write is a command to state/.

export { createAdminServer } from './server.ts';
export type { AdminOptions } from './server.ts';
