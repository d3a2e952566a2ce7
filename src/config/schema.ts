// The config file's JSON schema (TypeBox), covering the whole public contract.
// Shape and defaults only: cross-field checks (unknown versions, regex
// safety, duplicate names) belong to table/compile.

import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { HttpRule, Split, StickyKey } from './rule-schema.ts';

const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$';
const NAME_PATTERN = '^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$';
const HEADER_NAME_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

const Strict = { additionalProperties: false } as const;

/** A duration such as `500ms`, `30s`, `1m`, `1h`. */
export const Duration = Type.String({
  pattern: DURATION_PATTERN,
  description: 'a duration such as 500ms, 30s, 1m or 1h',
});

function durationWithDefault(fallback: string) {
  return Type.String({ pattern: DURATION_PATTERN, default: fallback, description: 'a duration such as 500ms, 30s, 1m or 1h' });
}

/** `host:port`, `[v6]:port` or a bare port. */
function listenAddress(fallback: string) {
  return Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 0, maximum: 65535 })], {
    default: fallback,
    description: 'an address such as 0.0.0.0:8080, [::1]:8080 or a port number',
  });
}

const Name = Type.String({
  pattern: NAME_PATTERN,
  maxLength: 63,
  description: 'a lowercase name of letters, digits, -, _ and . (at most 63 characters)',
});

const UpstreamUrl = Type.String({ minLength: 1, description: 'an http:// or https:// origin' });

const ValueMatcher = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 256 }),
    value: Type.Optional(Type.String()),
    regex: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    present: Type.Optional(Type.Boolean()),
  },
  Strict,
);

const RouteRule = Type.Object(
  {
    match: Type.Object(
      {
        header: Type.Optional(ValueMatcher),
        cookie: Type.Optional(ValueMatcher),
        query: Type.Optional(ValueMatcher),
      },
      { ...Strict, minProperties: 1 },
    ),
    to: Type.String({ minLength: 1 }),
  },
  Strict,
);

/** A step's pause: a duration, or `forever` (the step waits for `veer rollout resume`). */
const StepPause = Type.Union([Duration, Type.Literal('forever')], { description: 'a duration such as 30s or 1m, or forever' });

/** A Prometheus query whose one value must stay within [min, max]; placeholders are checked by compile. */
const MetricCheck = Type.Object(
  {
    name: Name,
    query: Type.String({ minLength: 1, maxLength: 8192 }),
    min: Type.Optional(Type.Number()),
    max: Type.Optional(Type.Number()),
  },
  Strict,
);

/** Where metric checks query: Prometheus's HTTP API, with optional credentials and CA (a PEM file). */
const PrometheusSource = Type.Object(
  {
    address: Type.String({ minLength: 1, description: 'an http:// or https:// URL' }),
    bearerToken: Type.Optional(Type.String({ minLength: 1 })),
    basicAuth: Type.Optional(Type.Object({ username: Type.String({ minLength: 1 }), password: Type.String() }, Strict)),
    ca: Type.Optional(Type.String({ minLength: 1, description: 'a path to a PEM file' })),
  },
  Strict,
);

const Analysis = Type.Object(
  {
    interval: durationWithDefault('10s'),
    minRequests: Type.Integer({ minimum: 0, default: 50 }),
    maxErrorRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    maxP99Ms: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    failureLimit: Type.Integer({ minimum: 1, default: 2 }),
    prometheus: Type.Optional(PrometheusSource),
    metrics: Type.Optional(Type.Array(MetricCheck, { maxItems: 50 })),
  },
  Strict,
);

/** A step's own analysis (as Argo's): fields it leaves out come from the rollout's `analysis`; its metrics add to the rollout's. */
const StepAnalysis = Type.Object(
  {
    interval: Type.Optional(Duration),
    minRequests: Type.Optional(Type.Integer({ minimum: 0 })),
    maxErrorRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    maxP99Ms: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    failureLimit: Type.Optional(Type.Integer({ minimum: 1 })),
    metrics: Type.Optional(Type.Array(MetricCheck, { maxItems: 50 })),
  },
  Strict,
);

const RolloutStep = Type.Object(
  {
    weight: Type.Number({ minimum: 0, maximum: 100 }),
    pause: Type.Optional(StepPause),
    analysis: Type.Optional(StepAnalysis),
  },
  Strict,
);

/** Flagger's webhook types. */
const HookType = Type.Union(
  [Type.Literal('pre-rollout'), Type.Literal('rollout'), Type.Literal('confirm-promotion'), Type.Literal('post-rollout'), Type.Literal('event')],
  { description: 'one of pre-rollout, rollout, confirm-promotion, post-rollout, event' },
);

/** A URL veer calls at a point of a rollout or a release (POST, JSON body), of one of `types`. */
function hookSchema<T extends TSchema>(types: T) {
  return Type.Object(
    {
      type: types,
      url: Type.String({ minLength: 1, description: 'an http:// or https:// URL' }),
      timeout: Type.Optional(Duration),
      headers: Type.Optional(Type.Record(Type.String({ pattern: HEADER_NAME_PATTERN }), Type.String(), { description: 'header name -> value' })),
    },
    Strict,
  );
}

/** A rollout's hook; the URL's scheme is checked by compile. */
const RolloutHook = hookSchema(HookType);

/** The hooks a release calls for each member: before the start, and before each check. */
const ReleaseHook = hookSchema(Type.Union([Type.Literal('pre-rollout'), Type.Literal('rollout')], { description: 'one of pre-rollout, rollout' }));

/** The blue-green preview: requests with this header, cookie or query value reach the new version before the switch (one kind; checked by compile). */
const PreviewRule = Type.Object(
  {
    header: Type.Optional(ValueMatcher),
    cookie: Type.Optional(ValueMatcher),
    query: Type.Optional(ValueMatcher),
  },
  { ...Strict, description: 'one of header, cookie or query, as in routes[].match' },
);

const Rollout = Type.Object(
  {
    strategy: Type.Optional(Type.Union([Type.Literal('canary'), Type.Literal('blueGreen')], { description: 'canary (default) or blueGreen' })),
    canary: Type.String({ minLength: 1 }),
    /** Required by the canary strategy, refused with blueGreen (checked by compile). */
    steps: Type.Optional(Type.Array(RolloutStep, { minItems: 1 })),
    preview: Type.Optional(PreviewRule),
    /** blueGreen: promote on the first passing check instead of waiting for `veer rollout promote`. */
    autoPromote: Type.Optional(Type.Boolean()),
    /** How long after a promotion `abort` still rolls back to the old version (default 1h). */
    rollbackWindow: Type.Optional(Duration),
    analysis: Type.Optional(Analysis),
    hooks: Type.Optional(Type.Array(RolloutHook, { maxItems: 20 })),
  },
  Strict,
);

const Timeouts = Type.Object(
  {
    connect: durationWithDefault('2s'),
    response: durationWithDefault('30s'),
  },
  Strict,
);

/** What a retry may follow: a failure before any answer, or an answer with one of these statuses. */
const RetryOn = Type.Union([Type.Literal('connect'), Type.Literal('reset'), Type.Literal('timeout'), Type.Integer({ minimum: 500, maximum: 599 })], {
  description: 'connect, reset, timeout or a 5xx status',
});

const Resilience = Type.Object(
  {
    retries: Type.Optional(
      Type.Object(
        {
          attempts: Type.Integer({ minimum: 0, maximum: 5, default: 2, description: 'retries after the first try (0 to 5)' }),
          on: Type.Array(RetryOn, { minItems: 1, default: ['connect', 'reset', 502, 503, 504] }),
          budget: Type.Number({ minimum: 0, maximum: 1, default: 0.2 }),
          perTryTimeout: Type.Optional(Duration),
        },
        { ...Strict, default: {} },
      ),
    ),
    failover: Type.Optional(Type.String({ minLength: 1, description: 'a version of the service, or none' })),
    outlier: Type.Optional(
      Type.Object(
        {
          consecutiveErrors: Type.Integer({ minimum: 1, default: 5 }),
          baseEjection: durationWithDefault('30s'),
          maxEjectedPercent: Type.Integer({ minimum: 0, maximum: 100, default: 50 }),
        },
        { ...Strict, default: {} },
      ),
    ),
    maxInFlight: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  Strict,
);

/**
 * Active health checks of every endpoint of an upstream. Ajv applies no
 * defaults inside a union (the long form is one), so every key is optional
 * here and table/upstreams.ts fills in the defaults the README gives.
 */
const HealthCheck = Type.Object(
  {
    path: Type.Optional(Type.String({ pattern: '^/[^#\\s]*$', description: 'an absolute path such as /healthz' })),
    interval: Type.Optional(Duration),
    timeout: Type.Optional(Duration),
    unhealthyAfter: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    healthyAfter: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  },
  Strict,
);

/** How veer connects to https:// upstreams: the CA to trust (default: the system's), a client certificate, the name to verify. */
const UpstreamTls = Type.Object(
  {
    ca: Type.Optional(Type.String({ minLength: 1, description: 'a path to a PEM file' })),
    cert: Type.Optional(Type.String({ minLength: 1, description: 'a path to a PEM file' })),
    key: Type.Optional(Type.String({ minLength: 1, description: 'a path to a PEM file' })),
    servername: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
    insecureSkipVerify: Type.Optional(Type.Boolean()),
  },
  Strict,
);

/** What veer speaks to the upstream: HTTP/1.1, HTTP/2 over TLS (ALPN h2, https:// URLs), or cleartext HTTP/2 with prior knowledge (h2c, http:// URLs). */
const UpstreamProtocol = Type.Union([Type.Literal('http1'), Type.Literal('h2'), Type.Literal('h2c')], {
  description: 'http1 (default), h2 (HTTPS) or h2c (cleartext HTTP/2)',
});

const UpstreamList = Type.Union([UpstreamUrl, Type.Array(UpstreamUrl, { minItems: 1 })], {
  description: 'a URL or a non-empty list of URLs',
});

/**
 * A version's labels (commit, image, anything): names as Prometheus label
 * names take them (they become `label_<name>` of veer_version_info), at most
 * 16, values up to 256 characters.
 */
const VersionLabels = Type.Record(Type.String({ pattern: '^[a-zA-Z_][a-zA-Z0-9_]{0,62}$' }), Type.String({ maxLength: 256 }), {
  maxProperties: 16,
  additionalProperties: false,
  description: 'up to 16 labels; names: letters, digits and _ (not first), as Prometheus label names',
});

const Version = Type.Object(
  {
    name: Name,
    labels: Type.Optional(VersionLabels),
    upstream: Type.Union(
      [
        UpstreamUrl,
        Type.Array(UpstreamUrl, { minItems: 1 }),
        Type.Object({ urls: UpstreamList, health: Type.Optional(HealthCheck), tls: Type.Optional(UpstreamTls), protocol: Type.Optional(UpstreamProtocol) }, Strict),
      ],
      { description: 'a URL, a non-empty list of URLs, or { urls, health, tls, protocol }' },
    ),
  },
  Strict,
);

const Service = Type.Object(
  {
    name: Name,
    match: Type.Object(
      {
        hosts: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { minItems: 1 })),
        pathPrefix: Type.String({ pattern: '^/[^?#]*$', default: '/' }),
      },
      { ...Strict, default: {} },
    ),
    versions: Type.Array(Version, { minItems: 1 }),
    routes: Type.Array(RouteRule, { default: [] }),
    rules: Type.Optional(Type.Array(HttpRule, { maxItems: 1024 })),
    split: Type.Optional(Split),
    rollout: Type.Optional(Rollout),
    timeouts: Type.Object(Timeouts.properties, { ...Strict, default: {} }),
    resilience: Type.Optional(Resilience),
    exposeVersionHeader: Type.Optional(Type.Boolean()),
  },
  Strict,
);

/** A PEM file; a relative path is read from the config file's directory, like `state.path`. */
const PemFile = Type.String({ minLength: 1, description: 'a path to a PEM file' });

const EtcdTls = Type.Object(
  {
    ca: Type.Optional(PemFile),
    cert: Type.Optional(PemFile),
    key: Type.Optional(PemFile),
  },
  Strict,
);

const EtcdAuth = Type.Object(
  {
    username: Type.String({ minLength: 1 }),
    password: Type.String({ minLength: 1 }),
  },
  Strict,
);

const EtcdStore = Type.Object(
  {
    endpoints: Type.Array(
      Type.String({ pattern: '^https?://[^/\\s]+/?$', description: 'an http:// or https:// URL such as https://etcd-0:2379' }),
      { minItems: 1 },
    ),
    prefix: Type.String({ minLength: 1, default: '/veer/' }),
    tls: Type.Optional(EtcdTls),
    auth: Type.Optional(EtcdAuth),
  },
  Strict,
);

/** Several services whose canaries move as one, with one cohort (see compile-release.ts). */
const Release = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', description: 'letters, digits, ., _ and -' }),
    services: Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), { minProperties: 1, maxProperties: 50, description: 'member service -> its canary version' }),
    seed: Type.Optional(Type.String({ minLength: 1 })),
    steps: Type.Array(RolloutStep, { minItems: 1 }),
    /** How long after a promotion `abort` still rolls every member back (default 1h). */
    rollbackWindow: Type.Optional(Duration),
    analysis: Type.Optional(Analysis),
    hooks: Type.Optional(Type.Array(ReleaseHook, { maxItems: 20 })),
  },
  Strict,
);

/** The whole config file. Defaults are filled in by the validator. */
export const ConfigSchema = Type.Object(
  {
    listen: listenAddress('0.0.0.0:8080'),
    admin: Type.Object(
      {
        listen: listenAddress('127.0.0.1:9901'),
        token: Type.Optional(Type.String()),
      },
      { ...Strict, default: {} },
    ),
    workers: Type.Union([Type.Integer({ minimum: 1, maximum: 256 }), Type.Literal('auto')], {
      default: 1,
      description: 'a whole number from 1 to 256, or "auto"',
    }),
    state: Type.Object(
      {
        store: Type.Union([Type.Literal('file'), Type.Literal('etcd')], {
          default: 'file',
          description: '"file" or "etcd"',
        }),
        path: Type.String({ minLength: 1, default: 'var/veer-state.json' }),
        etcd: Type.Optional(EtcdStore),
      },
      { ...Strict, default: {} },
    ),
    log: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info', description: 'one of fatal, error, warn, info, debug, trace, silent' },
        ),
        access: Type.Boolean({ default: false }),
      },
      { ...Strict, default: {} },
    ),
    exposeVersionHeader: Type.Boolean({ default: true }),
    drainTimeout: durationWithDefault('25s'),
    h2c: Type.Boolean({ default: false, description: 'the plain listener also takes HTTP/2 with prior knowledge (h2c)' }),
    tls: Type.Optional(
      Type.Object(
        {
          listen: listenAddress('0.0.0.0:8443'),
          certificates: Type.Array(
            Type.Union([Type.Object({ cert: PemFile, key: PemFile }, Strict), Type.Object({ dir: Type.String({ minLength: 1, description: 'a folder of mounted TLS Secrets' }) }, Strict)], {
              description: '{ cert, key } or { dir } (a folder of mounted Kubernetes TLS Secrets)',
            }),
            { minItems: 1 },
          ),
          defaultCertificate: Type.Optional(PemFile),
          http2: Type.Boolean({ default: true }),
          redirectHttp: Type.Boolean({ default: false }),
        },
        Strict,
      ),
    ),
    tracing: Type.Optional(
      Type.Object(
        {
          sampleRatio: Type.Number({ minimum: 0, maximum: 1, default: 1, description: 'the share of traces started at veer that are sampled, 0 to 1' }),
          serviceName: Type.String({ minLength: 1, default: 'veer' }),
          otlp: Type.Optional(
            Type.Object(
              {
                endpoint: Type.String({ pattern: '^https?://[^\\s]+$', description: "the collector's OTLP/HTTP traces URL, such as http://otel-collector:4318/v1/traces" }),
                headers: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9-]+$' }), Type.String(), { additionalProperties: false })),
                timeout: durationWithDefault('5s'),
              },
              Strict,
            ),
          ),
        },
        Strict,
      ),
    ),
    resolver: Type.Object(
      {
        servers: Type.Optional(
          Type.Array(Type.String({ pattern: '^(\\[[0-9a-fA-F:.]+\\]|[0-9.]+)(:[0-9]{1,5})?$', description: 'a DNS server address such as 10.96.0.10 or 127.0.0.1:5353' }), {
            minItems: 1,
          }),
        ),
        refresh: durationWithDefault('5s'),
      },
      { ...Strict, default: {} },
    ),
    /** Files or folders of Kubernetes manifests (HTTPRoute, Ingress) whose objects become services; relative to the config file. */
    include: Type.Optional(Type.Array(Type.String({ minLength: 1, description: 'a file or folder of Kubernetes manifests' }), { minItems: 1 })),
    /** How included objects become upstreams, and which are veer's. */
    kubernetes: Type.Optional(
      Type.Object(
        {
          backendUrl: Type.Optional(Type.String({ pattern: '^https?://', description: 'a URL template such as http://{name}.{namespace}.svc.cluster.local:{port}' })),
          ingressClasses: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
          gateways: Type.Optional(Type.Array(Type.String({ pattern: '^[a-z0-9-]+/[a-z0-9.-]+$', description: 'a Gateway as namespace/name' }), { minItems: 1 })),
        },
        Strict,
      ),
    ),
    services: Type.Array(Service, { description: 'the services (at least one, unless include: brings some)' }),
    releases: Type.Optional(Type.Array(Release, { maxItems: 100 })),
  },
  Strict,
);

/** The validated config, defaults filled in. */
export type Config = Static<typeof ConfigSchema>;
/** One entry of `services`. */
export type ServiceConfig = Static<typeof Service>;
/** A header, cookie or query matcher spec. */
export type ValueMatcherConfig = Static<typeof ValueMatcher>;
/** A sticky key spec. */
export type StickyKeyConfig = Static<typeof StickyKey>;
/** `state.etcd`: endpoints, prefix, TLS files and etcd user. */
export type EtcdStoreConfig = Static<typeof EtcdStore>;
/** The `rollout` section of a service. */
export type RolloutConfig = Static<typeof Rollout>;
/** One entry of `releases`. */
export type ReleaseConfig = Static<typeof Release>;
/** One entry of a rollout's `hooks`. */
export type RolloutHookConfig = Static<typeof RolloutHook>;
/** One entry of a rollout's (or a step's) `analysis.metrics`. */
export type MetricCheckConfig = Static<typeof MetricCheck>;
/** `analysis.prometheus`: where metric checks query. */
export type PrometheusConfig = Static<typeof PrometheusSource>;

/** Re-exported so callers can build sub-schemas without importing TypeBox. */
export type { TSchema };
