// `veer import`: the real binary on manifests from the projects' docs; the
// config it prints is valid and, served, routes as the manifests meant.

import t from 'tap';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { request } from 'undici';
import { runCli } from '../helpers/cli.ts';
import { startUpstream } from '../helpers/upstreams.ts';
import { runVeerIn } from '../helpers/veer.ts';

const FIXTURES = 'test/fixtures/kubernetes';

interface Imported {
  services: { name: string; versions: { name: string; upstream: string }[] }[];
}

t.test('everything mapped: exit 0, the config on stdout, nothing on stderr', async (t) => {
  for (const file of ['gateway-http-routing.yaml', 'gateway-traffic-splitting.yaml', 'ingress-nginx-canary.yaml', 'argo-rollouts-demo.yaml']) {
    const run = await runCli(['import', `${FIXTURES}/${file}`]);
    t.equal(run.code, 0, `${file}: exit 0`);
    t.equal(run.stderr, '', `${file}: nothing left out`);
    const doc = parse(run.stdout) as Imported;
    t.ok(doc.services.length > 0, `${file}: services printed`);
  }
});

t.test('something left out: exit 2, each field on stderr with the file, object and field', async (t) => {
  const flagger = await runCli(['import', `${FIXTURES}/flagger-podinfo.yaml`]);
  t.equal(flagger.code, 2);
  t.match(flagger.stderr, `${FIXTURES}/flagger-podinfo.yaml: Canary test/podinfo spec.analysis.webhooks[0].metadata: `);
  t.match(flagger.stderr, /\[not_mapped\]/);
  t.match(parse(flagger.stdout), { services: [{ name: 'test.podinfo', rollout: { canary: 'podinfo-canary' } }] }, 'what could be mapped is printed');
  const argo = await runCli(['import', `${FIXTURES}/argo-analysis.yaml`]);
  t.equal(argo.code, 2);
  t.match(argo.stderr, 'Rollout default/guestbook spec.strategy.canary.analysis.args: template arguments are not mapped');
  const folder = await runCli(['import', FIXTURES]);
  t.equal(folder.code, 2, 'a folder: everything in it, exit 2 as something was left out');
  const names = (parse(folder.stdout) as Imported).services.map((s) => s.name);
  for (const name of ['default.foo-route', 'default.bar-route', 'default.production', 'default.rollouts-demo', 'test.podinfo']) t.ok(names.includes(name), `${name} imported from the folder`);
});

t.test('bad input: an unreadable path exits 1; a bad object is named and skipped (exit 2)', async (t) => {
  const missing = await runCli(['import', 'no/such/file.yaml']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, 'no/such/file.yaml: cannot read: no such file or folder');
  const dir = t.testdir({
    'bad.yaml': `apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: { name: x, annotations: { nginx.ingress.kubernetes.io/canary: "true", nginx.ingress.kubernetes.io/canary-weight: abc } }\nspec:\n  rules:\n  - host: a.example\n    http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: s, port: { number: 80 } } } }] }\n`,
    'broken.yaml': 'kind: [\n',
  });
  const bad = await runCli(['import', join(dir, 'bad.yaml')]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, 'Ingress default/x metadata.annotations["nginx.ingress.kubernetes.io/canary-weight"]: "abc" is not a whole number [invalid_manifest]');
  t.equal(bad.stdout, '', 'nothing printed from a bad object');
  const broken = await runCli(['import', join(dir, 'broken.yaml')]);
  t.equal(broken.code, 1, 'not YAML: unreadable input');
  t.match(broken.stderr, 'not YAML');
});

t.test('the imported config, served, routes as the manifests meant', async (t) => {
  const ups: Record<string, string> = {};
  for (const name of ['foo-svc', 'bar-svc', 'bar-svc-canary', 'production', 'canary']) {
    const up = await startUpstream(name);
    t.teardown(() => up.close());
    ups[name] = up.url;
  }
  const services: Imported['services'] = [];
  for (const file of ['gateway-http-routing.yaml', 'ingress-nginx-canary.yaml']) {
    const run = await runCli(['import', `${FIXTURES}/${file}`]);
    t.equal(run.code, 0);
    services.push(...(parse(run.stdout) as Imported).services);
  }
  // The cluster's Services, here: each version's upstream points at the test server of its name.
  for (const s of services) for (const v of s.versions) v.upstream = ups[v.name]!;
  const veer = await runVeerIn(t, `listen: 127.0.0.1:0\nadmin: { listen: 127.0.0.1:0 }\nlog: { level: silent }\n${stringify({ services })}`);
  const get = async (host: string, path: string, headers: Record<string, string> = {}) => {
    const res = await request(`${veer.url}${path}`, { headers: { host, ...headers } });
    await res.body.text();
    return { status: res.statusCode, upstream: res.headers['x-upstream'] ?? null };
  };
  t.same(await get('foo.example.com', '/login'), { status: 200, upstream: 'foo-svc' });
  t.equal((await get('foo.example.com', '/logout')).status, 404, 'only /login is routed on foo');
  t.same(await get('bar.example.com', '/', { env: 'canary' }), { status: 200, upstream: 'bar-svc-canary' });
  t.same(await get('bar.example.com', '/'), { status: 200, upstream: 'bar-svc' });
  const seen = new Set<unknown>();
  for (let i = 0; i < 60; i++) seen.add((await get('echo.prod.mydomain.com', '/')).upstream);
  t.same([...seen].sort(), ['canary', 'production'], 'the 50% canary and production both answer');
});
