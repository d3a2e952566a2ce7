// The request target made safe to route on. veer routes on the path and
// forwards it, so both must be the path the upstream will act on:
// `/%69nternal`, `//internal` and `/x/../internal` all name /internal, and
// `/internal/../public` names /public. Origin-form paths are normalised as
// nginx does; an absolute-form target (`http://host/path`, RFC 9112 3.2.2)
// becomes origin-form with its authority as the Host.
//
//   /x/%2e%2E//%69nternal%2fa?q=..    target as received
//   /x/..//internal%2Fa               1. decode unreserved, uppercase the rest
//   /internal%2Fa                     2. merge slashes, resolve . and ..
//   /internal%2Fa?q=..                3. the query, unchanged
//
// `%2F` and `%5C` stay encoded and are ordinary characters, never separators:
// decoding them would make a path that veer routes as one segment into
// several for the upstream.

import type { IncomingMessage } from 'node:http';
import { ERROR_STATUS, type HttpErrorCode } from '../errors.ts';

/** Why a request is refused before routing: the answer's status, code and message. */
export interface RequestRefusal {
  readonly status: number;
  readonly code: HttpErrorCode;
  readonly message: string;
}

/** A refusal, built once at load so refusing allocates nothing. */
export function refusal(code: HttpErrorCode, message: string): RequestRefusal {
  return Object.freeze({ status: ERROR_STATUS[code], code, message });
}

const ABOVE_ROOT = refusal('bad_request', 'the request path climbs above the root');
const BAD_PERCENT = refusal('bad_request', 'the request path has a malformed percent-encoding');
const BAD_SCHEME = refusal('bad_request', 'the request target must be a path or an http or https URL (RFC 9112 3.2)');
const BAD_AUTHORITY = refusal('bad_request', "the request target's authority is not a host (RFC 9112 3.2.2)");

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const QUESTION = 0x3f;

/**
 * HOT PATH. A Host value veer can route on: not empty, and none of the
 * characters a host and port cannot hold. Repeated Host lines arrive joined
 * with ", " (the server's joinDuplicateHeaders), so they fail here too.
 */
export function isValidHost(host: string): boolean {
  return host.length !== 0 && !INVALID_HOST_CHAR.test(host);
}
const INVALID_HOST_CHAR = /[\s,/\\@?#"<>{}|^`]/;

/**
 * HOT PATH. The origin-form target to route on and forward: `target` itself
 * when its path has no `%`, `//` or `/.` (one scan, no allocation), else the
 * normalised path and the query unchanged, or a refusal when the path climbs
 * above the root or has a broken percent-encoding.
 */
export function normalizeOriginForm(target: string): string | RequestRefusal {
  const length = target.length;
  for (let i = 0; i < length; i++) {
    const c = target.charCodeAt(i);
    // Letters, most of a path, come after `?` in ASCII (so do `_` and `~`): one compare passes them.
    if (c > QUESTION) continue;
    if (c === PERCENT) return rewriteOriginForm(target);
    if (c === SLASH) {
      const next = target.charCodeAt(i + 1);
      if (next === SLASH || next === DOT) return rewriteOriginForm(target);
    } else if (c === QUESTION) {
      return target;
    }
  }
  return target;
}

/** Normalises the path of an origin-form target that needs it (RFC 3986 6.2.2 and 5.2.4, as nginx does). */
function rewriteOriginForm(target: string): string | RequestRefusal {
  const queryAt = target.indexOf('?');
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  const decoded = decodeUnreserved(path);
  if (decoded === null) return BAD_PERCENT;
  const resolved = resolveSegments(decoded);
  if (resolved === null) return ABOVE_ROOT;
  return queryAt === -1 ? resolved : resolved + target.slice(queryAt);
}

/**
 * Decodes percent-encoded unreserved characters (ALPHA DIGIT - . _ ~, which
 * mean the same encoded or not) and uppercases the hex of every other
 * percent-encoding; null when a `%` is not followed by two hex digits.
 */
function decodeUnreserved(path: string): string | null {
  let out = '';
  let copied = 0;
  for (let at = path.indexOf('%'); at !== -1; at = path.indexOf('%', at)) {
    const high = hexValue(path.charCodeAt(at + 1));
    const low = hexValue(path.charCodeAt(at + 2));
    if (high === -1 || low === -1) return null;
    const byte = high * 16 + low;
    out += path.slice(copied, at) + (isUnreserved(byte) ? String.fromCharCode(byte) : path.slice(at, at + 3).toUpperCase());
    at += 3;
    copied = at;
  }
  return out + path.slice(copied);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

function isUnreserved(byte: number): boolean {
  const lower = byte | 0x20;
  return (lower >= 0x61 && lower <= 0x7a) || (byte >= 0x30 && byte <= 0x39) || byte === 0x2d || byte === DOT || byte === 0x5f || byte === 0x7e;
}

/**
 * Merges repeated slashes and resolves `.` and `..` segments; null when a
 * `..` climbs above the root (nginx answers 400 there too, where RFC 3986
 * would silently drop it). A path that ended on a directory keeps its
 * trailing slash: `/a/b/..` is `/a/`.
 */
function resolveSegments(path: string): string | null {
  const segments = path.split('/');
  const kept: string[] = [];
  // segments[0] is the empty string before the leading slash.
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (kept.length === 0) return null;
      kept.pop();
      continue;
    }
    kept.push(segment);
  }
  const last = segments[segments.length - 1];
  const endsWithSlash = last === '' || last === '.' || last === '..';
  return kept.length === 0 ? '/' : `/${kept.join('/')}${endsWithSlash ? '/' : ''}`;
}

/**
 * Turns an absolute-form request (`GET http://shop.example.com/x`) into the
 * origin-form one it stands for, in place: RFC 9112 3.2.2 makes the target's
 * authority the host and the Host header ignored, so veer routes on the
 * authority and the upstream gets `/x` with `Host: shop.example.com`. Null
 * when done; a refusal when the scheme is not http or https, the authority
 * is not a host, or the path cannot be normalised. Any other target that
 * does not start with `/` (`OPTIONS *`) is left as it is.
 */
export function takeAbsoluteForm(req: IncomingMessage): RequestRefusal | null {
  const target = req.url ?? '';
  if (target === '*') return null;
  const schemeEnd = target.indexOf('://');
  const scheme = schemeEnd === -1 ? '' : target.slice(0, schemeEnd).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return BAD_SCHEME;
  const authorityAt = schemeEnd + 3;
  let pathAt = authorityAt;
  while (pathAt < target.length && !AUTHORITY_END.has(target.charCodeAt(pathAt))) pathAt++;
  const authority = target.slice(authorityAt, pathAt);
  if (!isValidHost(authority)) return BAD_AUTHORITY;
  const rest = target.slice(pathAt);
  const path = normalizeOriginForm(rest.charCodeAt(0) === SLASH ? rest : `/${rest}`);
  if (typeof path !== 'string') return path;
  req.url = path;
  replaceHost(req, authority);
  return null;
}
// Where an authority ends (RFC 3986 3.2): the path, the query or a fragment.
const AUTHORITY_END = new Set([SLASH, QUESTION, 0x23]);

/** Makes `host` the request's only Host, for routing (headers) and for the upstream (rawHeaders). */
function replaceHost(req: IncomingMessage, host: string): void {
  const raw = req.rawHeaders;
  const rewritten = ['Host', host];
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() !== 'host') rewritten.push(raw[i]!, raw[i + 1]!);
  }
  req.rawHeaders = rewritten;
  req.headers.host = host;
}
