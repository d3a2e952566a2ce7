// deploy/kubernetes, checked offline (no API server here): render each
// kustomization, validate every object against the Kubernetes OpenAPI schemas
// (kubernetes-models; the ServiceMonitor against the prometheus-operator CRD
// schema from @kubernetes-models/prometheus-operator), reject unknown fields,
// run `veer validate` on the ConfigMap's config, and check that the objects
// fit together: probes, ports, Services, PDB, ServiceMonitor, upstream URLs.
//
//   kustomization ──render──> objects ──schema + unknown fields──> ok?
//                  (kubectl kustomize, or this file's renderer when kubectl is missing)
//                               └──> ConfigMap veer.yaml ──veer validate──> exit 0?

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix } from 'node:path';
import t from 'tap';
import ts from 'typescript';
import { parse, parseAllDocuments } from 'yaml';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { parseDuration, parseListenAddress } from '../../src/config/index.ts';
import { runCli } from '../helpers/cli.ts';
import { ROOT } from '../helpers/veer.ts';

/** Any rendered Kubernetes object. */
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}
type Workload = IDeployment | IStatefulSet;

/** Renders: the quick start (veer + example app), the base alone, and the etcd overlay. */
const KUSTOMIZATIONS = {
  root: 'deploy/kubernetes',
  base: 'deploy/kubernetes/base',
  etcd: 'deploy/kubernetes/overlays/etcd',
} as const;
type RenderName = keyof typeof KUSTOMIZATIONS;

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

const byKey = (a: Manifest, b: Manifest) => keyOf(a).localeCompare(keyOf(b));
const keyOf = (m: Manifest) => `${m.kind}/${m.metadata.namespace ?? ''}/${m.metadata.name}`;

const kubectlRenders = new Map<RenderName, Manifest[] | null>();
const ownRenders = new Map<RenderName, Manifest[]>();
for (const name of Object.keys(KUSTOMIZATIONS) as RenderName[]) {
  kubectlRenders.set(name, renderWithKubectl(KUSTOMIZATIONS[name]));
  ownRenders.set(name, renderYourself(KUSTOMIZATIONS[name]));
}
const HAVE_KUBECTL = kubectlRenders.get('root') !== null;
/** What the checks run on: kubectl's render when there is one. */
const renders = new Map<RenderName, Manifest[]>(
  [...ownRenders].map(([name, own]) => [name, (kubectlRenders.get(name) ?? own).sort(byKey)]),
);
// Debian's kubernetes-client (kubectl 1.20, kustomize v2) cannot render these
// (no directories in `resources`); the machine image's kubectl can.
if (!HAVE_KUBECTL) t.comment('kubectl not found: rendering with the test\'s own subset of kustomize; the renderer-agreement check is skipped');

// --- lookups ---------------------------------------------------------------

function find<T>(objects: Manifest[], kind: string, name: string): T {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in the render`);
  return found as unknown as T;
}

function podSpecOf(m: Manifest): IPodSpec | undefined {
  if (m.kind !== 'Deployment' && m.kind !== 'StatefulSet') return undefined;
  return (m as unknown as Workload).spec?.template.spec;
}

function containersOf(m: Manifest): IContainer[] {
  const spec = podSpecOf(m);
  return spec ? [...(spec.initContainers ?? []), ...spec.containers] : [];
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** The Deployments and StatefulSets whose pods a label selector picks, in one namespace. */
function workloadsSelected(objects: Manifest[], namespace: string | undefined, selector: Record<string, string> | undefined): Workload[] {
  return objects
    .filter((o) => podSpecOf(o) && o.metadata.namespace === namespace)
    .map((o) => o as unknown as Workload)
    .filter((w) => selects(selector, w.spec?.template.metadata?.labels));
}

/** The container port a Service's targetPort (name or number) reaches on a workload's pods. */
function containerPortFor(w: Workload, target: string | number | undefined): number | undefined {
  for (const c of w.spec?.template.spec?.containers ?? []) {
    for (const p of c.ports ?? []) if (p.name === target || p.containerPort === target) return p.containerPort;
  }
  return undefined;
}

/** The veer config inside the rendered ConfigMap that the veer Deployment mounts, and where. */
function veerConfigOf(objects: Manifest[]) {
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
interface VeerConfig {
  listen: string;
  admin: { listen: string; token?: string };
  drainTimeout?: string;
  state: { store: string; path?: string; etcd?: { endpoints: string[] } };
  services: { name: string; versions: { name: string; upstream: string | string[] }[] }[];
}

/** The Service (and its port) a URL such as http://shop-v1 or http://x.ns.svc:8080 reaches. */
function serviceForUrl(objects: Manifest[], url: string, namespace: string | undefined) {
  const u = new URL(url);
  const [name, ns = namespace, ...rest] = u.hostname.split('.');
  if (rest.length > 0 && rest.join('.') !== 'svc' && rest.join('.') !== 'svc.cluster.local') return undefined;
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  const service = objects.find((o) => o.kind === 'Service' && o.metadata.name === name && o.metadata.namespace === ns) as IService | undefined;
  return service && { service, port: service.spec?.ports?.find((p) => p.port === port) };
}

// --- rendering and schemas ---------------------------------------------------

t.test('the test\'s renderer agrees with kubectl kustomize', { skip: HAVE_KUBECTL ? false : 'kubectl is not installed' }, async (t) => {
  for (const name of renders.keys()) {
    t.same(ownRenders.get(name)!.sort(byKey), kubectlRenders.get(name)!.sort(byKey), `${KUSTOMIZATIONS[name]}`);
  }
});

t.test('each kustomization renders the objects it promises', async (t) => {
  const kinds = (name: RenderName) => renders.get(name)!.map((o) => `${o.kind}/${o.metadata.name}`).sort();
  const base = ['ConfigMap/veer-config', 'Deployment/veer', 'PodDisruptionBudget/veer', 'Service/veer', 'Service/veer-admin', 'ServiceAccount/veer', 'ServiceMonitor/veer'];
  const example = ['Deployment/shop-v1', 'Deployment/shop-v2', 'Service/shop-v1', 'Service/shop-v2'];
  t.same(kinds('base'), base.sort());
  t.same(kinds('root'), [...base, ...example].sort());
  t.same(kinds('etcd'), [...base, ...example, 'Service/veer-etcd', 'StatefulSet/veer-etcd'].sort());
  for (const [name, objects] of renders) {
    t.same(objects.filter((o) => o.metadata.namespace !== 'veer').map(keyOf), [], `${name}: everything in the namespace veer`);
  }
});

/** The kubernetes-models module for an object: core and built-in groups, or a CRD package. */
function modelModule(m: Manifest): string {
  if (m.apiVersion.startsWith('monitoring.coreos.com/')) return `@kubernetes-models/prometheus-operator/${m.apiVersion}/${m.kind}`;
  return `kubernetes-models/${m.apiVersion}/${m.kind}`;
}

/** Validates against the generated JSON schema; returns the error, or null. */
async function schemaError(m: Manifest): Promise<string | null> {
  const mod = (await import(modelModule(m))) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = mod[m.kind];
  if (!Model) return `no model for ${m.apiVersion} ${m.kind}`;
  try {
    new Model(m).validate();
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Unknown fields (a typo such as `readinesProbe` passes the JSON schemas,
 * which allow extra properties): each object becomes a TypeScript object
 * literal typed with the model's interface, whose excess property checks
 * reject any field the API does not have. One program for all of them.
 */
function unknownFieldErrors(objects: Manifest[]): string[][] {
  const files = objects.map((m, i) => ({
    name: join(ROOT, 'test', 'deploy', `.strict-${i}.ts`),
    text: `import type { I${m.kind} } from '${modelModule(m)}';\nexport const o: I${m.kind} = ${JSON.stringify(m, null, 1)};\n`,
  }));
  const options: ts.CompilerOptions = {
    strict: true, noEmit: true, skipLibCheck: true, types: [], lib: ['lib.es2022.d.ts'],
    module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022,
  };
  const host = ts.createCompilerHost(options);
  const virtual = new Map(files.map((f) => [f.name, f.text]));
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, lang, ...rest) => (virtual.has(name) ? ts.createSourceFile(name, virtual.get(name)!, lang) : getSourceFile.call(host, name, lang, ...rest));
  host.fileExists = (name) => virtual.has(name) || fileExists.call(host, name);
  host.readFile = (name) => virtual.get(name) ?? readFile.call(host, name);
  const program = ts.createProgram(files.map((f) => f.name), options, host);
  const diagnostics = ts.getPreEmitDiagnostics(program);
  return files.map((f) => diagnostics.filter((d) => d.file?.fileName === f.name).map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' ')));
}

t.test('every object is valid against the Kubernetes schemas, with no unknown fields', async (t) => {
  const all = [...new Map([...renders.values()].flat().map((o) => [JSON.stringify(o), o])).values()];
  const errors = unknownFieldErrors(all);
  for (const [i, m] of all.entries()) {
    t.equal(await schemaError(m), null, `${keyOf(m)}: schema`);
    t.same(errors[i], [], `${keyOf(m)}: no unknown fields or wrong types`);
  }
});

t.test('the schema and unknown-field checks catch broken objects', async (t) => {
  const good = find<Manifest>(renders.get('base')!, 'Deployment', 'veer');
  const wrongType = structuredClone(good) as Manifest & { spec: { replicas: unknown } };
  wrongType.spec.replicas = 'two';
  t.match(await schemaError(wrongType), /replicas must be integer/);
  const typo = structuredClone(good) as unknown as IDeployment;
  Object.assign(typo.spec!.template.spec!.containers[0]!, { readinesProbe: { httpGet: { path: '/readyz', port: 9901 } } });
  const missing = structuredClone(good) as unknown as IDeployment;
  delete (missing.spec as Partial<NonNullable<IDeployment['spec']>>).selector;
  const [typoErrors, missingErrors] = unknownFieldErrors([typo as unknown as Manifest, missing as unknown as Manifest]);
  t.match(typoErrors, [/readinesProbe/], 'the typo is named');
  t.match(missingErrors, [/selector/], 'the missing selector is named');
});

t.test('veer validate accepts the config inside each rendered ConfigMap', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'veer-deploy-'));
  const runs = [...renders].map(async ([name, objects]) => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, veerConfigOf(objects).text);
    return { name, run: await runCli(['validate', '--config', file], { VEER_ADMIN_TOKEN: 'test-token' }) };
  });
  for (const { name, run } of await Promise.all(runs)) {
    t.equal(run.code, 0, `${name}: exit 0 (${run.stderr.trim()})`);
    t.match(run.stdout, /is valid: 1 service, listen 0\.0\.0\.0:8080, admin 0\.0\.0\.0:9901/, `${name}: summary`);
  }
});

// --- how the objects fit together ------------------------------------------------

t.test('the veer Deployment runs non-root on a read-only root filesystem', async (t) => {
  for (const [name, objects] of renders) {
    const { deployment, pod, container, config } = veerConfigOf(objects);
    t.equal(deployment.spec?.replicas, 2, `${name}: 2 replicas`);
    t.equal(pod.securityContext?.runAsNonRoot, true, `${name}: runAsNonRoot`);
    t.not(pod.securityContext?.runAsUser ?? 0, 0, `${name}: a non-zero runAsUser`);
    t.equal(container.securityContext?.readOnlyRootFilesystem, true, `${name}: read-only root filesystem`);
    t.equal(container.securityContext?.allowPrivilegeEscalation, false, `${name}: no privilege escalation`);
    t.same(container.securityContext?.capabilities?.drop, ['ALL'], `${name}: drops all capabilities`);
    t.ok(container.resources?.requests?.cpu && container.resources.requests.memory && container.resources.limits?.memory, `${name}: resources`);
    t.equal(pod.automountServiceAccountToken, false, `${name}: no API token`);
    // The file store writes next to state.path (temp file + rename): a writable volume there.
    if (config.state.store === 'file') {
      const writable = container.volumeMounts?.find((m) => !m.readOnly && config.state.path?.startsWith(`${m.mountPath}/`));
      t.ok(writable, `${name}: state.path ${config.state.path} is on a writable volume`);
      t.ok(pod.volumes?.find((v) => v.name === writable?.name)?.emptyDir, `${name}: an emptyDir`);
    }
  }
});

t.test('probes, ports and the config mount follow veer.yaml', async (t) => {
  for (const [name, objects] of renders) {
    const { container, args, configPath, mount, config } = veerConfigOf(objects);
    const data = parseListenAddress(config.listen)!;
    const admin = parseListenAddress(config.admin.listen)!;
    const portOf = (ref: string | number | undefined) => container.ports?.find((p) => p.name === ref || p.containerPort === ref)?.containerPort;
    t.same(args.slice(0, 1), ['serve'], `${name}: runs veer serve`);
    t.equal(portOf('http'), data.port, `${name}: port http is listen`);
    t.equal(portOf('admin'), admin.port, `${name}: port admin is admin.listen`);
    t.equal(container.readinessProbe?.httpGet?.path, '/readyz', `${name}: readiness on /readyz`);
    t.equal(portOf(container.readinessProbe?.httpGet?.port), admin.port, `${name}: readiness on the admin port`);
    t.equal(container.livenessProbe?.httpGet?.path, '/healthz', `${name}: liveness on /healthz`);
    t.equal(portOf(container.livenessProbe?.httpGet?.port), admin.port, `${name}: liveness on the admin port`);
    t.ok(mount, `${name}: ${dirname(configPath)} is a ConfigMap volume`);
    t.equal(mount?.subPath, undefined, `${name}: no subPath, so ConfigMap updates reach the file veer watches`);
  }
});

t.test('draining: preStop, then drainTimeout, inside the grace period', async (t) => {
  for (const [name, objects] of renders) {
    const { pod, container, config } = veerConfigOf(objects);
    const command = container.lifecycle?.preStop?.exec?.command ?? [];
    t.equal(command[0], 'sleep', `${name}: preStop sleeps while endpoints drop the pod`);
    const preStopS = Number(command[1]);
    t.ok(preStopS >= 3, `${name}: preStop of ${preStopS}s`);
    const drainS = parseDuration(config.drainTimeout ?? '25s') / 1000;
    const grace = pod.terminationGracePeriodSeconds ?? 30;
    t.ok(grace > preStopS + drainS, `${name}: terminationGracePeriodSeconds ${grace} > preStop ${preStopS}s + drainTimeout ${drainS}s`);
  }
});

t.test('the admin token comes from a Secret', async (t) => {
  for (const [name, objects] of renders) {
    const { container, config } = veerConfigOf(objects);
    t.equal(config.admin.token, '${VEER_ADMIN_TOKEN}', `${name}: no default, so a missing token stops veer`);
    const env = container.env?.find((e) => e.name === 'VEER_ADMIN_TOKEN');
    t.same(env?.valueFrom?.secretKeyRef, { name: 'veer-admin-token', key: 'token' }, `${name}: from the Secret veer-admin-token`);
  }
});

t.test('the Services reach the veer pods on the right ports', async (t) => {
  for (const [name, objects] of renders) {
    const { config } = veerConfigOf(objects);
    const traffic = find<IService>(objects, 'Service', 'veer');
    const admin = find<IService>(objects, 'Service', 'veer-admin');
    t.equal(traffic.spec?.type, 'LoadBalancer', `${name}: traffic through a LoadBalancer`);
    t.equal(admin.spec?.type ?? 'ClusterIP', 'ClusterIP', `${name}: admin inside the cluster only`);
    for (const [service, want] of [[traffic, parseListenAddress(config.listen)!.port], [admin, parseListenAddress(config.admin.listen)!.port]] as const) {
      const workloads = workloadsSelected(objects, service.metadata?.namespace, service.spec?.selector);
      t.same(workloads.map((w) => w.metadata?.name), ['veer'], `${name}: Service ${service.metadata?.name} selects the veer pods and nothing else`);
      t.same(service.spec?.ports?.map((p) => containerPortFor(workloads[0]!, p.targetPort)), [want], `${name}: Service ${service.metadata?.name} reaches port ${want}`);
    }
    // Every Service in the render reaches some pod, on a port that exists.
    for (const svc of objects.filter((o) => o.kind === 'Service') as unknown as IService[]) {
      const [first] = workloadsSelected(objects, svc.metadata?.namespace, svc.spec?.selector);
      t.ok(first, `${name}: Service ${svc.metadata?.name} selects pods`);
      for (const p of svc.spec?.ports ?? []) t.ok(first && containerPortFor(first, p.targetPort ?? p.port), `${name}: Service ${svc.metadata?.name} port ${p.name} reaches a container port`);
    }
  }
});

t.test('the PodDisruptionBudget covers the veer pods and lets a drain proceed', async (t) => {
  for (const [name, objects] of renders) {
    const pdb = find<IPodDisruptionBudget>(objects, 'PodDisruptionBudget', 'veer');
    const workloads = workloadsSelected(objects, pdb.metadata?.namespace, pdb.spec?.selector?.matchLabels);
    t.same(workloads.map((w) => w.metadata?.name), ['veer'], `${name}: selects the veer pods`);
    const replicas = (workloads[0] as IDeployment | undefined)?.spec?.replicas ?? 1;
    t.ok(typeof pdb.spec?.minAvailable === 'number' && pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable < replicas, `${name}: minAvailable ${pdb.spec?.minAvailable} of ${replicas}`);
  }
});

t.test('the ServiceMonitor scrapes /metrics on the admin port', async (t) => {
  for (const [name, objects] of renders) {
    const { config } = veerConfigOf(objects);
    const monitor = find<IServiceMonitor>(objects, 'ServiceMonitor', 'veer');
    const services = (objects.filter((o) => o.kind === 'Service') as unknown as IService[])
      .filter((s) => s.metadata?.namespace === monitor.metadata?.namespace && selects(monitor.spec.selector.matchLabels, s.metadata?.labels));
    t.same(services.map((s) => s.metadata?.name), ['veer-admin'], `${name}: selects the veer-admin Service only`);
    const [endpoint] = monitor.spec.endpoints ?? [];
    t.equal(endpoint?.path, '/metrics', `${name}: path /metrics`);
    const port = services[0]?.spec?.ports?.find((p) => p.name === endpoint?.port);
    const veerPods = workloadsSelected(objects, services[0]?.metadata?.namespace, services[0]?.spec?.selector)[0]!;
    t.equal(port && containerPortFor(veerPods, port.targetPort), parseListenAddress(config.admin.listen)!.port, `${name}: the admin listener`);
  }
});

t.test('every upstream in the config is a Service of the example app', async (t) => {
  for (const name of ['root', 'etcd'] as const) {
    const objects = renders.get(name)!;
    const { config, deployment } = veerConfigOf(objects);
    const seen = new Set<string>();
    for (const service of config.services) {
      for (const version of service.versions) {
        for (const url of [version.upstream].flat()) {
          const target = serviceForUrl(objects, url, deployment.metadata?.namespace);
          t.ok(target?.port, `${name}: ${service.name} ${version.name} ${url} is a Service port in the render`);
          const workloads = workloadsSelected(objects, target?.service.metadata?.namespace, target?.service.spec?.selector);
          t.equal(workloads.length, 1, `${name}: ${url} reaches one Deployment`);
          t.ok(workloads[0] && containerPortFor(workloads[0], target?.port?.targetPort), `${name}: ${url} reaches a container port`);
          t.match(workloads[0]?.metadata?.name, new RegExp(`-${version.name}$`), `${name}: ${url} is ${version.name}'s Deployment`);
          seen.add(workloads[0]?.metadata?.name ?? '');
        }
      }
    }
    t.same([...seen].sort(), ['shop-v1', 'shop-v2'], `${name}: both versions have their own Deployment`);
  }
});

t.test('the etcd overlay shares state through the etcd it deploys', async (t) => {
  const base = veerConfigOf(renders.get('root')!).config;
  const objects = renders.get('etcd')!;
  const { config } = veerConfigOf(objects);
  t.equal(base.state.store, 'file');
  t.equal(config.state.store, 'etcd');
  t.same({ ...config, state: null }, { ...base, state: null }, 'the configs differ only in state');
  for (const url of config.state.etcd?.endpoints ?? []) {
    const target = serviceForUrl(objects, url, 'veer');
    const [etcd] = workloadsSelected(objects, 'veer', target?.service.spec?.selector);
    t.equal(etcd?.kind, 'StatefulSet', `${url} reaches the etcd StatefulSet`);
    t.equal(etcd && containerPortFor(etcd, target?.port?.targetPort), 2379, `${url} reaches etcd's client port`);
    t.equal((etcd as IStatefulSet | undefined)?.spec?.serviceName, target?.service.metadata?.name, 'the StatefulSet\'s governing Service');
  }
  t.ok(config.state.etcd?.endpoints.length, 'endpoints are set');
});

t.test('every pod runs non-root, read-only, from a pinned image', async (t) => {
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  for (const m of renders.get('etcd')!.filter((o) => podSpecOf(o))) {
    const pod = podSpecOf(m)!;
    for (const c of containersOf(m)) {
      const where = `${m.metadata.name}/${c.name}`;
      t.equal(c.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot, true, `${where}: runAsNonRoot`);
      t.equal(c.securityContext?.readOnlyRootFilesystem, true, `${where}: read-only root filesystem`);
      t.equal(c.securityContext?.allowPrivilegeEscalation, false, `${where}: no privilege escalation`);
      t.match(c.image, /^[^@]+:(?!latest$)[\w][\w.-]*$/, `${where}: ${c.image} has a tag other than latest`);
      t.ok(c.resources?.requests?.memory && c.resources.limits?.memory, `${where}: memory request and limit`);
    }
  }
  const veerImage = containersOf(find<Manifest>(renders.get('root')!, 'Deployment', 'veer'))[0]?.image;
  t.equal(veerImage, `veer:${version}`, 'the veer image tag is package.json\'s version');
});
