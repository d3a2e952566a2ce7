// Every error veer reports to a client, an operator or a script, with its
// stable code, in one table. Codes are part of the public contract: each is
// documented in the README's error table, and test/errors.test.ts fails when
// the table and the README disagree.
//
//   kind      where it is reported                 status
//   request   data-plane answers (JSON body)       the HTTP status sent
//   admin     admin API answers (JSON body)        the HTTP status sent
//   config    validate, start, reload (with path)  none: a config issue is not an HTTP answer
//   startup   the process refuses to start         none

/** How an error is reported: answered over HTTP (with a status) or listed as a config issue. */
export type ErrorKind = 'request' | 'admin' | 'config' | 'startup';

interface ErrorSpec {
  readonly kind: ErrorKind;
  readonly status: number | null;
}

const request = <S extends number>(status: S) => ({ kind: 'request', status }) as const;
const admin = <S extends number>(status: S) => ({ kind: 'admin', status }) as const;
const config = { kind: 'config', status: null } as const;

/** Every stable error code: its kind and, for HTTP answers, its status. */
export const ERRORS = {
  // data plane
  no_route: request(404),
  upstream_connect_error: request(502),
  upstream_reset: request(502),
  upstream_protocol_error: request(502),
  upstream_tls_error: request(502),
  upstream_error: request(502),
  upstream_timeout: request(504),
  bad_request: request(400),
  request_timeout: request(408),
  unsupported_transfer_coding: request(501),
  unsupported_upgrade: request(501),
  overloaded: request(503),
  no_healthy_upstream: request(503),
  shutting_down: request(503),
  internal_error: request(500),
  // admin API
  not_found: admin(404),
  unauthorized: admin(401),
  invalid_body: admin(400),
  unknown_service: admin(404),
  unknown_version: admin(400),
  invalid_weights: admin(400),
  invalid_rollout: admin(400),
  no_rollout: admin(404),
  conflict: admin(409),
  rollout_conflict: admin(409),
  no_release: admin(404),
  release_holds_service: admin(409),
  rollback_window_passed: admin(409),
  hook_failed: admin(424),
  store_unavailable: admin(503),
  // config issues: a file that cannot be read (the config, or a file it names)
  config_unreadable: config,
  // config issues: found by the loader (YAML, ${VAR}, schema, process-level rules)
  yaml_syntax: config,
  env_unset: config,
  env_syntax: config,
  schema: config,
  required: config,
  unknown_key: config,
  invalid_listen: config,
  admin_token_required: config,
  invalid_etcd_endpoint: config,
  invalid_etcd_tls: config,
  invalid_tls_certificate: config,
  // config issues: found by compile (per service)
  duplicate_service: config,
  duplicate_route: config,
  duplicate_version: config,
  invalid_host: config,
  invalid_upstream: config,
  invalid_matcher: config,
  invalid_regex: config,
  invalid_rule: config,
  invalid_filter: config,
  invalid_analysis: config,
  invalid_hook: config,
  // config issues: Kubernetes manifests (include:, veer import), per object
  invalid_manifest: config,
  not_mapped: config,
  invalid_release: config,
  // a warning: stored runtime weights no longer fit the config, so the config's apply
  runtime_weights_ignored: config,
  // start-up
  state_corrupt: { kind: 'startup', status: 500 } as const,
} as const satisfies Record<string, ErrorSpec>;

/** One of veer's stable error codes. */
export type ErrorCode = keyof typeof ERRORS;

/** A code that is answered over HTTP. */
export type HttpErrorCode = { [K in ErrorCode]: (typeof ERRORS)[K]['status'] extends number ? K : never }[ErrorCode];

/** A code that names a problem in a config file (config issues also use unknown_version, invalid_weights, invalid_rollout). */
export type ConfigIssueCode =
  | { [K in ErrorCode]: (typeof ERRORS)[K]['kind'] extends 'config' ? K : never }[ErrorCode]
  | 'unknown_service'
  | 'unknown_version'
  | 'invalid_weights'
  | 'invalid_rollout';

/** The HTTP status of every code answered over HTTP. */
export const ERROR_STATUS: Readonly<Record<HttpErrorCode, number>> = Object.freeze(
  Object.fromEntries(Object.entries(ERRORS).flatMap(([code, spec]) => (spec.status === null ? [] : [[code, spec.status]]))) as Record<HttpErrorCode, number>,
);

/** Any error veer raises on purpose: it names one of the codes above. Rooms subclass it for what they add (a path, a record). */
export class CodedError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CodedError';
    this.code = code;
  }
}

/** An error answered over HTTP; `status` is derived from the code in one place. */
export class VeerError extends CodedError<HttpErrorCode> {
  readonly status: number;
  /** Extra fields for the error body (e.g. a 409's `current` state). */
  readonly details: Readonly<Record<string, unknown>> | undefined;
  constructor(code: HttpErrorCode, message: string, options?: { cause?: unknown; details?: Readonly<Record<string, unknown>> }) {
    super(code, message, options);
    this.name = 'VeerError';
    this.status = ERROR_STATUS[code];
    this.details = options?.details;
  }
}

/** The JSON body every error response carries: `{"error":{"code","message"}}`. */
export function formatErrorBody(code: HttpErrorCode, message: string, requestId?: string): string {
  return JSON.stringify({ error: requestId === undefined ? { code, message } : { code, message, requestId } });
}
