// Metric names, histogram buckets and the bounded label vocabularies. Every
// label value veer exports comes from here or from validated config names
// (service, version); none is ever read from a request.

/** The metric names of the contract (README "Metrics"). */
export const METRIC_NAMES = {
  requests: 'veer_requests_total',
  duration: 'veer_request_duration_seconds',
  upstreamErrors: 'veer_upstream_errors_total',
  inFlight: 'veer_requests_in_flight',
  weight: 'veer_version_weight',
  rolloutInfo: 'veer_rollout_info',
  releaseInfo: 'veer_release_info',
  configReloads: 'veer_config_reloads_total',
  retries: 'veer_upstream_retries_total',
  failovers: 'veer_failovers_total',
  grpcResponses: 'veer_grpc_responses_total',
  traceSpansDropped: 'veer_trace_spans_dropped_total',
  versionInfo: 'veer_version_info',
  endpointUp: 'veer_endpoint_up',
  mirrorRequests: 'veer_mirror_requests_total',
  certificateExpiry: 'veer_tls_certificate_expiry_seconds',
  certificateFailures: 'veer_tls_certificate_failures_total',
} as const;

/**
 * Upper bounds (seconds) of veer_request_duration_seconds, 1 ms to 10 s: an
 * ingress mostly sees milliseconds, and 10 s is past every sane p99.
 */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

/** The `method` label values; anything else is folded to OTHER. */
export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'OTHER'] as const;

/** Index into METHODS of the OTHER bucket. */
export const OTHER_METHOD = METHODS.length - 1;

/** The `kind` label values of veer_upstream_errors_total (the forwarder's UpstreamFailureKind). */
export const FAILURE_KINDS = ['connect', 'timeout', 'reset', 'protocol', 'other', 'overload'] as const;

/** gRPC's status codes, 0 (OK) to 16 (UNAUTHENTICATED): the `grpc_status` label values; any other is counted as 2 (UNKNOWN), as gRPC clients read it. */
export const GRPC_STATUS_COUNT = 17;

/** Folds a grpc-status to a label index (0-16). */
export function foldGrpcStatus(status: number): number {
  return status >= 0 && status < GRPC_STATUS_COUNT ? status : 2;
}

/** The `result` label values of veer_config_reloads_total. */
export const RELOAD_RESULTS = ['success', 'failure'] as const;

/** Folds an HTTP method to its index in METHODS without allocating. */
export function foldMethod(method: string | undefined): number {
  switch (method) {
    case 'GET':
      return 0;
    case 'HEAD':
      return 1;
    case 'POST':
      return 2;
    case 'PUT':
      return 3;
    case 'DELETE':
      return 4;
    case 'PATCH':
      return 5;
    case 'OPTIONS':
      return 6;
    default:
      return OTHER_METHOD;
  }
}

/** Folds a failure kind to its index in FAILURE_KINDS (unknown kinds count as `other`). */
export function foldFailureKind(kind: string): number {
  switch (kind) {
    case 'connect':
      return 0;
    case 'timeout':
      return 1;
    case 'reset':
      return 2;
    case 'protocol':
      return 3;
    case 'overload':
      return 5;
    default:
      return 4;
  }
}

/**
 * Keeps the `code` label bounded: a status outside 100-599 (which undici
 * would not hand over anyway) is reported as 0.
 */
export function foldStatus(status: number): number {
  return status >= 100 && status <= 599 ? status | 0 : 0;
}

/** Index of the first bucket whose upper bound holds `seconds`; DURATION_BUCKETS.length means +Inf. */
export function bucketIndexOf(seconds: number, bounds: readonly number[] = DURATION_BUCKETS): number {
  let i = 0;
  while (i < bounds.length && seconds > bounds[i]!) i++;
  return i;
}
