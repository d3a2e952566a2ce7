// `include:` in the config: files and folders of Kubernetes manifests whose
// routing objects become services beside the config's own. Each object
// stands alone: one that is wrong, or that veer cannot honour completely, is
// left out and reported (with its kind, namespace/name and field), and the
// version of it that was last served keeps serving; the rest are applied.
//
//   files ──read──> manifests ──pass 1──> findings? ──yes──> last good copy (or left out)
//                                   │ no: remember as last good
//                                   └──pass 2 (the kept set)──> schema check per service ──> services

import { createHash } from 'node:crypto';
import { relative } from 'node:path';
import { watch } from 'chokidar';
import { RE2JS } from 're2js';
import type { ConfigIssue } from '../load.ts';
import type { Config, ServiceConfig } from '../schema.ts';
import { configValidator } from '../validator.ts';
import { debounceEvents } from '../watch.ts';
import { asRecord, asString } from './fields.ts';
import { readManifests } from './read.ts';
import { objectKey, translateManifests } from './translate.ts';
import { DEFAULT_KUBERNETES, type Finding, type KubernetesOptions, type Manifest, type ServiceDoc } from './types.ts';

/** The config's `kubernetes:` with defaults filled in. */
export function kubernetesOptions(config: Pick<Config, 'kubernetes'>): KubernetesOptions {
  const k = config.kubernetes;
  return {
    backendUrl: k?.backendUrl ?? DEFAULT_KUBERNETES.backendUrl,
    ingressClasses: k?.ingressClasses ?? DEFAULT_KUBERNETES.ingressClasses,
    ...(k?.gateways !== undefined && { gateways: k.gateways }),
  };
}

/** What reading the included manifests gave: the services to add, and every problem (as warnings). */
export interface IncludedServices {
  readonly services: readonly ServiceConfig[];
  readonly warnings: readonly ConfigIssue[];
  /** Changes whenever an included file's content (or the file set) does. */
  readonly digest: string;
}

/** A finding as a config issue: the path names the file, the object and the field. */
export function findingIssue(f: Finding, file: string, note = ''): ConfigIssue {
  return { code: f.code, path: `${file} ${f.kind} ${f.object} ${f.field}`, message: `${f.reason}${note}` };
}

/**
 * The included manifests of one config source, with the last good copy of
 * every object, so that a broken edit of one object keeps its last good
 * form serving.
 */
export class IncludedManifests {
  readonly #lastGood = new Map<string, Manifest>();

  /** Reads `config.include` (relative to `baseDir`) and translates it; the config's own services keep their names and routes. */
  async read(config: Config, baseDir: string): Promise<IncludedServices> {
    const options = kubernetesOptions(config);
    const { manifests, problems, files } = await readManifests(config.include ?? [], baseDir);
    const hash = createHash('sha256');
    for (const f of files) hash.update(`${f.file}\u0000${f.text}\u0000`);
    const warnings: ConfigIssue[] = problems.map((p) => ({ code: 'invalid_manifest', path: relative(baseDir, p.file) || p.file, message: p.message }));
    const fileOf = new Map<Manifest, string>(manifests.map((m) => [m.manifest, relative(baseDir, m.file) || m.file]));

    // Pass 1: every object as it is now.
    const first = translateManifests(manifests.map((m) => m.manifest), options);
    const keyed = new Map<string, Manifest>();
    for (const m of manifests) if (!keyed.has(objectKey(m.manifest))) keyed.set(objectKey(m.manifest), m.manifest);
    const kept: Manifest[] = [];
    const refused = new Set<string>();
    for (const r of first.results) {
      const manifest = keyed.get(r.key);
      if (r.findings.length === 0) {
        if (manifest !== undefined) this.#lastGood.set(r.key, manifest);
        continue;
      }
      refused.add(r.key);
      const last = this.#lastGood.get(r.key);
      const note = last !== undefined ? '; the last good version of this object keeps serving' : '; this object is not served';
      for (const f of r.findings) warnings.push(findingIssue(f, (manifest && fileOf.get(manifest)) ?? '(include)', note));
    }
    for (const m of manifests) {
      const key = objectKey(m.manifest);
      if (!refused.has(key)) kept.push(m.manifest);
      else if (this.#lastGood.has(key) && !kept.includes(this.#lastGood.get(key)!)) {
        kept.push(this.#lastGood.get(key)!);
        fileOf.set(this.#lastGood.get(key)!, fileOf.get(m.manifest)!);
      }
    }
    // Objects gone from the files are gone: no last good copy outlives its file.
    const present = new Set(manifests.map((m) => objectKey(m.manifest)));
    for (const key of [...this.#lastGood.keys()]) if (!present.has(key)) this.#lastGood.delete(key);

    // Pass 2: the kept set, whose services are checked one by one against the schema and the config.
    const second = translateManifests(kept, options);
    const own = ownRoutes(config);
    const services: ServiceConfig[] = [];
    for (const r of second.results) {
      const file = fileOf.get(keyed.get(r.key) ?? this.#lastGood.get(r.key)!) ?? '(include)';
      const problems = [...r.findings];
      const checked: ServiceConfig[] = [];
      for (const doc of r.services) {
        const problem = checkService(doc, own);
        if (problem !== null) problems.push({ code: 'invalid_manifest', kind: r.kind, object: r.object, field: '(translation)', reason: problem });
        else checked.push(validated(doc));
      }
      if (problems.length > 0) {
        if (!refused.has(r.key)) for (const f of problems) warnings.push(findingIssue(f, file, '; this object is not served'));
        continue;
      }
      for (const s of checked) claimRoutes(s, own);
      services.push(...checked);
    }
    return { services, warnings, digest: hash.digest('hex') };
  }
}

/** Names and short-form routes (host + pathPrefix) already taken. */
export interface Taken {
  readonly names: Set<string>;
  readonly routes: Map<string, string>;
}

function routeKeys(s: { name?: unknown; match?: unknown; rules?: unknown }): string[] {
  if (s.rules !== undefined) return [];
  const match = asRecord(s.match) ?? {};
  const prefix = (asString(match.pathPrefix) ?? '/').replace(/\/+$/, '') || '/';
  const hosts = Array.isArray(match.hosts) ? (match.hosts as string[]) : ['*'];
  return hosts.map((h) => `${h.toLowerCase()} ${prefix}`);
}

function ownRoutes(config: Config): Taken {
  const taken: Taken = { names: new Set(), routes: new Map() };
  for (const s of config.services) claimRoutes(s, taken);
  return taken;
}

function claimRoutes(s: ServiceConfig, taken: Taken): void {
  taken.names.add(s.name);
  for (const key of routeKeys(s)) taken.routes.set(key, s.name);
}

/** Nothing taken yet. */
export function nothingTaken(): Taken {
  return { names: new Set(), routes: new Map() };
}

/** Takes a service's name and short-form routes. */
export function takeService(doc: ServiceDoc, taken: Taken): void {
  taken.names.add(String(doc.name));
  for (const key of routeKeys(doc)) taken.routes.set(key, String(doc.name));
}

/** Why a translated service cannot join the config, or null. */
export function checkService(doc: ServiceDoc, taken: Taken): string | null {
  const name = String(doc.name);
  if (taken.names.has(name)) return `the service name ${name} is already used`;
  for (const key of routeKeys(doc)) {
    const owner = taken.routes.get(key);
    if (owner !== undefined) return `host ${key.split(' ')[0] === '*' ? '(any)' : key.split(' ')[0]} with pathPrefix ${key.split(' ')[1]} is already served by service ${owner}`;
  }
  const validate = configValidator();
  const probe = { services: [structuredClone(doc)] };
  if (!validate(probe)) {
    const e = validate.errors![0]!;
    return `the service it becomes is not valid: ${e.instancePath.replace(/^\/services\/0/, '') || '(service)'} ${e.message ?? 'is invalid'}`;
  }
  for (const regex of regexesOf(doc)) {
    try {
      RE2JS.compile(regex);
    } catch (err) {
      return `${JSON.stringify(regex)} is not an RE2 regular expression: ${(err as Error).message}`;
    }
  }
  return null;
}

/** The service with the schema's defaults filled in. */
function validated(doc: ServiceDoc): ServiceConfig {
  const probe = { services: [structuredClone(doc)] };
  configValidator()(probe);
  return probe.services[0] as unknown as ServiceConfig;
}

function regexesOf(doc: ServiceDoc): string[] {
  const out: string[] = [];
  for (const r of (doc.routes as { match: { header?: { regex?: string } } }[] | undefined) ?? []) if (r.match.header?.regex !== undefined) out.push(r.match.header.regex);
  for (const rule of (doc.rules as { matches?: { headers?: { type?: string; value?: string }[]; path?: { type: string; value: string } }[] }[] | undefined) ?? []) {
    for (const m of rule.matches ?? []) {
      if (m.path?.type === 'RegularExpression') out.push(m.path.value);
      for (const h of m.headers ?? []) if (h.type === 'RegularExpression' && h.value !== undefined) out.push(h.value);
    }
  }
  return out;
}

/** Watches included files and folders (whole trees: a ConfigMap swaps its `..data` link); calls `onChange` debounced. */
export function watchIncluded(paths: readonly string[], onChange: () => void, debounceMs = 100): { ready: Promise<void>; close(): Promise<void> } {
  return debounceEvents(watch([...paths], { ignoreInitial: true, depth: 8 }), onChange, debounceMs);
}
