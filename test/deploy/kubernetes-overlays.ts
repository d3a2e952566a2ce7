// The overlays that patch the base (overlays/tls), rendered beside the
// kustomizations of test/helpers/kubernetes.ts so that every check in
// test/deploy/kubernetes-*.test.ts runs on them too: by kubectl kustomize, or,
// when kubectl is missing, by the helper's own renders of their resources,
// the configMapGenerator and the strategic-merge patches below.
//
//   overlays/tls ── resources ──> base (the helper's render) + example (its files)
//                ── configMapGenerator, behavior: replace ──> veer-config's data
//                ── patches (strategic merge, by kind and name) ──> Deployment, Service
//                ── namespace
//
// The patch merge does what these patches use: maps merged by field, lists
// of objects merged by their Kubernetes merge key (new items first, as
// kustomize puts them); anything else is refused loudly, and where kubectl
// exists a test checks that both renders agree.

import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { byKey, kubectlRenders, KUSTOMIZATIONS, ownRenders, type Manifest, type RenderName } from '../helpers/kubernetes.ts';
import { ROOT } from '../helpers/veer.ts';

/** Overlays that patch the base, by render name. */
export const OVERLAYS = { tls: 'deploy/kubernetes/overlays/tls' } as const;
/** Every kustomization the checks render: the helper's and the overlays. */
export const ALL_KUSTOMIZATIONS = { ...KUSTOMIZATIONS, ...OVERLAYS } as const;
export type AnyRenderName = keyof typeof ALL_KUSTOMIZATIONS;

const FIELDS = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'configMapGenerator', 'patches']);
/** The merge key of each list of objects the patches touch (the Kubernetes API's patchMergeKey). */
const MERGE_KEYS: Record<string, (item: Record<string, unknown>) => string> = {
  containers: () => 'name',
  volumes: () => 'name',
  volumeMounts: () => 'mountPath',
  env: () => 'name',
  // A container's ports go by containerPort, a Service's by port.
  ports: (item) => ('containerPort' in item ? 'containerPort' : 'port'),
};

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

/** Merges a strategic-merge patch into `target` (in place), as far as these overlays need. */
export function mergePatch(target: Record<string, unknown>, patch: Record<string, unknown>, where: string): void {
  for (const [field, value] of Object.entries(patch)) {
    if (field.startsWith('$')) throw new Error(`${where}.${field}: patch directives are not implemented here: install kubectl`);
    const current = target[field];
    if (isMap(value) && isMap(current)) mergePatch(current, value, `${where}.${field}`);
    else if (Array.isArray(value) && value.some(isMap)) target[field] = mergeList(Array.isArray(current) ? current : [], value, `${where}.${field}`, field);
    else target[field] = structuredClone(value);
  }
}

function mergeList(current: unknown[], patch: unknown[], where: string, field: string): unknown[] {
  const keyOf = MERGE_KEYS[field];
  if (!keyOf) throw new Error(`${where}: no merge key for "${field}" here: install kubectl`);
  const merged = structuredClone(current) as Record<string, unknown>[];
  const added: Record<string, unknown>[] = [];
  for (const item of patch) {
    if (!isMap(item)) throw new Error(`${where}: a list mixing objects and values`);
    const key = keyOf(item);
    const existing = merged.find((m) => m[key] === item[key]);
    if (existing) mergePatch(existing, item, `${where}[${key}=${String(item[key])}]`);
    else added.push(structuredClone(item));
  }
  return [...added, ...merged];
}

/** A resource folder: one the helper renders, or a kustomization of plain files (the example app). */
function renderResourceDir(dir: string): Manifest[] {
  const known = (Object.keys(KUSTOMIZATIONS) as RenderName[]).find((name) => KUSTOMIZATIONS[name] === dir);
  if (known) return structuredClone(ownRenders.get(known)!);
  const k = parse(readFileSync(join(ROOT, dir, 'kustomization.yaml'), 'utf8')) as Record<string, unknown> & { resources?: string[] };
  const extra = Object.keys(k).filter((f) => !['apiVersion', 'kind', 'resources'].includes(f));
  if (extra.length > 0) throw new Error(`${dir}/kustomization.yaml uses ${extra.join(', ')}: install kubectl`);
  return (k.resources ?? []).flatMap((file) => parseManifests(readFileSync(join(ROOT, dir, file), 'utf8')));
}

/** An overlay rendered without kubectl. */
function renderOverlayYourself(dir: string): Manifest[] {
  const abs = join(ROOT, dir);
  const k = parse(readFileSync(join(abs, 'kustomization.yaml'), 'utf8')) as {
    namespace?: string;
    resources?: string[];
    configMapGenerator?: { name: string; behavior?: string; files?: string[] }[];
    patches?: { path?: string }[];
  };
  for (const field of Object.keys(k)) {
    if (!FIELDS.has(field)) throw new Error(`${dir}/kustomization.yaml uses "${field}", which the test's overlay renderer does not do: install kubectl`);
  }
  const objects: Manifest[] = [];
  for (const resource of k.resources ?? []) {
    const path = posix.join(dir, resource);
    if (statSync(join(ROOT, path)).isDirectory()) objects.push(...renderResourceDir(path));
    else objects.push(...parseManifests(readFileSync(join(ROOT, path), 'utf8')));
  }
  for (const gen of k.configMapGenerator ?? []) {
    const existing = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === gen.name);
    if (gen.behavior !== 'replace' || !existing) throw new Error(`${dir}: only configMapGenerator with behavior: replace of an existing ConfigMap is implemented here: install kubectl`);
    existing.data = Object.fromEntries((gen.files ?? []).map((f) => [basename(f), readFileSync(join(abs, f), 'utf8')]));
  }
  for (const { path } of k.patches ?? []) {
    if (path === undefined) throw new Error(`${dir}: only patches from a file are implemented here: install kubectl`);
    for (const patch of parseManifests(readFileSync(join(abs, path), 'utf8'))) {
      const target = objects.find((o) => o.kind === patch.kind && o.metadata.name === patch.metadata.name);
      if (!target) throw new Error(`${dir}/${path}: no ${patch.kind} ${patch.metadata.name} to patch`);
      mergePatch(target, patch, `${path} ${patch.kind}/${patch.metadata.name}`);
    }
  }
  if (k.namespace) for (const o of objects) o.metadata.namespace = k.namespace;
  return objects;
}

function renderOverlayWithKubectl(dir: string): Manifest[] | null {
  const run = spawnSync('kubectl', ['kustomize', join(ROOT, dir)], { encoding: 'utf8', timeout: 20_000 });
  if ((run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return null;
  if (run.status !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${run.stderr}`);
  return parseManifests(run.stdout);
}

/** kubectl's renders of every kustomization (null without kubectl). */
export const allKubectlRenders = new Map<AnyRenderName, Manifest[] | null>(kubectlRenders);
/** The test's own renders of every kustomization. */
export const allOwnRenders = new Map<AnyRenderName, Manifest[]>(ownRenders);
for (const name of Object.keys(OVERLAYS) as (keyof typeof OVERLAYS)[]) {
  allKubectlRenders.set(name, renderOverlayWithKubectl(OVERLAYS[name]));
  allOwnRenders.set(name, renderOverlayYourself(OVERLAYS[name]));
}
/** What the checks run on, for every kustomization: kubectl's render when there is one. */
export const allRenders = new Map<AnyRenderName, Manifest[]>(
  [...allOwnRenders].map(([name, own]) => [name, (allKubectlRenders.get(name) ?? own).sort(byKey)]),
);
