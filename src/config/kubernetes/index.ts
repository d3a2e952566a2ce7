// Kubernetes manifests -> veer services: the translators (HTTPRoute, Ingress
// with ingress-nginx canary annotations, Argo Rollout, Flagger Canary), the
// reader of files and folders, and `include:`'s per-object last good copy.

export { translateManifests, objectKey } from './translate.ts';
export type { TranslationResult } from './translate.ts';
export { readManifests } from './read.ts';
export type { ReadProblem } from './read.ts';
export { IncludedManifests, kubernetesOptions, checkService, nothingTaken, takeService, watchIncluded, findingIssue } from './include.ts';
export type { IncludedServices, Taken } from './include.ts';
export { DEFAULT_KUBERNETES } from './types.ts';
export type { Finding, KubernetesOptions, Manifest, ObjectResult, ServiceDoc, SourcedManifest } from './types.ts';
