// Ingress (networking.k8s.io/v1) with ingress-nginx's canary annotations ->
// veer services. A canary Ingress (`canary: "true"`) adds its backend as a
// second version to the main Ingress of the same host and path, as
// ingress-nginx does; the order of its rules is ingress-nginx's:
//
//   header (value | pattern | always/never) -> cookie (always/never) -> weight
//
// One path under a host becomes the short form (`match.pathPrefix`,
// `routes:`, `split:`), which keeps that first-match order; several paths, or
// an Exact one, become `rules:` whose precedence gives the same order.

import { RE2JS } from 're2js';
import type { Finding, KubernetesOptions, Manifest, ObjectResult, ServiceDoc } from './types.ts';
import { ObjectReport, VersionNames, asArray, asRecord, asString, checkApiVersion, readIdentity } from './fields.ts';

const PREFIX = 'nginx.ingress.kubernetes.io/';
const CANARY_ANNOTATIONS = ['canary', 'canary-weight', 'canary-weight-total', 'canary-by-header', 'canary-by-header-value', 'canary-by-header-pattern', 'canary-by-cookie'];
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const COOKIE_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

interface Backend {
  readonly service: string;
  readonly port: number;
}

interface IngressPath {
  readonly host: string | null;
  readonly path: string;
  readonly exact: boolean;
  readonly backend: Backend;
  readonly field: string;
}

interface CanarySpec {
  readonly weight: number;
  readonly total: number;
  readonly header: string | null;
  readonly headerValue: string | null;
  readonly headerPattern: string | null;
  readonly cookie: string | null;
}

/** An Ingress read and checked on its own. */
export interface ParsedIngress {
  readonly report: ObjectReport;
  readonly canary: CanarySpec | null;
  readonly paths: readonly IngressPath[];
}

/** Reads one Ingress: its paths and canary annotations, with every problem found. */
export function parseIngress(manifest: Manifest, options: KubernetesOptions): ParsedIngress {
  const report = readIdentity(manifest, 'Ingress');
  checkApiVersion(manifest, ['networking.k8s.io/v1'], report);
  const metadata = asRecord(manifest.metadata);
  const annotations = asRecord(metadata?.annotations) ?? {};
  const spec = asRecord(manifest.spec);
  const paths: IngressPath[] = [];
  if (spec === undefined) {
    report.invalid('spec', 'is required');
    return { report, canary: null, paths };
  }
  const className = asString(spec.ingressClassName) ?? asString(annotations['kubernetes.io/ingress.class']);
  if (className !== undefined && !options.ingressClasses.includes(className)) {
    report.notMapped(spec.ingressClassName !== undefined ? 'spec.ingressClassName' : 'metadata.annotations["kubernetes.io/ingress.class"]', `class "${className}" belongs to another controller (veer serves ${options.ingressClasses.join(', ')}; see kubernetes.ingressClasses)`);
  }
  for (const key of Object.keys(annotations)) {
    if (key.startsWith(PREFIX) && !CANARY_ANNOTATIONS.includes(key.slice(PREFIX.length))) {
      report.notMapped(`metadata.annotations["${key}"]`, 'veer does not implement this ingress-nginx annotation');
    }
  }
  const canary = readCanary(annotations, report);
  if (spec.defaultBackend !== undefined) {
    if (spec.rules !== undefined) report.notMapped('spec.defaultBackend', 'a default backend beside rules is not mapped; give it its own Ingress without rules');
    else {
      const backend = readBackend(spec.defaultBackend, 'spec.defaultBackend', report);
      if (backend !== null) paths.push({ host: null, path: '/', exact: false, backend, field: 'spec.defaultBackend' });
    }
  }
  const rules = spec.rules === undefined ? [] : asArray(spec.rules);
  if (rules === undefined) report.invalid('spec.rules', 'must be a list');
  else if (rules.length === 0 && spec.defaultBackend === undefined) report.invalid('spec', 'has neither rules nor a defaultBackend');
  (rules ?? []).forEach((rawRule, ri) => {
    const at = `spec.rules[${ri}]`;
    const rule = asRecord(rawRule);
    if (rule === undefined) return report.invalid(at, 'must be a mapping');
    const host = rule.host === undefined ? null : asString(rule.host);
    if (host === undefined || (host !== null && !/^(\*\.)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(host))) return report.invalid(`${at}.host`, `"${String(rule.host)}" is not a host name`);
    const http = asRecord(rule.http);
    if (http === undefined) return report.invalid(`${at}.http`, 'is required (veer routes HTTP)');
    const list = asArray(http.paths);
    if (list === undefined || list.length === 0) return report.invalid(`${at}.http.paths`, 'must be a non-empty list');
    list.forEach((rawPath, pi) => {
      const pat = `${at}.http.paths[${pi}]`;
      const p = asRecord(rawPath);
      if (p === undefined) return report.invalid(pat, 'must be a mapping');
      const path = p.path === undefined ? '/' : asString(p.path);
      if (path === undefined || !/^\/[^?#\s]*$/.test(path)) return report.invalid(`${pat}.path`, `"${String(p.path)}" is not an absolute path`);
      const pathType = p.pathType;
      if (pathType === undefined) return report.invalid(`${pat}.pathType`, 'is required (Exact, Prefix or ImplementationSpecific)');
      if (pathType !== 'Exact' && pathType !== 'Prefix' && pathType !== 'ImplementationSpecific') return report.invalid(`${pat}.pathType`, `"${String(pathType)}" is not Exact, Prefix or ImplementationSpecific`);
      const backend = readBackend(p.backend, `${pat}.backend`, report);
      if (backend !== null) paths.push({ host, path, exact: pathType === 'Exact', backend, field: pat });
    });
  });
  return { report, canary, paths };
}

function readBackend(raw: unknown, at: string, report: ObjectReport): Backend | null {
  const backend = asRecord(raw);
  if (backend === undefined) {
    report.invalid(at, 'is required');
    return null;
  }
  if (backend.resource !== undefined) {
    report.notMapped(`${at}.resource`, 'a resource backend is not a Service; veer proxies to Services only');
    return null;
  }
  const service = asRecord(backend.service);
  const name = asString(service?.name);
  if (service === undefined || name === undefined) {
    report.invalid(`${at}.service.name`, 'is required');
    return null;
  }
  const port = asRecord(service.port);
  if (port?.number !== undefined) {
    const n = port.number;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) {
      report.invalid(`${at}.service.port.number`, `${JSON.stringify(n)} is not a port number`);
      return null;
    }
    return { service: name, port: n };
  }
  if (port?.name !== undefined) report.notMapped(`${at}.service.port.name`, 'a named port needs the Service object to resolve; give port.number');
  else report.invalid(`${at}.service.port`, 'is required (number)');
  return null;
}

/** The canary annotations, checked as ingress-nginx reads them. */
function readCanary(annotations: Record<string, unknown>, report: ObjectReport): CanarySpec | null {
  const get = (name: string): string | undefined => {
    const value = annotations[PREFIX + name];
    return value === undefined ? undefined : String(value);
  };
  const field = (name: string) => `metadata.annotations["${PREFIX}${name}"]`;
  const flag = get('canary');
  if (flag === undefined) return null;
  if (flag !== 'true' && flag !== 'false') {
    report.invalid(field('canary'), `"${flag}" is not "true" or "false"`);
    return null;
  }
  if (flag === 'false') return null;
  const int = (name: string, fallback: number, min: number): number => {
    const text = get(name);
    if (text === undefined) return fallback;
    if (!/^[0-9]+$/.test(text) || Number(text) < min) {
      report.invalid(field(name), `"${text}" is not a whole number${min > 0 ? ` of at least ${min}` : ''}`);
      return fallback;
    }
    return Number(text);
  };
  const total = int('canary-weight-total', 100, 1);
  const weight = int('canary-weight', 0, 0);
  if (weight > total) report.invalid(field('canary-weight'), `${weight} is more than canary-weight-total (${total})`);
  const header = get('canary-by-header') ?? null;
  if (header !== null && !HEADER_NAME.test(header)) report.invalid(field('canary-by-header'), `"${header}" is not a header name`);
  const headerValue = get('canary-by-header-value') ?? null;
  const headerPattern = get('canary-by-header-pattern') ?? null;
  if ((headerValue !== null || headerPattern !== null) && header === null) report.invalid(field(headerValue !== null ? 'canary-by-header-value' : 'canary-by-header-pattern'), 'needs canary-by-header (the header to read)');
  if (headerPattern !== null && headerPattern === '') report.invalid(field('canary-by-header-pattern'), 'is empty');
  else if (headerPattern !== null && headerValue === null) {
    try {
      RE2JS.compile(headerPattern);
    } catch (err) {
      report.invalid(field('canary-by-header-pattern'), `${JSON.stringify(headerPattern)} is not an RE2 regular expression (veer's linear-time engine; no lookaround or backreferences): ${(err as Error).message}`);
    }
  }
  const cookie = get('canary-by-cookie') ?? null;
  if (cookie !== null && !COOKIE_NAME.test(cookie)) report.invalid(field('canary-by-cookie'), `"${cookie}" is not a cookie name`);
  // ingress-nginx ignores the pattern when a value is given.
  return { weight, total, header, headerValue, headerPattern: headerValue === null ? headerPattern : null, cookie };
}

/** A route of the short form, or the conditions of a rule's match. */
interface Condition {
  readonly header?: { name: string; value?: string; regex?: string };
  readonly cookie?: { name: string; value: string };
  readonly to: 'canary' | 'main';
}

/** The canary's conditions in ingress-nginx's order. */
function canaryConditions(canary: CanarySpec): Condition[] {
  const out: Condition[] = [];
  if (canary.header !== null) {
    if (canary.headerValue !== null) out.push({ header: { name: canary.header, value: canary.headerValue }, to: 'canary' });
    else if (canary.headerPattern !== null) out.push({ header: { name: canary.header, regex: canary.headerPattern }, to: 'canary' });
    else out.push({ header: { name: canary.header, value: 'always' }, to: 'canary' }, { header: { name: canary.header, value: 'never' }, to: 'main' });
  }
  if (canary.cookie !== null) out.push({ cookie: { name: canary.cookie, value: 'always' }, to: 'canary' }, { cookie: { name: canary.cookie, value: 'never' }, to: 'main' });
  return out;
}

/**
 * Translates every Ingress: main ones into services, canaries into the
 * service of the main Ingress they share a host and path with.
 */
export function translateIngresses(manifests: readonly Manifest[], options: KubernetesOptions): ObjectResult[] {
  const parsed = manifests.map((m) => parseIngress(m, options));
  const results = new Map<ParsedIngress, ObjectResult>();
  for (const p of parsed) results.set(p, { key: p.report.key, kind: 'Ingress', object: p.report.object, services: [], findings: p.report.findings });
  const mains = parsed.filter((p) => p.canary === null && !p.report.hasErrors);
  const canaries = parsed.filter((p) => p.canary !== null && !p.report.hasErrors);
  const locationKey = (ns: string, path: IngressPath) => `${ns} ${path.host ?? '*'} ${path.path} ${path.exact}`;
  // The main Ingress serving each location, the first in input order.
  const owners = new Map<string, { main: ParsedIngress; path: IngressPath }>();
  for (const main of mains) for (const path of main.paths) if (!owners.has(locationKey(main.report.namespace, path))) owners.set(locationKey(main.report.namespace, path), { main, path });
  // canaryOf.get(main)!.get(path) -> the canary's backend and annotations
  const canaryOf = new Map<ParsedIngress, Map<IngressPath, { backend: Backend; canary: CanarySpec; from: ParsedIngress }>>();
  for (const c of canaries) {
    const findings = results.get(c)!.findings;
    for (const path of c.paths) {
      const owner = owners.get(locationKey(c.report.namespace, path));
      if (owner === undefined) {
        findings.push(finding(c.report, path.field, `no main Ingress in namespace ${c.report.namespace} serves host ${path.host ?? '(any)'} path ${path.path}; a canary Ingress only adds to one (ingress-nginx answers 404 here too)`));
        continue;
      }
      const byPath = canaryOf.get(owner.main) ?? new Map();
      canaryOf.set(owner.main, byPath);
      const taken = byPath.get(owner.path);
      if (taken !== undefined) {
        findings.push(finding(c.report, path.field, `host ${path.host ?? '(any)'} path ${path.path} already has the canary Ingress ${taken.from.report.object}; ingress-nginx takes one canary per location`));
        continue;
      }
      byPath.set(owner.path, { backend: path.backend, canary: c.canary!, from: c });
    }
  }
  for (const main of mains) results.get(main)!.services.push(...servicesOf(main, canaryOf.get(main) ?? new Map(), options));
  return parsed.map((p) => results.get(p)!);
}

function finding(report: ObjectReport, field: string, reason: string): Finding {
  return { code: 'not_mapped', kind: report.kind, object: report.object, field, reason };
}

/** One service per host of the main Ingress (`namespace.name`, or `namespace.name-N` for the Nth host of several). */
function servicesOf(main: ParsedIngress, canaries: Map<IngressPath, { backend: Backend; canary: CanarySpec }>, options: KubernetesOptions): ServiceDoc[] {
  const hosts: (string | null)[] = [];
  for (const p of main.paths) if (!hosts.includes(p.host)) hosts.push(p.host);
  const { namespace, name } = main.report;
  return hosts.map((host, hi) => {
    const serviceName = hosts.length === 1 ? `${namespace}.${name}` : `${namespace}.${name}-${hi + 1}`;
    const paths = main.paths.filter((p) => p.host === host);
    const versions = new VersionNames();
    const doc: ServiceDoc = { name: serviceName, match: host === null ? {} : { hosts: [host] } };
    const versionOf = (b: Backend) => versions.nameFor(b.service, namespace, b.port, options.backendUrl);
    if (paths.length === 1 && !paths[0]!.exact) {
      // The short form: ingress-nginx's first-match order is routes' order.
      const path = paths[0]!;
      (doc.match as Record<string, unknown>).pathPrefix = path.path;
      const mainVersion = versionOf(path.backend);
      const c = canaries.get(path);
      if (c === undefined) return { ...doc, versions: versions.versions };
      const canaryVersion = versionOf(c.backend);
      const routes = canaryConditions(c.canary).map((cond) => ({
        match: cond.header !== undefined ? { header: cond.header } : { cookie: cond.cookie },
        to: cond.to === 'canary' ? canaryVersion : mainVersion,
      }));
      return { ...doc, versions: versions.versions, ...(routes.length > 0 && { routes }), split: { weights: { [mainVersion]: c.canary.total - c.canary.weight, [canaryVersion]: c.canary.weight } } };
    }
    // The long form: one rule per condition and path; header and cookie rules outrank the path's plain rule,
    // and between them config order (header first) decides, as in ingress-nginx.
    const rules: Record<string, unknown>[] = [];
    const withCanary = paths.filter((p) => canaries.has(p));
    let serviceSplit: Record<string, number> | undefined;
    for (const path of paths) {
      const pathMatch = { path: { type: path.exact ? 'Exact' : 'PathPrefix', value: path.path } };
      const mainVersion = versionOf(path.backend);
      const c = canaries.get(path);
      if (c === undefined) {
        rules.push({ matches: [pathMatch], to: mainVersion });
        continue;
      }
      const canaryVersion = versionOf(c.backend);
      for (const cond of canaryConditions(c.canary)) {
        const condition =
          cond.header !== undefined
            ? { headers: [cond.header.regex !== undefined ? { name: cond.header.name, type: 'RegularExpression', value: `.*(?:${cond.header.regex}).*` } : { name: cond.header.name, type: 'Exact', value: cond.header.value }] }
            : { cookies: [{ name: cond.cookie!.name, type: 'Exact', value: cond.cookie!.value }] };
        rules.push({ matches: [{ ...pathMatch, ...condition }], to: cond.to === 'canary' ? canaryVersion : mainVersion });
      }
      const weights = { [mainVersion]: c.canary.total - c.canary.weight, [canaryVersion]: c.canary.weight };
      // The one canary of the service takes the service's split: `veer weights` and rollouts move it.
      if (withCanary.length === 1) {
        serviceSplit = weights;
        rules.push({ matches: [pathMatch] });
      } else rules.push({ matches: [pathMatch], split: { weights } });
    }
    return { ...doc, versions: versions.versions, ...(serviceSplit !== undefined && { split: { weights: serviceSplit } }), rules };
  });
}
