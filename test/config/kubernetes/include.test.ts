// `include:`: each object stands alone. A bad object (of any kind) is refused
// with its kind, namespace/name and field; the rest keep serving; an object
// that breaks on reload keeps its last good form; files are watched.

import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '../../helpers/http.ts';
import { runCli } from '../../helpers/cli.ts';
import { backends, serveManifests, singleIngress } from './serve.ts';

function route(name: string, host: string, service: string, port: number, extra = '', namespace = 'default'): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  hostnames: [${host}]
  rules:
  - backendRefs: [{ name: ${service}, port: ${port}${extra} }]
`;
}

t.test('bad manifests of every kind are refused with kind, object and field; the good ones serve', async (t) => {
  const p = await backends(t, 'good', 'other');
  const bad: Record<string, string> = {
    'no-name.yaml': route('x', 'a.example', 'good', p.good!).replace('name: x, ', ''),
    'wrong-api.yaml': route('wrong-api', 'b.example', 'good', p.good!).replace('gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1alpha9'),
    'no-port.yaml': route('no-port', 'c.example', 'good', p.good!).replace(`, port: ${p.good}`, ''),
    'bad-weight.yaml': singleIngress('main', '/', 'd.example', 'good', p.good!, {}) + '---\n' + singleIngress('canary', '/', 'd.example', 'other', p.other!, { 'nginx.ingress.kubernetes.io/canary': 'true', 'nginx.ingress.kubernetes.io/canary-weight': 'abc' }),
    'no-pathtype.yaml': singleIngress('no-pathtype', '/', 'e.example', 'other', p.other!).replace('        pathType: Prefix\n', ''),
    'not-yaml.yaml': 'kind: [HTTPRoute\n',
    'unsupported-filter.yaml': `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ext, namespace: default }
spec:
  hostnames: [f.example]
  rules:
  - filters: [{ type: ExtensionRef, extensionRef: { group: x.io, kind: Y, name: z } }]
    backendRefs: [{ name: other, port: ${p.other} }]
`,
    'cross-ns.yaml': route('cross', 'g.example', 'other', p.other!, ', namespace: elsewhere'),
    'other-class.yaml': singleIngress('other-class', '/', 'h.example', 'other', p.other!).replace('ingressClassName: nginx', 'ingressClassName: traefik'),
  };
  const s = await serveManifests(t, { ...bad, 'good.yaml': route('good', 'ok.example', 'good', p.good!) });
  t.equal((await s.get('ok.example')).upstream, 'good', 'the good route serves');
  t.equal((await s.get('d.example')).upstream, 'good', 'the main Ingress serves without its broken canary');
  for (const host of ['a.example', 'b.example', 'c.example', 'e.example', 'f.example', 'g.example', 'h.example']) t.equal((await s.get(host)).status, 404, `nothing from the bad object for ${host}`);
  t.equal((await s.get('d.example')).upstream, 'good');
  t.same(
    s.veer.config().services.map((x) => x.name).sort(),
    ['default.good', 'e2e.main'],
    'only the good objects became services',
  );

  const run = await runCli(['validate', '--config', join(s.dir, 'veer.yaml')]);
  t.equal(run.code, 1, 'veer validate fails on a refused object');
  const lines = run.stderr;
  t.match(lines, /k8s\/no-name\.yaml HTTPRoute default\/\(unnamed\) metadata\.name: is required.*\[invalid_manifest\]/);
  t.match(lines, /k8s\/wrong-api\.yaml HTTPRoute default\/wrong-api apiVersion: "gateway\.networking\.k8s\.io\/v1alpha9" is not supported/);
  t.match(lines, /k8s\/no-port\.yaml HTTPRoute default\/no-port spec\.rules\[0\]\.backendRefs\[0\]\.port: is required/);
  t.match(lines, /k8s\/bad-weight\.yaml Ingress e2e\/canary metadata\.annotations\["nginx\.ingress\.kubernetes\.io\/canary-weight"\]: "abc" is not a whole number.*\[invalid_manifest\]/);
  t.match(lines, /k8s\/no-pathtype\.yaml Ingress e2e\/no-pathtype spec\.rules\[0\]\.http\.paths\[0\]\.pathType: is required/);
  t.match(lines, /k8s\/not-yaml\.yaml: not YAML/);
  t.match(lines, /HTTPRoute default\/ext spec\.rules\[0\]\.filters\[0\]: filter type ExtensionRef is not supported by veer.*\[not_mapped\]/);
  t.match(lines, /HTTPRoute default\/cross spec\.rules\[0\]\.backendRefs\[0\]\.namespace: Service elsewhere\/other is in another namespace and no ReferenceGrant/);
  t.match(lines, /Ingress e2e\/other-class spec\.ingressClassName: class "traefik" belongs to another controller/);
});

t.test('a ReferenceGrant lets a route reach a Service in another namespace', async (t) => {
  const p = await backends(t, 'other');
  const grant = `apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: { name: allow-default, namespace: elsewhere }
spec:
  from: [{ group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default }]
  to: [{ group: "", kind: Service }]
`;
  const s = await serveManifests(t, { 'cross.yaml': route('cross', 'g.example', 'other', p.other!, ', namespace: elsewhere'), 'grant.yaml': grant });
  t.equal((await s.get('g.example')).upstream, 'other');
});

t.test('an object broken on reload keeps its last good form; the others take their edits; a deleted object goes', async (t) => {
  const p = await backends(t, 'one', 'two');
  const s = await serveManifests(t, { 'a.yaml': route('a', 'a.example', 'one', p.one!), 'b.yaml': route('b', 'b.example', 'one', p.one!) });
  t.equal((await s.get('a.example')).upstream, 'one');
  s.write('a.yaml', route('a', 'a.example', 'two', p.two!).replace(`port: ${p.two}`, 'port: abc'));
  s.write('b.yaml', route('b', 'b.example', 'two', p.two!));
  t.equal(await s.veer.reloader.reload('test'), 'success');
  t.equal((await s.get('a.example')).upstream, 'one', 'the broken object serves its last good form');
  t.equal((await s.get('b.example')).upstream, 'two', 'the other object took its edit');
  s.write('a.yaml', route('a', 'a.example', 'two', p.two!));
  t.equal(await s.veer.reloader.reload('test'), 'success');
  t.equal((await s.get('a.example')).upstream, 'two', 'fixed: the new form serves');
  s.write('a.yaml', '# emptied\n');
  t.equal(await s.veer.reloader.reload('test'), 'success');
  t.equal((await s.get('a.example')).status, 404, 'an object removed from the files is no longer served');
  t.equal((await s.get('b.example')).upstream, 'two');
});

t.test('included files are watched: a new file is served without a signal', async (t) => {
  const p = await backends(t, 'one');
  const s = await serveManifests(t, { 'a.yaml': route('a', 'a.example', 'one', p.one!) }, '', true);
  t.equal((await s.get('new.example')).status, 404);
  writeFileSync(join(s.dir, 'k8s', 'new.yaml'), route('new', 'new.example', 'one', p.one!));
  t.ok(await waitFor(async () => (await s.get('new.example')).upstream === 'one', 10_000), 'the new route serves after the watcher saw it');
});

t.test("an included object may not take a name, or a host and path, that the config's own services serve", async (t) => {
  const p = await backends(t, 'mine', 'theirs');
  const s = await serveManifests(
    t,
    { 'x.yaml': singleIngress('x', '/', 'shop.example', 'theirs', p.theirs!, {}, 'default') },
    `services:\n  - name: shop\n    match: { hosts: [shop.example] }\n    versions: [{ name: v1, upstream: "http://127.0.0.1:${p.mine}" }]\n`,
  );
  t.equal((await s.get('shop.example')).upstream, 'mine');
  t.same(
    s.veer.config().services.map((x) => x.name),
    ['shop'],
  );
});
