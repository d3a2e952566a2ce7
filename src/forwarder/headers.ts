// Header rewriting between client and upstream: hop-by-hop headers dropped
// (RFC 9110 7.6.1, including the names listed in Connection, but never Host
// or Content-Length), names with `_` dropped, forwarding headers set, and the
// chosen version announced both ways.

import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

/** The header naming the chosen version, to the upstream and back to the client. */
export const VERSION_HEADER = 'x-veer-version';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

// Not passed on to the upstream: hop-by-hop headers, and those veer sets itself
// (a client's copy is replaced, not trusted). One set, so one lookup per header.
const DROPPED_REQUEST_HEADERS = new Set([...HOP_BY_HOP, 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', VERSION_HEADER, 'expect']);

// Lengths of the dropped names: a header whose name has none of them is passed
// on without being lowercased (most are: Host, Accept, User-Agent, ...).
const DROPPED_NAME_LENGTHS = new Uint8Array(32);
for (const name of DROPPED_REQUEST_HEADERS) DROPPED_NAME_LENGTHS[name.length] = 1;

// Either of these alone, the usual Connection values, lists no header to drop.
const PLAIN_CONNECTION_VALUES = new Set(['keep-alive', 'Keep-Alive', 'close', 'Close']);

// Never dropped for being listed in Connection: a client's `Connection: Host` would make undici
// send the upstream's own address as Host, and `Connection: Content-Length` would re-frame the
// body. Such fields are meant for every recipient, so listing them is not honoured (RFC 9110
// 7.6.1). close and keep-alive are options, not header names.
const NEVER_CONNECTION_OPTIONS = new Set(['close', 'keep-alive', 'host', 'content-length']);

/** Names listed in a Connection header that may be dropped, lowercased; null when there are none. */
function connectionTokens(value: string | string[] | undefined): Set<string> | null {
  if (value === undefined || (typeof value === 'string' && PLAIN_CONNECTION_VALUES.has(value))) return null;
  const text = Array.isArray(value) ? value.join(',') : value;
  let tokens: Set<string> | null = null;
  for (const raw of text.split(',')) {
    const token = raw.trim().toLowerCase();
    if (token === '' || NEVER_CONNECTION_OPTIONS.has(token)) continue;
    (tokens ??= new Set()).add(token);
  }
  return tokens;
}

/**
 * Whether a header name holds `_`. Such names are not forwarded, as nginx
 * does by default (underscores_in_headers off): CGI-style backends read
 * `X_Forwarded_For` and `X-Forwarded-For` as one variable, HTTP_X_FORWARDED_FOR,
 * so a client could pass off its own as one veer sets.
 */
function hasUnderscore(name: string): boolean {
  return name.includes('_');
}

/** The client address without the IPv4-mapped IPv6 prefix. */
function clientAddress(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/** What veer was reached over: `https` on the TLS listener (HTTP/1.1 or HTTP/2), else `http`. */
function protoOf(req: IncomingMessage): string {
  return (req.socket as TLSSocket).encrypted === true ? 'https' : 'http';
}

/**
 * Headers for the upstream request, as a flat [name, value, ...] list that
 * keeps the client's order and case. For WebSocket requests the dispatcher
 * adds Connection/Upgrade itself.
 */
export function buildUpstreamHeaders(req: IncomingMessage, versionName: string): string[] {
  if (req.httpVersionMajor === 2) return buildFromHttp2(req, versionName);
  const raw = req.rawHeaders;
  const listed = connectionTokens(req.headers.connection);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (hasUnderscore(name)) continue;
    if (listed === null && (name.length >= 32 || DROPPED_NAME_LENGTHS[name.length] === 0)) {
      out.push(name, raw[i + 1]!);
      continue;
    }
    const lower = name.toLowerCase();
    if (DROPPED_REQUEST_HEADERS.has(lower)) continue;
    if (listed !== null && listed.has(lower)) continue;
    out.push(name, raw[i + 1]!);
  }
  appendForwarding(out, req, versionName);
  return out;
}

/** x-forwarded-*, and the version, after the client's own headers. */
function appendForwarding(out: string[], req: IncomingMessage, versionName: string): void {
  const prior = req.headers['x-forwarded-for'];
  const address = clientAddress(req);
  out.push('x-forwarded-for', prior ? `${prior}, ${address}` : address, 'x-forwarded-proto', protoOf(req), VERSION_HEADER, versionName);
  const host = req.headers.host;
  if (host !== undefined) out.push('x-forwarded-host', host);
}

const COLON = 0x3a;

/**
 * The upstream headers of an HTTP/2 request (names already lowercase, cookies
 * already joined): pseudo-headers become Host (`:authority`, which the data
 * plane copied into `host`) and the request line; connection-specific fields
 * cannot arrive (RFC 9113 8.2.2: the HTTP/2 layer refuses such a stream), and
 * `te: trailers`, the one TE HTTP/2 allows, is passed on: veer relays
 * trailers, and gRPC servers expect it.
 */
function buildFromHttp2(req: IncomingMessage, versionName: string): string[] {
  const headers = req.headers;
  const out: string[] = [];
  for (const name in headers) {
    if (name.charCodeAt(0) === COLON || hasUnderscore(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (DROPPED_REQUEST_HEADERS.has(name) && !(name === 'te' && value === 'trailers')) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  appendForwarding(out, req, versionName);
  return out;
}

/** The header carrying the request's id (dataplane/request-id.ts), to the upstream and back. */
export const REQUEST_ID_HEADER = 'x-request-id';

/**
 * Response headers for the client as a flat list, hop-by-hop removed; the
 * version and the request's id are veer's (an upstream's copy is replaced).
 */
export function buildClientHeaders(headers: IncomingHttpHeaders, versionName: string | null, requestId?: string | string[]): string[] {
  const listed = connectionTokens(headers.connection);
  const out: string[] = [];
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || (listed !== null && listed.has(name)) || name === VERSION_HEADER || name === REQUEST_ID_HEADER) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  if (versionName !== null) out.push(VERSION_HEADER, versionName);
  if (typeof requestId === 'string') out.push(REQUEST_ID_HEADER, requestId);
  return out;
}

/** The upgrade response head (`101 Switching Protocols`) written to a raw socket. */
export function formatUpgradeHead(statusCode: number, headers: IncomingHttpHeaders, versionName: string | null): string {
  let head = `HTTP/1.1 ${statusCode} Switching Protocols\r\n`;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name === VERSION_HEADER) continue;
    for (const v of typeof value === 'string' ? [value] : value) head += `${name}: ${v}\r\n`;
  }
  if (versionName !== null) head += `${VERSION_HEADER}: ${versionName}\r\n`;
  return `${head}\r\n`;
}

/** A response head for a raw socket, from a flat [name, value, ...] header list. */
export function formatResponseHead(statusCode: number, statusText: string, headers: readonly string[]): string {
  let head = `HTTP/1.1 ${statusCode} ${statusText}\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${head}\r\n`;
}
