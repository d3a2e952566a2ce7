// The shapes shared by the Kubernetes translators: a manifest as read from
// YAML, where it came from, and what could not be carried over.

/** A Kubernetes object as parsed from YAML (nothing checked yet). */
export interface Manifest {
  readonly apiVersion?: unknown;
  readonly kind?: unknown;
  readonly metadata?: unknown;
  readonly spec?: unknown;
  readonly [field: string]: unknown;
}

/** A manifest with the file (and document index) it was read from. */
export interface SourcedManifest {
  readonly manifest: Manifest;
  readonly file: string;
  readonly index: number;
}

/**
 * Why (part of) an object is not served: `invalid_manifest` (the object is
 * wrong: a missing field, a wrong apiVersion, a bad annotation value) or
 * `not_mapped` (valid, but veer cannot honour it completely).
 */
export interface Finding {
  readonly code: 'invalid_manifest' | 'not_mapped';
  /** The object's kind, `HTTPRoute`. */
  readonly kind: string;
  /** `namespace/name`. */
  readonly object: string;
  /** The field inside the object: `spec.rules[0].filters[1]`. */
  readonly field: string;
  readonly reason: string;
}

/** `kubernetes:` in the config: how objects become upstreams, and which ones are veer's. */
export interface KubernetesOptions {
  /** `{name}`, `{namespace}` and `{port}` are filled in from a backend reference. */
  readonly backendUrl: string;
  /** Ingress classes veer serves (an Ingress without one is served too). */
  readonly ingressClasses: readonly string[];
  /** `namespace/name` of the Gateways veer stands for; unset: every HTTPRoute's parentRefs are accepted. */
  readonly gateways?: readonly string[];
}

/** The defaults of `kubernetes:`. */
export const DEFAULT_KUBERNETES: KubernetesOptions = Object.freeze({
  backendUrl: 'http://{name}.{namespace}.svc.cluster.local:{port}',
  ingressClasses: Object.freeze(['veer', 'nginx']),
});

/** A service of the veer config, as plain data (the schema checks it later). */
export type ServiceDoc = Record<string, unknown>;

/** What one object became: services (possibly none), and what was left out of it. */
export interface ObjectResult {
  /** `Kind namespace/name`: the key of the object across reads. */
  readonly key: string;
  readonly kind: string;
  readonly object: string;
  readonly services: ServiceDoc[];
  readonly findings: Finding[];
  /** A `rollout:` section to attach to a service of another object (Argo Rollout, Flagger Canary). */
  readonly rollout?: { readonly service: string; readonly rollout: Record<string, unknown> };
}
