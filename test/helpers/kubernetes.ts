// deploy/kubernetes rendered for the tests in test/deploy/kubernetes-*.test.ts:
// each kustomization rendered once per test process (kubectl kustomize, or
// the subset of kustomize below when kubectl is missing), and the lookups the
// checks share: objects by kind and name, the pods a selector picks, the port
// a Service reaches, the veer config inside the mounted ConfigMap.

import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, posix } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IService } from 'kubernetes-models/v1/Service';
import { ROOT } from './veer.ts';

/** Any rendered Kubernetes object. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}
export type Workload = IDeployment | IStatefulSet;

/** Renders: the quick start (veer + example app), the base alone, and the etcd overlay. */
export const KUSTOMIZATIONS = {
  root: 'deploy/kubernetes',
  base: 'deploy/kubernetes/base',
  etcd: 'deploy/kubernetes/overlays/etcd',
} as const;
export type RenderName = keyof typeof KUSTOMIZATIONS;

// --- rendering -------------------------------------------------------------

/** `kubectl kustomize DIR`, or null when kubectl is not installed. */
function renderWithKubectl(dir: string): Manifest[] | null {
  const run = spawnSync('kubectl', ['kustomize', join(ROOT, dir)], { encoding: 'utf8', timeout: 20_000 });
  if ((run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return null;
  if (run.status !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${run.stderr}`);
  return parseManifests(run.stdout);
}

function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

const RENDERER_FIELDS = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'configMapGenerator', 'generatorOptions', 'images']);

/**
 * The subset of kustomize these kustomizations use (resources, namespace,
 * configMapGenerator from files without a name hash, images), so that the
 * checks still run where kubectl is missing. Anything else is refused loudly;
 * where kubectl exists, a test checks that both renders agree.
 */
function renderYourself(dir: string): Manifest[] {
  const abs = join(ROOT, dir);
  const k = parse(readFileSync(join(abs, 'kustomization.yaml'), 'utf8')) as {
    namespace?: string;
    resources?: string[];
    configMapGenerator?: { name: string; behavior?: string; files?: string[] }[];
    generatorOptions?: { disableNameSuffixHash?: boolean };
    images?: { name: string; newName?: string; newTag?: string }[];
  };
  for (const field of Object.keys(k)) {
    if (!RENDERER_FIELDS.has(field)) throw new Error(`${dir}/kustomization.yaml uses "${field}", which the test's renderer does not do: install kubectl`);
  }
  const objects: Manifest[] = [];
  for (const resource of k.resources ?? []) {
    const path = join(abs, resource);
    if (statSync(path).isDirectory()) objects.push(...renderYourself(posix.join(dir, resource)));
    else objects.push(...parseManifests(readFileSync(path, 'utf8')));
  }
  for (const gen of k.configMapGenerator ?? []) {
    const data = Object.fromEntries((gen.files ?? []).map((f) => [basename(f), readFileSync(join(abs, f), 'utf8')]));
    if (gen.behavior === 'replace') {
      const existing = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === gen.name);
      if (!existing) throw new Error(`${dir}: configMapGenerator replaces ${gen.name}, which no resource creates`);
      existing.data = data;
    } else {
      if (k.generatorOptions?.disableNameSuffixHash !== true) throw new Error(`${dir}: name hashes are not implemented here: install kubectl`);
      objects.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: gen.name }, data });
    }
  }
  for (const image of k.images ?? []) {
    for (const c of objects.flatMap(containersOf)) {
      if (c.image !== image.name && !c.image?.startsWith(`${image.name}:`)) continue;
      const tag = image.newTag ?? c.image.split(':')[1];
      c.image = `${image.newName ?? image.name}${tag ? `:${tag}` : ''}`;
    }
  }
  if (k.namespace) for (const o of objects) o.metadata.namespace = k.namespace;
  return objects;
}

export const byKey = (a: Manifest, b: Manifest) => keyOf(a).localeCompare(keyOf(b));
export const keyOf = (m: Manifest) => `${m.kind}/${m.metadata.namespace ?? ''}/${m.metadata.name}`;

export const kubectlRenders = new Map<RenderName, Manifest[] | null>();
export const ownRenders = new Map<RenderName, Manifest[]>();
for (const name of Object.keys(KUSTOMIZATIONS) as RenderName[]) {
  kubectlRenders.set(name, renderWithKubectl(KUSTOMIZATIONS[name]));
  ownRenders.set(name, renderYourself(KUSTOMIZATIONS[name]));
}
export const HAVE_KUBECTL = kubectlRenders.get('root') !== null;
/** What the checks run on: kubectl's render when there is one. */
export const renders = new Map<RenderName, Manifest[]>(
  [...ownRenders].map(([name, own]) => [name, (kubectlRenders.get(name) ?? own).sort(byKey)]),
);

// --- lookups ---------------------------------------------------------------

export function find<T>(objects: Manifest[], kind: string, name: string): T {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in the render`);
  return found as unknown as T;
}

export function podSpecOf(m: Manifest): IPodSpec | undefined {
  if (m.kind !== 'Deployment' && m.kind !== 'StatefulSet') return undefined;
  return (m as unknown as Workload).spec?.template.spec;
}

export function containersOf(m: Manifest): IContainer[] {
  const spec = podSpecOf(m);
  return spec ? [...(spec.initContainers ?? []), ...spec.containers] : [];
}

export function selects(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** The Deployments and StatefulSets whose pods a label selector picks, in one namespace. */
export function workloadsSelected(objects: Manifest[], namespace: string | undefined, selector: Record<string, string> | undefined): Workload[] {
  return objects
    .filter((o) => podSpecOf(o) && o.metadata.namespace === namespace)
    .map((o) => o as unknown as Workload)
    .filter((w) => selects(selector, w.spec?.template.metadata?.labels));
}

/** The container port a Service's targetPort (name or number) reaches on a workload's pods. */
export function containerPortFor(w: Workload, target: string | number | undefined): number | undefined {
  for (const c of w.spec?.template.spec?.containers ?? []) {
    for (const p of c.ports ?? []) if (p.name === target || p.containerPort === target) return p.containerPort;
  }
  return undefined;
}

/** The veer config inside the rendered ConfigMap that the veer Deployment mounts, and where. */
export function veerConfigOf(objects: Manifest[]) {
  const deployment = find<IDeployment>(objects, 'Deployment', 'veer');
  const pod = deployment.spec!.template.spec!;
  const container = pod.containers.find((c) => c.name === 'veer')!;
  const args = container.args ?? [];
  const configPath = args[args.indexOf('--config') + 1]!;
  const mount = container.volumeMounts?.find((m) => m.mountPath === dirname(configPath));
  const volume = pod.volumes?.find((v) => v.name === mount?.name);
  const configMap = find<Manifest & { data: Record<string, string> }>(objects, 'ConfigMap', volume?.configMap?.name ?? '(none)');
  const text = configMap.data[basename(configPath)];
  if (text === undefined) throw new Error(`ConfigMap ${configMap.metadata.name} has no ${basename(configPath)}`);
  return { deployment, pod, container, args, configPath, mount, text, config: parse(text) as VeerConfig };
}

/** The parts of veer's config file these checks read (the raw text, before ${VAR}). */
export interface VeerConfig {
  listen: string;
  admin: { listen: string; token?: string };
  drainTimeout?: string;
  state: { store: string; path?: string; etcd?: { endpoints: string[] } };
  services: { name: string; versions: { name: string; upstream: string | string[] }[] }[];
}

/** The Service (and its port) a URL such as http://shop-v1 or http://x.ns.svc:8080 reaches. */
export function serviceForUrl(objects: Manifest[], url: string, namespace: string | undefined) {
  const u = new URL(url);
  const [name, ns = namespace, ...rest] = u.hostname.split('.');
  if (rest.length > 0 && rest.join('.') !== 'svc' && rest.join('.') !== 'svc.cluster.local') return undefined;
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  const service = objects.find((o) => o.kind === 'Service' && o.metadata.name === name && o.metadata.namespace === ns) as IService | undefined;
  return service && { service, port: service.spec?.ports?.find((p) => p.port === port) };
}
