// deploy/kubernetes, checked offline (no API server here): render each
// kustomization, validate every object against the Kubernetes OpenAPI schemas
// (kubernetes-models; the ServiceMonitor against the prometheus-operator CRD
// schema from @kubernetes-models/prometheus-operator), reject unknown fields,
// and run `veer validate` on the ConfigMap's config (with `tls`, over a
// mounted TLS Secret made here). How the objects fit together is
// kubernetes-wiring.test.ts; veer serving HTTPS on the TLS overlay is
// kubernetes-tls.test.ts; the rendering is test/helpers/kubernetes.ts and,
// for the overlays that patch the base, kubernetes-overlays.ts.
//
//   kustomization ──render──> objects ──schema + unknown fields──> ok?
//                  (kubectl kustomize, or the test's renderers when kubectl is missing)
//                               └──> ConfigMap veer.yaml ──veer validate──> exit 0?

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import t from 'tap';
import ts from 'typescript';
import { parseDocument } from 'yaml';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { makePki, makeServerCert, opensslMissing } from '../helpers/certs.ts';
import { runCli } from '../helpers/cli.ts';
import { byKey, find, HAVE_KUBECTL, keyOf, veerConfigOf, type Manifest } from '../helpers/kubernetes.ts';
import { ROOT } from '../helpers/veer.ts';
import { ALL_KUSTOMIZATIONS, allKubectlRenders, allOwnRenders, allRenders as renders, type AnyRenderName } from './kubernetes-overlays.ts';
import { mountTlsSecret, type PemPair } from './secret-volume.ts';

// Debian's kubernetes-client (kubectl 1.20, kustomize v2) cannot render these
// (no directories in `resources`); the machine image's kubectl can.
if (!HAVE_KUBECTL) t.comment('kubectl not found: rendering with the test\'s own subset of kustomize; the renderer-agreement check is skipped');

// --- rendering and schemas ---------------------------------------------------

t.test('the test\'s renderer agrees with kubectl kustomize', { skip: HAVE_KUBECTL ? false : 'kubectl is not installed' }, async (t) => {
  for (const name of renders.keys()) {
    t.same(allOwnRenders.get(name)!.sort(byKey), allKubectlRenders.get(name)!.sort(byKey), `${ALL_KUSTOMIZATIONS[name]}`);
  }
});

t.test('each kustomization renders the objects it promises', async (t) => {
  const kinds = (name: AnyRenderName) => renders.get(name)!.map((o) => `${o.kind}/${o.metadata.name}`).sort();
  const base = ['ConfigMap/veer-config', 'Deployment/veer', 'PodDisruptionBudget/veer', 'Service/veer', 'Service/veer-admin', 'ServiceAccount/veer', 'ServiceMonitor/veer'];
  const example = ['Deployment/shop-v1', 'Deployment/shop-v2', 'Service/shop-v1', 'Service/shop-v2'];
  t.same(kinds('base'), base.sort());
  t.same(kinds('root'), [...base, ...example].sort());
  t.same(kinds('etcd'), [...base, ...example, 'Service/veer-etcd', 'StatefulSet/veer-etcd'].sort());
  t.same(kinds('tls'), [...base, ...example].sort(), 'tls: the quick start\'s objects, patched (the TLS Secrets are made outside)');
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

/**
 * The config of a render as `veer validate` here should see it: each
 * `tls.certificates` folder becomes a temp folder holding, for every volume
 * the Deployment mounts under that folder, a TLS Secret as the kubelet lays
 * it out, with `pair` (null: the folder stays empty, no Secret exists yet).
 */
function configOverSecrets(objects: Manifest[], here: string, pair: PemPair | null): string {
  const { text, container } = veerConfigOf(objects);
  const doc = parseDocument(text);
  const certificates = (doc.toJS() as { tls?: { certificates: { dir?: string }[] } }).tls?.certificates ?? [];
  for (const [i, entry] of certificates.entries()) {
    if (entry.dir === undefined) continue;
    const local = join(here, `certificates-${i}`);
    mkdirSync(local, { recursive: true });
    for (const mount of container.volumeMounts ?? []) {
      if (pair && mount.mountPath.startsWith(`${entry.dir}/`)) mountTlsSecret(local, relative(entry.dir, mount.mountPath), pair);
    }
    doc.setIn(['tls', 'certificates', i, 'dir'], local);
  }
  return doc.toString();
}

t.test('veer validate accepts the config inside each rendered ConfigMap', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'veer-deploy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tlsSkip = opensslMissing();
  let pair: PemPair | null = null;
  if (tlsSkip === null) {
    const pki = makePki();
    t.teardown(() => pki.destroy());
    pair = makeServerCert(pki, 'shop', ['shop.example.com']);
  }
  const checked = [...renders].filter(([name, objects]) => {
    if (tlsSkip === null || !/^tls:/m.test(veerConfigOf(objects).text)) return true;
    t.comment(`${name}: not validated, its config has tls (${tlsSkip})`);
    return false;
  });
  const runs = checked.map(async ([name, objects]) => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, configOverSecrets(objects, join(dir, name), pair));
    return { name, run: await runCli(['validate', '--config', file], { VEER_ADMIN_TOKEN: 'test-token' }) };
  });
  for (const { name, run } of await Promise.all(runs)) {
    t.equal(run.code, 0, `${name}: exit 0 (${run.stderr.trim()})`);
    t.match(run.stdout, /is valid: 1 service, listen 0\.0\.0\.0:8080, admin 0\.0\.0\.0:9901/, `${name}: summary`);
  }
});

t.test('the TLS overlay\'s config needs its Secret: without one, veer refuses to start', async (t) => {
  // Why TLS is an overlay and not in the base: a pod of this config cannot run until the Secret exists.
  const dir = mkdtempSync(join(tmpdir(), 'veer-deploy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'tls.yaml');
  writeFileSync(file, configOverSecrets(renders.get('tls')!, dir, null));
  const run = await runCli(['validate', '--config', file], { VEER_ADMIN_TOKEN: 'test-token' });
  t.equal(run.code, 1);
  t.match(run.stderr, /tls\.certificates: \(none\): no usable certificate \[invalid_tls_certificate\]/);
});
