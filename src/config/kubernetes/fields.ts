// Small readers for untrusted manifest fields: each records a finding
// instead of throwing, so one pass reports every problem of an object.

import type { Finding, Manifest } from './types.ts';

/** Collects the findings of one object. */
export class ObjectReport {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly findings: Finding[] = [];

  constructor(kind: string, namespace: string, name: string) {
    this.kind = kind;
    this.namespace = namespace;
    this.name = name;
  }

  get object(): string {
    return `${this.namespace}/${this.name}`;
  }

  get key(): string {
    return `${this.kind} ${this.object}`;
  }

  invalid(field: string, reason: string): void {
    this.findings.push({ code: 'invalid_manifest', kind: this.kind, object: this.object, field, reason });
  }

  notMapped(field: string, reason: string): void {
    this.findings.push({ code: 'not_mapped', kind: this.kind, object: this.object, field, reason });
  }

  get hasErrors(): boolean {
    return this.findings.some((f) => f.code === 'invalid_manifest');
  }
}

/** A plain object, or undefined. */
export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** An array, or undefined. */
export function asArray(value: unknown): unknown[] | undefined {
  return Array.isArray(value) ? value : undefined;
}

/** A non-empty string, or undefined. */
export function asString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** The object's identity, or a report that says why it has none. */
export function readIdentity(manifest: Manifest, kind: string): ObjectReport {
  const metadata = asRecord(manifest.metadata);
  const name = asString(metadata?.name);
  const namespace = asString(metadata?.namespace) ?? 'default';
  const report = new ObjectReport(kind, namespace, name ?? '(unnamed)');
  if (metadata === undefined) report.invalid('metadata', 'is required');
  else if (name === undefined) report.invalid('metadata.name', 'is required');
  else if (!DNS_SUBDOMAIN.test(name) || name.length > 253) report.invalid('metadata.name', `"${name}" is not a Kubernetes object name`);
  if (!DNS_LABEL.test(namespace) || namespace.length > 63) report.invalid('metadata.namespace', `"${namespace}" is not a namespace name`);
  return report;
}

/** Checks apiVersion against the accepted ones. */
export function checkApiVersion(manifest: Manifest, accepted: readonly string[], report: ObjectReport): void {
  if (!accepted.includes(String(manifest.apiVersion))) {
    report.invalid('apiVersion', `${manifest.apiVersion === undefined ? 'is missing' : `"${String(manifest.apiVersion)}" is not supported`}; expected ${accepted.join(' or ')}`);
  }
}

/** Gateway API / Kubernetes durations (`1h30m`, `500ms`, `10s`) in milliseconds; null when not one. */
export function parseGoDuration(text: string): number | null {
  const re = /([0-9]+(?:\.[0-9]+)?)(h|ms|m|s)/y;
  let total = 0;
  let at = 0;
  if (text === '') return null;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (m === null) return null;
    total += Number(m[1]) * { h: 3_600_000, m: 60_000, s: 1000, ms: 1 }[m[2] as 'h' | 'm' | 's' | 'ms'];
    at = re.lastIndex;
  }
  return total;
}

/** Milliseconds as one of veer's durations (`90s`, `1500ms`, `2m`). */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${Math.round(ms)}ms`;
}

/** Fills `{name}`, `{namespace}` and `{port}` of kubernetes.backendUrl. */
export function backendUrl(template: string, name: string, namespace: string, port: number): string {
  return template.replaceAll('{name}', name).replaceAll('{namespace}', namespace).replaceAll('{port}', String(port));
}

/**
 * Version names for backend Services: the Service's name, or `name-port`
 * (`namespace-name-port`) when one object reaches it on several ports (namespaces).
 */
export class VersionNames {
  readonly #byKey = new Map<string, string>();
  readonly #taken = new Set<string>();
  readonly versions: { name: string; upstream: string }[] = [];

  /** The version for a backend, added on first use. */
  nameFor(service: string, namespace: string, port: number, template: string): string {
    const key = `${namespace}/${service}:${port}`;
    const known = this.#byKey.get(key);
    if (known !== undefined) return known;
    let name = service;
    if (this.#taken.has(name)) name = `${service}-${port}`;
    if (this.#taken.has(name)) name = `${namespace}-${service}-${port}`;
    this.#byKey.set(key, name);
    this.#taken.add(name);
    this.versions.push({ name, upstream: backendUrl(template, service, namespace, port) });
    return name;
  }
}
