// Gateway API HTTPRoute (v1) -> one veer service named `namespace.name`
// whose `rules:` are the route's rules. Every backend Service becomes a
// version; a rule with one backend goes `to` it, several get a `split` (the
// first such split becomes the service's own, so `veer weights` and rollouts
// move it). Anything veer cannot honour is a finding; with a finding the
// object is not served (include), only printed (veer import).

import type { KubernetesOptions, Manifest, ObjectResult, ServiceDoc } from './types.ts';
import { ObjectReport, VersionNames, asArray, asRecord, asString, checkApiVersion, formatDuration, parseGoDuration, readIdentity } from './fields.ts';

const API_VERSIONS = ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'];

/** `namespace/name` pairs a ReferenceGrant allows: HTTPRoutes of `from` namespace may reach Services of `to` (`name` or any). */
export interface ReferenceGrants {
  allows(fromNamespace: string, toNamespace: string, service: string): boolean;
}

/** The ReferenceGrants among the manifests (invalid ones grant nothing). */
export function readReferenceGrants(manifests: readonly Manifest[]): ReferenceGrants {
  const grants: { ns: string; from: string[]; names: (string | null)[] }[] = [];
  for (const m of manifests) {
    const ns = asString(asRecord(m.metadata)?.namespace) ?? 'default';
    const spec = asRecord(m.spec);
    const from = (asArray(spec?.from) ?? [])
      .map(asRecord)
      .filter((f) => f?.group === 'gateway.networking.k8s.io' && f.kind === 'HTTPRoute')
      .map((f) => asString(f!.namespace) ?? '');
    const names = (asArray(spec?.to) ?? [])
      .map(asRecord)
      .filter((t) => (t?.group ?? '') === '' && t?.kind === 'Service')
      .map((t) => asString(t!.name) ?? null);
    grants.push({ ns, from, names });
  }
  return {
    allows: (fromNamespace, toNamespace, service) => grants.some((g) => g.ns === toNamespace && g.from.includes(fromNamespace) && g.names.some((n) => n === null || n === service)),
  };
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Translates one HTTPRoute. */
export function translateHttpRoute(manifest: Manifest, options: KubernetesOptions, grants: ReferenceGrants): ObjectResult {
  const report = readIdentity(manifest, 'HTTPRoute');
  checkApiVersion(manifest, API_VERSIONS, report);
  const result = (services: ServiceDoc[]): ObjectResult => ({ key: report.key, kind: report.kind, object: report.object, services, findings: report.findings });
  const spec = asRecord(manifest.spec);
  if (spec === undefined) {
    report.invalid('spec', 'is required');
    return result([]);
  }
  checkParents(spec, report, options);
  const doc: ServiceDoc = { name: `${report.namespace}.${report.name}`, match: {} };
  const hostnames = spec.hostnames === undefined ? [] : asArray(spec.hostnames);
  if (hostnames === undefined) report.invalid('spec.hostnames', 'must be a list');
  else if (hostnames.length > 0) {
    hostnames.forEach((h, i) => {
      if (typeof h !== 'string' || !/^(\*\.)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(h)) report.invalid(`spec.hostnames[${i}]`, `${JSON.stringify(h)} is not a host name`);
    });
    doc.match = { hosts: hostnames };
  }
  const versions = new VersionNames();
  const rawRules = spec.rules === undefined ? [{}] : asArray(spec.rules); // no rules: one rule matching every request
  if (rawRules === undefined) {
    report.invalid('spec.rules', 'must be a list');
    return result([]);
  }
  const rules: Record<string, unknown>[] = [];
  let serviceSplit: Record<string, number> | undefined;
  rawRules.forEach((raw, ri) => {
    const at = `spec.rules[${ri}]`;
    const rule = asRecord(raw);
    if (rule === undefined) return report.invalid(at, 'must be a mapping');
    const out: Record<string, unknown> = {};
    if (asString(rule.name) !== undefined) out.name = rule.name;
    if (rule.matches !== undefined) {
      const matches = asArray(rule.matches);
      if (matches === undefined) report.invalid(`${at}.matches`, 'must be a list');
      else if (matches.length > 0) out.matches = matches.map((m, mi) => translateMatch(m, `${at}.matches[${mi}]`, report));
    }
    const filters = translateFilters(rule.filters, `${at}.filters`, report, (ref, field) => backendVersion(ref, field, report, options, grants, versions));
    if (filters.length > 0) out.filters = filters;
    const redirect = filters.some((f) => 'requestRedirect' in f);
    const backends: { version: string; weight: number }[] = [];
    const refs = rule.backendRefs === undefined ? [] : asArray(rule.backendRefs);
    if (refs === undefined) report.invalid(`${at}.backendRefs`, 'must be a list');
    (refs ?? []).forEach((ref, bi) => {
      const field = `${at}.backendRefs[${bi}]`;
      const r = asRecord(ref);
      if (r?.filters !== undefined) report.notMapped(`${field}.filters`, 'filters on a backendRef are not mapped; put them on the rule');
      const version = backendVersion(ref, field, report, options, grants, versions);
      const weight = r?.weight === undefined ? 1 : r.weight;
      if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0 || weight > 1_000_000) return report.invalid(`${field}.weight`, `${JSON.stringify(weight)} is not a whole number from 0 to 1000000`);
      if (version !== null) backends.push({ version, weight });
    });
    if (!redirect) {
      if (backends.length === 0 && (refs ?? []).length === 0) report.notMapped(`${at}.backendRefs`, 'a rule without backends answers 500 in Gateway API; veer has no such rule');
      else if (backends.length > 0 && backends.every((b) => b.weight === 0)) report.notMapped(`${at}.backendRefs`, 'every backend has weight 0 (Gateway API answers 500); veer has no such rule');
      else if (backends.length === 1) out.to = backends[0]!.version;
      else if (backends.length > 1) {
        const weights: Record<string, number> = {};
        for (const b of backends) weights[b.version] = (weights[b.version] ?? 0) + b.weight;
        if (serviceSplit === undefined || JSON.stringify(serviceSplit) === JSON.stringify(weights)) serviceSplit = weights;
        else out.split = { weights };
      }
    } else if (backends.length > 0) report.notMapped(`${at}.backendRefs`, 'a rule with requestRedirect sends nowhere; its backendRefs are ignored');
    const timeouts = translateTimeouts(rule.timeouts, `${at}.timeouts`, report);
    if (timeouts !== undefined) out.timeouts = timeouts;
    for (const key of ['retry', 'sessionPersistence']) if (rule[key] !== undefined) report.notMapped(`${at}.${key}`, `${key} is not mapped (use the service's resilience / split.sticky)`);
    rules.push(out);
  });
  if (report.hasErrors) return result([]);
  if (versions.versions.length === 0) {
    if (report.findings.length === 0) {
      const redirects = rules.some((r) => (r.filters as Record<string, unknown>[] | undefined)?.some((f) => 'requestRedirect' in f) === true);
      report.notMapped('spec.rules', redirects ? 'a route of redirects only: a veer service needs at least one backend Service (add the redirect rules to a route that has one)' : 'no rule reaches a backend Service');
    }
    return result([]);
  }
  return result([{ ...doc, versions: versions.versions, ...(serviceSplit !== undefined && { split: { weights: serviceSplit } }), rules }]);
}

function checkParents(spec: Record<string, unknown>, report: ObjectReport, options: KubernetesOptions): void {
  const parents = spec.parentRefs === undefined ? [] : asArray(spec.parentRefs);
  if (parents === undefined) return report.invalid('spec.parentRefs', 'must be a list');
  if (options.gateways === undefined) return;
  const ours = parents.some((p) => {
    const r = asRecord(p);
    if (r === undefined || (r.kind ?? 'Gateway') !== 'Gateway') return false;
    return options.gateways!.includes(`${asString(r.namespace) ?? report.namespace}/${asString(r.name) ?? ''}`);
  });
  if (!ours) report.notMapped('spec.parentRefs', `attaches to no Gateway veer stands for (kubernetes.gateways: ${options.gateways.join(', ')})`);
}

/** A backendRef (or a mirror's) -> the version of its Service, or null with a finding. */
function backendVersion(raw: unknown, at: string, report: ObjectReport, options: KubernetesOptions, grants: ReferenceGrants, versions: VersionNames): string | null {
  const ref = asRecord(raw);
  if (ref === undefined) {
    report.invalid(at, 'must be a mapping');
    return null;
  }
  const group = ref.group ?? '';
  const kind = ref.kind ?? 'Service';
  if (group !== '' || kind !== 'Service') {
    report.notMapped(at, `a backend of kind ${String(group) === '' ? '' : `${String(group)}/`}${String(kind)} is not a Service; veer proxies to Services only`);
    return null;
  }
  const name = asString(ref.name);
  if (name === undefined) {
    report.invalid(`${at}.name`, 'is required');
    return null;
  }
  const port = ref.port;
  if (port === undefined) {
    report.invalid(`${at}.port`, 'is required for a Service backend');
    return null;
  }
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    report.invalid(`${at}.port`, `${JSON.stringify(port)} is not a port number`);
    return null;
  }
  const namespace = asString(ref.namespace) ?? report.namespace;
  if (namespace !== report.namespace && !grants.allows(report.namespace, namespace, name)) {
    report.notMapped(`${at}.namespace`, `Service ${namespace}/${name} is in another namespace and no ReferenceGrant in ${namespace} allows HTTPRoutes from ${report.namespace}`);
    return null;
  }
  return versions.nameFor(name, namespace, port, options.backendUrl);
}

function translateMatch(raw: unknown, at: string, report: ObjectReport): Record<string, unknown> {
  const m = asRecord(raw);
  const out: Record<string, unknown> = {};
  if (m === undefined) {
    report.invalid(at, 'must be a mapping');
    return out;
  }
  if (m.path !== undefined) {
    const path = asRecord(m.path);
    const type = path?.type ?? 'PathPrefix';
    const value = path?.value ?? '/';
    if (type !== 'Exact' && type !== 'PathPrefix' && type !== 'RegularExpression') report.invalid(`${at}.path.type`, `${JSON.stringify(type)} is not Exact, PathPrefix or RegularExpression`);
    else if (typeof value !== 'string' || (type !== 'RegularExpression' && !/^\/[^?#]*$/.test(value))) report.invalid(`${at}.path.value`, `${JSON.stringify(value)} is not an absolute path`);
    else out.path = { type, value };
  }
  if (m.method !== undefined) {
    if (typeof m.method !== 'string' || !/^(GET|HEAD|POST|PUT|DELETE|CONNECT|OPTIONS|TRACE|PATCH)$/.test(m.method)) report.invalid(`${at}.method`, `${JSON.stringify(m.method)} is not an HTTP method`);
    else out.method = m.method;
  }
  for (const [key, field] of [['headers', 'headers'], ['queryParams', 'queryParams']] as const) {
    if (m[key] === undefined) continue;
    const list = asArray(m[key]);
    if (list === undefined) {
      report.invalid(`${at}.${key}`, 'must be a list');
      continue;
    }
    const conditions: Record<string, unknown>[] = [];
    list.forEach((c, ci) => {
      const cat = `${at}.${key}[${ci}]`;
      const cond = asRecord(c);
      const name = asString(cond?.name);
      if (cond === undefined || name === undefined) return report.invalid(`${cat}.name`, 'is required');
      if (key === 'headers' && !HEADER_NAME.test(name)) return report.invalid(`${cat}.name`, `"${name}" is not a header name`);
      const type = cond.type ?? 'Exact';
      if (type !== 'Exact' && type !== 'RegularExpression') return report.invalid(`${cat}.type`, `${JSON.stringify(type)} is not Exact or RegularExpression`);
      if (typeof cond.value !== 'string') return report.invalid(`${cat}.value`, 'is required');
      conditions.push({ name, type, value: cond.value });
    });
    out[field] = conditions;
  }
  return out;
}

type FilterDoc = Record<string, unknown>;

function translateFilters(raw: unknown, at: string, report: ObjectReport, mirrorVersion: (ref: unknown, field: string) => string | null): FilterDoc[] {
  if (raw === undefined) return [];
  const list = asArray(raw);
  if (list === undefined) {
    report.invalid(at, 'must be a list');
    return [];
  }
  const out: FilterDoc[] = [];
  list.forEach((rawFilter, fi) => {
    const fat = `${at}[${fi}]`;
    const f = asRecord(rawFilter);
    const type = f?.type;
    if (f === undefined || typeof type !== 'string') return report.invalid(`${fat}.type`, 'is required');
    switch (type) {
      case 'RequestHeaderModifier':
      case 'ResponseHeaderModifier': {
        const key = type === 'RequestHeaderModifier' ? 'requestHeaderModifier' : 'responseHeaderModifier';
        const body = asRecord(f[key]);
        if (body === undefined) return report.invalid(`${fat}.${key}`, `is required with type ${type}`);
        const mod: Record<string, unknown> = {};
        for (const op of ['set', 'add'] as const) {
          if (body[op] === undefined) continue;
          const pairs = asArray(body[op]);
          if (pairs === undefined || pairs.some((p) => typeof asRecord(p)?.name !== 'string' || typeof asRecord(p)?.value !== 'string')) return report.invalid(`${fat}.${key}.${op}`, 'must be a list of { name, value }');
          mod[op] = pairs.map((p) => ({ name: asRecord(p)!.name, value: asRecord(p)!.value }));
        }
        if (body.remove !== undefined) {
          const names = asArray(body.remove);
          if (names === undefined || names.some((n) => typeof n !== 'string')) return report.invalid(`${fat}.${key}.remove`, 'must be a list of header names');
          mod.remove = names;
        }
        out.push({ [key]: mod });
        return;
      }
      case 'URLRewrite':
      case 'RequestRedirect': {
        const key = type === 'URLRewrite' ? 'urlRewrite' : 'requestRedirect';
        const body = asRecord(f[key]);
        if (body === undefined) return report.invalid(`${fat}.${key}`, `is required with type ${type}`);
        const res: Record<string, unknown> = {};
        if (body.hostname !== undefined) res.hostname = body.hostname;
        if (body.path !== undefined) {
          const p = asRecord(body.path);
          if (p?.type === 'ReplaceFullPath' && typeof p.replaceFullPath === 'string') res.path = { type: 'ReplaceFullPath', replaceFullPath: p.replaceFullPath };
          else if (p?.type === 'ReplacePrefixMatch' && typeof p.replacePrefixMatch === 'string') res.path = { type: 'ReplacePrefixMatch', replacePrefixMatch: p.replacePrefixMatch };
          else return report.invalid(`${fat}.${key}.path`, 'must be { type: ReplaceFullPath, replaceFullPath } or { type: ReplacePrefixMatch, replacePrefixMatch }');
        }
        if (key === 'requestRedirect') {
          for (const k of ['scheme', 'port', 'statusCode']) if (body[k] !== undefined) res[k] = body[k];
        }
        out.push({ [key]: res });
        return;
      }
      case 'RequestMirror': {
        const body = asRecord(f.requestMirror);
        if (body === undefined) return report.invalid(`${fat}.requestMirror`, 'is required with type RequestMirror');
        const version = mirrorVersion(body.backendRef, `${fat}.requestMirror.backendRef`);
        if (version === null) return;
        let percent: number | undefined;
        if (typeof body.percent === 'number') percent = body.percent;
        const fraction = asRecord(body.fraction);
        if (fraction !== undefined) {
          const num = fraction.numerator;
          const den = fraction.denominator ?? 100;
          if (typeof num !== 'number' || typeof den !== 'number' || den <= 0 || num < 0 || num > den) return report.invalid(`${fat}.requestMirror.fraction`, 'must have 0 <= numerator <= denominator, denominator > 0');
          percent = (num / den) * 100;
        }
        out.push({ requestMirror: { to: version, ...(percent !== undefined && { percent }) } });
        return;
      }
      default:
        report.notMapped(fat, `filter type ${type} is not supported by veer`);
    }
  });
  return out;
}

function translateTimeouts(raw: unknown, at: string, report: ObjectReport): Record<string, string> | undefined {
  if (raw === undefined) return undefined;
  const t = asRecord(raw);
  if (t === undefined) {
    report.invalid(at, 'must be a mapping');
    return undefined;
  }
  const out: Record<string, string> = {};
  for (const key of ['request', 'backendRequest']) {
    if (t[key] === undefined) continue;
    const ms = typeof t[key] === 'string' ? parseGoDuration(t[key]) : null;
    if (ms === null) report.invalid(`${at}.${key}`, `${JSON.stringify(t[key])} is not a duration such as 10s or 1m30s`);
    else if (ms > 0) out[key] = formatDuration(ms); // 0s: no timeout, as in Gateway API
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
