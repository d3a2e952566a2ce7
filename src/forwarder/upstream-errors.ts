// Maps what went wrong talking to an upstream onto a stable error code (and
// so an HTTP status) and a bounded metric kind.

import { errors } from './undici-core.ts';
import type { HttpErrorCode } from '../errors.ts';

/** Failure kinds, used as the `kind` label of veer_upstream_errors_total. */
export type UpstreamFailureKind = 'connect' | 'timeout' | 'reset' | 'protocol' | 'other' | 'overload';

/** A classified upstream failure. */
export interface UpstreamFailure {
  readonly code: HttpErrorCode;
  readonly kind: UpstreamFailureKind;
  readonly message: string;
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'ECONNABORTED']);
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|CERT_|EPROTO$)/;
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/** Classifies an error raised by the upstream dispatcher. */
export function classifyUpstreamError(err: unknown): UpstreamFailure {
  const code = (err as { code?: string } | null)?.code ?? '';
  if (CONNECT_CODES.has(code)) return { code: 'upstream_connect_error', kind: 'connect', message: `could not connect to the upstream (${code})` };
  // Certificate verification and handshake failures (OpenSSL's codes): the connection was never usable.
  if (TLS_CODE.test(code)) return { code: 'upstream_tls_error', kind: 'connect', message: `TLS to the upstream failed (${code})` };
  if (TIMEOUT_CODES.has(code)) {
    const what = code === 'UND_ERR_CONNECT_TIMEOUT' ? 'connecting' : code === 'UND_ERR_BODY_TIMEOUT' ? 'the response body' : 'the response';
    return { code: 'upstream_timeout', kind: 'timeout', message: `the upstream timed out (${what})` };
  }
  // undici drops the connection on a 1xx it did not ask for (veer never sends Expect, so any 100
  // Continue is one): an answer veer cannot read, not a reset, and so never retried.
  if (code === 'UND_ERR_SOCKET' && (err as Error).message === 'bad response') {
    return { code: 'upstream_protocol_error', kind: 'protocol', message: 'the upstream sent an interim 1xx response veer did not ask for' };
  }
  if (RESET_CODES.has(code)) return { code: 'upstream_reset', kind: 'reset', message: 'the upstream closed the connection' };
  // undici's HTTPParserError carries no code (it looks the llhttp error number up in a
  // name -> number table, so `code` is undefined): recognise it by class as well.
  if (code.startsWith('HPE_') || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_INFO' || err instanceof errors.HTTPParserError) {
    return { code: 'upstream_protocol_error', kind: 'protocol', message: 'the upstream sent an invalid HTTP response' };
  }
  return { code: 'upstream_error', kind: 'other', message: 'the upstream request failed' };
}
