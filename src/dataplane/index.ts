// Owns: the data-plane listeners: accept, route on the current table, forward through its upstream registry, drain.
// Must not touch: config files, state writes, the admin API; it only reads the published table.

export { createDataPlane } from './server.ts';
export type { DataPlane, DataPlaneOptions } from './server.ts';
export { CertificateStore, openCertificateStore } from './certificates.ts';
export type { CertificateInfo, CertificateProblem, CertificateConfig, PlacedCertificateProblem } from './certificates.ts';
