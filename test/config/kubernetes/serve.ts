// Serving Kubernetes manifests through `include:` for the tests beside this
// file: a temp folder with veer.yaml and k8s/, backends on 127.0.0.1 whose
// ports are the Services' ports (backendUrl http://127.0.0.1:{port}).

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startUpstream } from '../../helpers/upstreams.ts';
import { startVeerOn } from '../../helpers/veer.ts';
import type { Veer } from '../../../src/main.ts';

export interface Served {
  readonly veer: Veer;
  readonly dir: string;
  /** Writes (or replaces) a file under k8s/. */
  write(name: string, yaml: string): void;
  /** GET `path` on `host`; the upstream that answered (null: veer answered) and the status. */
  get(host: string, path?: string, headers?: Record<string, string>): Promise<{ status: number; upstream: string | null; body: string }>;
}

/** Upstreams by name, each with its port: `{ 'http-svc': 41234 }`. */
export async function backends(t: { teardown(fn: () => unknown): void }, ...names: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const name of names) {
    const up = await startUpstream(name);
    t.teardown(() => up.close());
    out[name] = up.port;
  }
  return out;
}

/** Starts veer on `include: [k8s/]` with the given files (and any extra config). */
export async function serveManifests(t: { teardown(fn: () => unknown): void }, files: Record<string, string>, extra = '', watch = false): Promise<Served> {
  const dir = mkdtempSync(join(tmpdir(), 'veer-k8s-'));
  mkdirSync(join(dir, 'k8s'));
  for (const [name, yaml] of Object.entries(files)) writeFileSync(join(dir, 'k8s', name), yaml);
  writeFileSync(
    join(dir, 'veer.yaml'),
    `listen: 127.0.0.1:0\nadmin: { listen: 127.0.0.1:0 }\nlog: { level: silent }\nstate: { path: state.json }\ninclude: [k8s/]\nkubernetes: { backendUrl: "http://127.0.0.1:{port}" }\n${extra}${extra.includes('services:') ? '' : 'services: []\n'}`,
  );
  const veer = await startVeerOn(join(dir, 'veer.yaml'), { watch });
  t.teardown(() => veer.stop());
  return {
    veer,
    dir,
    write: (name, yaml) => writeFileSync(join(dir, 'k8s', name), yaml),
    async get(host, path = '/', headers = {}) {
      const res = await request(`http://127.0.0.1:${veer.dataAddress.port}${path}`, { headers: { host, ...headers } });
      const body = await res.body.text();
      const upstream = res.headers['x-upstream'];
      return { status: res.statusCode, upstream: typeof upstream === 'string' ? upstream : null, body };
    },
  };
}

/** An Ingress as ingress-nginx's e2e framework builds one (NewSingleIngress): one host, one Prefix path, one backend. */
export function singleIngress(name: string, path: string, host: string, service: string, port: number, annotations: Record<string, string> = {}, namespace = 'e2e'): string {
  const notes = Object.entries(annotations)
    .map(([k, v]) => `    ${k}: ${JSON.stringify(v)}\n`)
    .join('');
  return `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ${name}
  namespace: ${namespace}
${notes === '' ? '' : `  annotations:\n${notes}`}spec:
  ingressClassName: nginx
  rules:
  - host: ${host}
    http:
      paths:
      - path: ${path}
        pathType: Prefix
        backend:
          service:
            name: ${service}
            port:
              number: ${port}
`;
}
