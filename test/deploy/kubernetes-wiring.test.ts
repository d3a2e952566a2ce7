// deploy/kubernetes, checked offline: how the rendered objects fit together -
// security contexts, probes and ports against veer.yaml, draining inside the
// grace period, the admin token Secret, Services, PDB, ServiceMonitor, the
// example app's upstream URLs, the etcd overlay and the TLS overlay (Secrets
// mounted whole where `tls.certificates` looks, the https port end to end).
// Rendering, schemas and `veer validate` are kubernetes-render.test.ts.

import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { basename, dirname, join } from 'node:path';
import t from 'tap';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { parseDuration, parseListenAddress } from '../../src/config/index.ts';
import { containerPortFor, containersOf, find, keyOf, podSpecOf, selects, serviceForUrl, veerConfigOf, workloadsSelected, type Manifest, type VeerConfig } from '../helpers/kubernetes.ts';
import { ROOT } from '../helpers/veer.ts';
import { allRenders as renders } from './kubernetes-overlays.ts';

/** `tls` of veer's config, which the helper's VeerConfig leaves out. */
interface TlsPart {
  tls?: { listen?: string; certificates: ({ dir: string } | { cert: string; key: string })[]; redirectHttp?: boolean };
}
/** The TLS listener's port (tls.listen, default 0.0.0.0:8443), or null without `tls`. */
const tlsPortOf = (config: VeerConfig & TlsPart) => (config.tls ? parseListenAddress(config.tls.listen ?? '0.0.0.0:8443')!.port : null);

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
    const dataPorts = [parseListenAddress(config.listen)!.port, tlsPortOf(config)].filter((p) => p !== null);
    for (const [service, want] of [[traffic, dataPorts], [admin, [parseListenAddress(config.admin.listen)!.port]]] as const) {
      const workloads = workloadsSelected(objects, service.metadata?.namespace, service.spec?.selector);
      t.same(workloads.map((w) => w.metadata?.name), ['veer'], `${name}: Service ${service.metadata?.name} selects the veer pods and nothing else`);
      t.same(service.spec?.ports?.map((p) => containerPortFor(workloads[0]!, p.targetPort)).sort(), [...want].sort(), `${name}: Service ${service.metadata?.name} reaches ports ${want.join(', ')}`);
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
  for (const name of ['root', 'etcd', 'tls'] as const) {
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

t.test('only the TLS overlay serves HTTPS, and it changes only the config, the Deployment and the Service', async (t) => {
  for (const [name, objects] of renders) {
    const { container, config } = veerConfigOf(objects);
    t.equal((config as TlsPart).tls !== undefined, name === 'tls', `${name}: ${name === 'tls' ? 'tls' : 'no tls: plain HTTP, no Secret needed to start'}`);
    t.equal(container.ports?.some((p) => p.name === 'https'), name === 'tls', `${name}: ${name === 'tls' ? 'a' : 'no'} port https`);
  }
  const root = renders.get('root')!;
  const tls = renders.get('tls')!;
  t.same({ ...veerConfigOf(tls).config, tls: null }, { ...veerConfigOf(root).config, tls: null }, 'the configs differ only in tls');
  const changed = tls.filter((o) => !root.some((r) => isDeepStrictEqual(r, o))).map(keyOf);
  t.same(changed, ['ConfigMap/veer/veer-config', 'Deployment/veer/veer', 'Service/veer/veer'], 'every other object is the quick start\'s');
});

t.test('TLS Secrets are mounted whole, one folder each, where tls.certificates looks', async (t) => {
  for (const [name, objects] of renders) {
    const { pod, container, config } = veerConfigOf(objects);
    const dirs = ((config as TlsPart).tls?.certificates ?? []).flatMap((c) => ('dir' in c ? [c.dir] : []));
    if ((config as TlsPart).tls) t.ok(dirs.length > 0, `${name}: tls.certificates reads a folder of Secrets`);
    for (const dir of dirs) {
      const under = (container.volumeMounts ?? []).filter((m) => m.mountPath === dir || m.mountPath.startsWith(`${dir}/`));
      t.ok(under.length > 0, `${name}: a Secret is mounted under ${dir}`);
      for (const mount of under) {
        const where = `${name}: ${mount.mountPath}`;
        const secret = pod.volumes?.find((v) => v.name === mount.name)?.secret;
        t.ok(secret?.secretName, `${where}: a Secret volume`);
        t.equal(dirname(mount.mountPath), dir, `${where}: one folder below ${dir} (veer reads ${dir}/*/tls.crt)`);
        t.equal(basename(mount.mountPath), secret?.secretName, `${where}: the folder is named after the Secret`);
        t.equal(mount.subPath ?? mount.subPathExpr, undefined, `${where}: no subPath, so a renewed Secret reaches the files veer polls`);
        t.equal(mount.readOnly, true, `${where}: read-only`);
        t.equal(secret?.items, undefined, `${where}: every key under its own name (tls.crt, tls.key)`);
        // The kubelet makes Secret files root's, group fsGroup: veer's uid reads tls.key through the group or not at all.
        const mode = secret?.defaultMode ?? 0o644;
        const readable = (mode & 0o004) !== 0 || ((mode & 0o040) !== 0 && pod.securityContext?.fsGroup !== undefined);
        t.ok(readable, `${where}: mode ${mode.toString(8)} lets veer (uid ${pod.securityContext?.runAsUser}) read tls.key`);
      }
    }
  }
});

t.test('the TLS port: tls.listen is the container port https, which the veer Service\'s 443 reaches', async (t) => {
  const objects = renders.get('tls')!;
  const { container, config } = veerConfigOf(objects);
  const tlsPort = tlsPortOf(config);
  t.equal(container.ports?.find((p) => p.name === 'https')?.containerPort, tlsPort, `port https is tls.listen (${tlsPort})`);
  const traffic = find<IService>(objects, 'Service', 'veer');
  const [veerPods] = workloadsSelected(objects, traffic.metadata?.namespace, traffic.spec?.selector);
  const servicePort = (port: number) => traffic.spec?.ports?.find((p) => p.port === port);
  t.equal(servicePort(443)?.targetPort, 'https', 'the Service\'s 443 targets port https by name');
  t.equal(veerPods && containerPortFor(veerPods, servicePort(443)?.targetPort), tlsPort, '443 reaches the TLS listener');
  t.equal(veerPods && containerPortFor(veerPods, servicePort(80)?.targetPort), parseListenAddress(config.listen)!.port, '80 still reaches the plain listener');
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
