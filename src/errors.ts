// Every error veer reports to a client, an operator or a script, with its
// stable code and HTTP status. Codes are part of the public contract: they
// are documented in the README and checked by test/errors.test.ts.

/** Stable error codes, each mapped to the HTTP status it is answered with. */
export const ERROR_STATUS = {
  // data plane
  no_route: 404,
  upstream_connect_error: 502,
  upstream_reset: 502,
  upstream_protocol_error: 502,
  upstream_error: 502,
  upstream_timeout: 504,
  bad_request: 400,
  shutting_down: 503,
  internal_error: 500,
  // config (reported by `veer validate`, at start and on reload)
  config_invalid: 400,
  config_unreadable: 400,
  // admin API
  not_found: 404,
  unauthorized: 401,
  invalid_body: 400,
  unknown_service: 404,
  unknown_version: 400,
  invalid_weights: 400,
  invalid_rollout: 400,
  no_rollout: 404,
  conflict: 409,
  rollout_conflict: 409,
  store_unavailable: 503,
  state_corrupt: 500,
} as const satisfies Record<string, number>;

/** One of veer's stable error codes. */
export type ErrorCode = keyof typeof ERROR_STATUS;

/** An error with a stable code; `status` is derived from the code in one place. */
export class VeerError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra fields for the error body (e.g. a 409's `current` state). */
  readonly details: Readonly<Record<string, unknown>> | undefined;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Readonly<Record<string, unknown>> }) {
    super(message, options);
    this.name = 'VeerError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.details = options?.details;
  }
}

/** The JSON body every error response carries: `{"error":{"code","message"}}`. */
export function formatErrorBody(code: ErrorCode, message: string): string {
  return JSON.stringify({ error: { code, message } });
}
