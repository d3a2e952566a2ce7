// Every object among the manifests -> what it becomes, by kind. Objects are
// translated together because some speak of others: a canary Ingress of its
// main Ingress, an HTTPRoute of the ReferenceGrants that allow its backends,
// a Rollout of its AnalysisTemplates.

import { translateArgoRollout } from './argo-rollout.ts';
import { asRecord, asString } from './fields.ts';
import { translateFlaggerCanary } from './flagger-canary.ts';
import { readReferenceGrants, translateHttpRoute } from './httproute.ts';
import { translateIngresses } from './ingress.ts';
import type { KubernetesOptions, Manifest, ObjectResult } from './types.ts';

/** Kinds read only as context of others. */
const CONTEXT_KINDS = new Set(['ReferenceGrant', 'AnalysisTemplate', 'ClusterAnalysisTemplate']);

/** What a set of manifests became. */
export interface TranslationResult {
  /** One per routing object (HTTPRoute, Ingress, Rollout, Canary), in input order. */
  readonly results: readonly ObjectResult[];
  /** Objects of other kinds (Deployments, Services...), `Kind namespace/name`: not routing, skipped. */
  readonly ignored: readonly string[];
}

/** `Kind namespace/name` of any manifest. */
export function objectKey(manifest: Manifest): string {
  const metadata = asRecord(manifest.metadata);
  return `${String(manifest.kind)} ${asString(metadata?.namespace) ?? 'default'}/${asString(metadata?.name) ?? '(unnamed)'}`;
}

/** Translates the routing objects among `manifests`. */
export function translateManifests(manifests: readonly Manifest[], options: KubernetesOptions): TranslationResult {
  const grants = readReferenceGrants(manifests.filter((m) => m.kind === 'ReferenceGrant'));
  const templates = new Map<string, Manifest>();
  for (const m of manifests) if (m.kind === 'AnalysisTemplate' || m.kind === 'ClusterAnalysisTemplate') templates.set(asString(asRecord(m.metadata)?.name) ?? '', m);
  const ingresses = manifests.filter((m) => m.kind === 'Ingress');
  const ingressResults = translateIngresses(ingresses, options);
  const byManifest = new Map<Manifest, ObjectResult>();
  ingresses.forEach((m, i) => byManifest.set(m, ingressResults[i]!));
  const results: ObjectResult[] = [];
  const ignored: string[] = [];
  const seen = new Set<string>();
  const serviceOwners = new Map<string, string>();
  for (const m of manifests) {
    let result: ObjectResult | undefined;
    if (typeof m.kind !== 'string' || m.kind === '') {
      result = { key: objectKey(m), kind: '(no kind)', object: objectKey(m).split(' ')[1]!, services: [], findings: [] };
      result.findings.push({ code: 'invalid_manifest', kind: '(no kind)', object: result.object, field: 'kind', reason: 'is required' });
    } else if (m.kind === 'Ingress') result = byManifest.get(m);
    else if (m.kind === 'HTTPRoute') result = translateHttpRoute(m, options, grants);
    else if (m.kind === 'Rollout') result = translateArgoRollout(m, options, templates);
    else if (m.kind === 'Canary') result = translateFlaggerCanary(m, options);
    else if (!CONTEXT_KINDS.has(m.kind)) ignored.push(objectKey(m));
    if (result === undefined) continue;
    if (seen.has(result.key)) {
      result.services.length = 0;
      result.findings.push({ code: 'invalid_manifest', kind: result.kind, object: result.object, field: 'metadata.name', reason: `${result.key} is given twice; the first one is used` });
    }
    seen.add(result.key);
    const taken = result.services.map((s) => String(s.name)).find((name) => serviceOwners.has(name));
    if (taken !== undefined) {
      result.findings.push({ code: 'not_mapped', kind: result.kind, object: result.object, field: 'metadata.name', reason: `its service name ${taken} is already ${serviceOwners.get(taken)}'s` });
      result.services.length = 0;
    }
    for (const service of result.services) serviceOwners.set(String(service.name), result.key);
    results.push(result);
  }
  return { results, ignored };
}
