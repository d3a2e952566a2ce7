// gRPC as an ingress sees it: a request with `content-type: application/grpc`
// over HTTP/2 whose outcome is the `grpc-status` trailer (or header, in a
// trailers-only answer), not the HTTP status, which is 200 either way. veer
// relays trailers, reads the status for metrics and analysis, holds the
// request to its `grpc-timeout`, and answers its own errors (no route, no
// upstream) as gRPC statuses rather than JSON bodies a gRPC client cannot read.

import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';

/** The gRPC status codes veer sends or reasons about (grpc/doc/statuscodes.md). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** No gRPC status: not a gRPC exchange, or none arrived. */
export const NO_GRPC_STATUS = -1;

/** Whether a request is gRPC (application/grpc, +proto, +json, and gRPC-Web's). */
export function isGrpcRequest(req: IncomingMessage): boolean {
  const type = req.headers['content-type'];
  return type !== undefined && type.startsWith('application/grpc');
}

/**
 * The statuses that count as the version's errors in analysis: UNKNOWN,
 * DEADLINE_EXCEEDED, INTERNAL and UNAVAILABLE are the server failing; the
 * others (NOT_FOUND, INVALID_ARGUMENT, ...) are answers about the request.
 */
export function isGrpcServerError(status: number): boolean {
  return status === 2 || status === 4 || status === 13 || status === 14;
}

/** The `grpc-status` in `headers` (a trailers-only answer, or the trailers), or NO_GRPC_STATUS. */
export function readGrpcStatus(headers: IncomingHttpHeaders | null): number {
  const value = headers?.['grpc-status'];
  if (typeof value !== 'string' || value.length === 0 || value.length > 2) return NO_GRPC_STATUS;
  const status = Number(value);
  return Number.isInteger(status) && status >= 0 ? status : NO_GRPC_STATUS;
}

/**
 * The status for an HTTP status veer would have answered, after gRPC's own
 * "HTTP to gRPC status code mapping", with veer's two timeouts (408, 504) as
 * DEADLINE_EXCEEDED.
 */
export function grpcStatusForHttp(status: number): number {
  switch (status) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
    case 405:
      return GrpcStatus.UNIMPLEMENTED;
    case 408:
    case 504:
      return GrpcStatus.DEADLINE_EXCEEDED;
    case 413:
    case 431:
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case 429:
    case 502:
    case 503:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

/** `grpc-message` is percent-encoded: every byte outside printable ASCII, and `%` itself. */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * Answers a gRPC request with veer's own error: HTTP 200 and a trailers-only
 * response (HEADERS with END_STREAM) carrying `grpc-status` and
 * `grpc-message`, which every gRPC client reads as the call's outcome.
 * `veer-error` keeps veer's code for whoever debugs with curl.
 */
export function sendGrpcError(res: ServerResponse, grpcStatus: number, code: string, message: string): void {
  respondTrailersOnly(res, 200, {
    'content-type': 'application/grpc',
    'grpc-status': String(grpcStatus),
    'grpc-message': encodeGrpcMessage(message),
    'veer-error': code,
  });
}

/**
 * A trailers-only answer: one HEADERS frame that ends the stream. gRPC
 * clients read `grpc-status` from the head only when that frame ends the
 * stream; Node's compatibility response would send the head, then an empty
 * DATA frame to end it, which grpc-js reads as a call without a status.
 * Headers already set on `res` (x-request-id, x-veer-version) go along.
 */
export function respondTrailersOnly(res: ServerResponse, status: number, headers: Record<string, string | string[]>): void {
  const stream = (res as unknown as Http2ServerResponse).stream;
  if (stream === undefined || stream.headersSent || stream.destroyed) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  const all: OutgoingHttpHeaders = { ...res.getHeaders(), ...headers, ':status': status };
  stream.respond(all, { endStream: true });
}

/** The most a deadline may be (gRPC's own cap on grpc-timeout values is 8 digits of hours). */
const MAX_DEADLINE_MS = 2 ** 31 - 1;

/**
 * A `grpc-timeout` (1 to 8 digits and a unit: H, M, S, m, u, n) in
 * milliseconds, at least 1; -1 when absent or malformed (the call then has no
 * deadline of its own, as gRPC servers treat it).
 */
export function parseGrpcTimeout(value: string | string[] | undefined): number {
  if (typeof value !== 'string' || value.length < 2 || value.length > 9) return -1;
  const digits = value.slice(0, -1);
  if (!/^\d+$/.test(digits)) return -1;
  const amount = Number(digits);
  let ms: number;
  switch (value.charCodeAt(value.length - 1)) {
    case 0x48: // H
      ms = amount * 3_600_000;
      break;
    case 0x4d: // M
      ms = amount * 60_000;
      break;
    case 0x53: // S
      ms = amount * 1000;
      break;
    case 0x6d: // m
      ms = amount;
      break;
    case 0x75: // u
      ms = amount / 1000;
      break;
    case 0x6e: // n
      ms = amount / 1_000_000;
      break;
    default:
      return -1;
  }
  return Math.min(MAX_DEADLINE_MS, Math.max(1, Math.ceil(ms)));
}

/** A flat [name, value, ...] header list as an object (repeated names as arrays). */
export function headersFromList(list: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    const value = list[i + 1]!;
    const prior = out[name];
    out[name] = prior === undefined ? value : Array.isArray(prior) ? [...prior, value] : [prior, value];
  }
  return out;
}
