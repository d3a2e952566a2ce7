// `veer import FILE|DIR...`: Kubernetes manifests (HTTPRoute, Ingress with
// ingress-nginx canary annotations, Argo Rollout, Flagger Canary) -> the
// equivalent veer config on stdout; on stderr every field left out, with the
// object and the field. Exit 0: everything mapped; 2: something was left
// out; 1: an input could not be read.

import { relative } from 'node:path';
import { stringify } from 'yaml';
import { DEFAULT_KUBERNETES, checkService, nothingTaken, objectKey, readManifests, takeService, translateManifests, type KubernetesOptions, type ServiceDoc } from '../config/index.ts';

/** `--backend-url`, `--ingress-class`. */
export interface ImportOptions {
  readonly backendUrl?: string;
  readonly ingressClasses?: readonly string[];
}

/** Runs the import; returns the exit code. */
export async function runImport(paths: readonly string[], options: ImportOptions, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const k8s: KubernetesOptions = {
    backendUrl: options.backendUrl ?? DEFAULT_KUBERNETES.backendUrl,
    ingressClasses: options.ingressClasses !== undefined && options.ingressClasses.length > 0 ? options.ingressClasses : DEFAULT_KUBERNETES.ingressClasses,
  };
  const cwd = process.cwd();
  const { manifests, problems } = await readManifests(paths, cwd);
  for (const p of problems) err(`veer import: ${relative(cwd, p.file) || p.file}: ${p.message}`);
  const { results, ignored } = translateManifests(
    manifests.map((m) => m.manifest),
    k8s,
  );
  // The file of each object (the first, when one is given twice).
  const files = new Map<string, string>();
  for (const m of manifests) if (!files.has(objectKey(m.manifest))) files.set(objectKey(m.manifest), relative(cwd, m.file) || m.file);
  let leftOut = 0;
  const services: ServiceDoc[] = [];
  const taken = nothingTaken();
  for (const r of results) {
    const file = files.get(r.key) ?? '';
    for (const f of r.findings) {
      err(`${file}: ${f.kind} ${f.object} ${f.field}: ${f.reason} [${f.code}]`);
      leftOut += 1;
    }
    for (const service of r.services) {
      const problem = checkService(service, taken);
      if (problem !== null) {
        err(`${file}: ${r.kind} ${r.object}: ${problem} [invalid_manifest]`);
        leftOut += 1;
        continue;
      }
      takeService(service, taken);
      services.push(service);
    }
  }
  for (const key of ignored) err(`${files.get(key) ?? ''}: ${key}: not a routing object, skipped`);
  if (services.length > 0) {
    const sources = results.filter((r) => !r.findings.some((f) => f.code === 'invalid_manifest')).map((r) => `${r.kind} ${r.object}`);
    out(`# veer config from ${sources.join(', ')}\n${stringify({ services }, { lineWidth: 0 })}`.trimEnd());
  }
  if (problems.length > 0) return 1;
  return leftOut > 0 ? 2 : 0;
}
