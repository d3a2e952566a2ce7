// Owns: the data-plane listeners: accept, route on the current table, forward through its upstream registry, drain.
// Must not touch: config files, state writes, the admin API; it only reads the published table.

export { createDataPlane } from './server.ts';
export type { DataPlane, DataPlaneOptions } from './server.ts';
export { CertificateStore, openCertificateStore } from './certificates.ts';
export type { CertificateInfo, CertificateProblem, CertificateConfig, PlacedCertificateProblem } from './certificates.ts';
export { releaseStartupHeap } from './startup-heap.ts';
export { openTracing, parseTraceParent, Tracer } from './tracing.ts';
export type { TracingOptions, TracingSettings } from './tracing.ts';
export { OtlpExporter } from './otlp-exporter.ts';
export type { OtlpSpan } from './otlp-exporter.ts';
