// What a `rules:` entry's filters do to an exchange (Gateway API's
// HTTPRouteFilter): header edits both ways, the upstream path and Host,
// redirects answered here, and mirrored copies. Only requests whose version
// carries filters come here; every other request pays one null check.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CompiledFilters, CompiledRedirect, CompiledVersion, HeaderEdits, PathModifier } from '../table/index.ts';
import type { UpstreamRegistry } from './upstream-registry.ts';

/** The outcome of one mirrored copy, as veer_mirror_requests_total counts it. */
export type MirrorResult = 'sent' | 'failed' | 'dropped' | 'skipped';

/** Mirrored copies in flight per process; beyond this a copy is dropped, never queued. */
export const MAX_MIRRORS_IN_FLIGHT = 64;
/** Longest request body a copy carries; a larger (or unsized) body is not mirrored. */
export const MAX_MIRROR_BODY = 64 * 1024;
/** A copy that has not answered by then is abandoned. */
const MIRROR_TIMEOUT_MS = 10_000;

/** Applies header edits to a flat `[name, value, ...]` list, in place: drop, then append. */
export function applyHeaderEdits(list: string[], edits: HeaderEdits): string[] {
  const drop = edits.drop;
  if (drop.size > 0) {
    let w = 0;
    for (let r = 0; r < list.length; r += 2) {
      if (drop.has(list[r]!.toLowerCase())) continue;
      list[w++] = list[r]!;
      list[w++] = list[r + 1]!;
    }
    list.length = w;
  }
  const append = edits.append;
  for (let i = 0; i < append.length; i++) list.push(append[i]!);
  return list;
}

/** Sets the Host of an upstream header list (urlRewrite.hostname). */
export function replaceHost(list: string[], host: string): string[] {
  for (let i = 0; i < list.length; i += 2) {
    if (list[i]!.length === 4 && list[i]!.toLowerCase() === 'host') {
      list[i + 1] = host;
      return list;
    }
  }
  list.push('host', host);
  return list;
}

/**
 * A request target with its path changed, the query kept. ReplacePrefixMatch
 * replaces the segments the match's prefix covered: with `/foo` -> `/bar`,
 * `/foo/x` becomes `/bar/x`; with `/foo` -> `/`, `/foo/x` becomes `/x` and
 * `/foo` becomes `/`.
 */
export function modifyPath(url: string, modifier: PathModifier): string {
  let end = url.length;
  for (let i = 0; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 0x3f || c === 0x23) {
      end = i;
      break;
    }
  }
  const query = url.slice(end);
  if (modifier.kind === 'full') return modifier.value + query;
  const matched = modifier.matched === '/' ? '' : modifier.matched;
  let rest = url.slice(matched.length, end);
  let replacement = modifier.value;
  if (replacement.endsWith('/') && rest.startsWith('/')) rest = rest.slice(1);
  if (replacement === '/' && rest !== '') replacement = '';
  const path = replacement + rest;
  return (path === '' ? '/' : path.startsWith('/') ? path : `/${path}`) + query;
}

/** The upstream request target: the client's, or rewritten by the rule. */
export function upstreamPathOf(req: IncomingMessage, filters: CompiledFilters | null): string {
  const url = req.url ?? '/';
  return filters === null || filters.rewritePath === null ? url : modifyPath(url, filters.rewritePath);
}

/** Applies a rule's request-side edits to the upstream headers. */
export function editUpstreamHeaders(list: string[], filters: CompiledFilters): string[] {
  if (filters.requestHeaders !== null) applyHeaderEdits(list, filters.requestHeaders);
  if (filters.rewriteHost !== null) replaceHost(list, filters.rewriteHost);
  return list;
}

const DEFAULT_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443 };

/**
 * The Location of a requestRedirect, as Gateway API says: the request's own
 * scheme, host and path where the filter names none; the port is the
 * scheme's when the filter changes the scheme, else the listener's, and is
 * left out when it is the scheme's default.
 */
export function redirectLocation(req: IncomingMessage, redirect: CompiledRedirect): string {
  const encrypted = (req.socket as { encrypted?: boolean } | null)?.encrypted === true;
  const scheme = redirect.scheme ?? (encrypted ? 'https' : 'http');
  const authority = req.headers.host ?? '';
  // The host without its port ([v6] keeps its brackets).
  const host = redirect.hostname ?? authority.replace(/:\d+$/, '');
  const port = redirect.port ?? (redirect.scheme !== null ? DEFAULT_PORTS[scheme]! : (req.socket?.localPort ?? DEFAULT_PORTS[scheme]!));
  const url = req.url ?? '/';
  const path = redirect.path === null ? url : modifyPath(url, redirect.path);
  return `${scheme}://${host}${port === DEFAULT_PORTS[scheme] ? '' : `:${port}`}${path}`;
}

/** Answers a requestRedirect: no upstream is called. */
export function sendRedirect(req: IncomingMessage, res: ServerResponse, redirect: CompiledRedirect): void {
  res.writeHead(redirect.statusCode, { location: redirectLocation(req, redirect), 'content-length': 0 });
  res.end();
}

/** Counts mirrored copies (veer_mirror_requests_total); the data plane hands it the metrics. */
export type MirrorCounter = (version: CompiledVersion, result: MirrorResult) => void;

let mirrorsInFlight = 0;

/**
 * Sends a copy of `req` to the mirror version, fire and forget: its answer
 * is read and dropped, its failure only counted. The real request never
 * waits for it. A request body is copied only when it is small and sized
 * (the caller passes it once read); otherwise the copy is skipped.
 */
export function sendMirror(upstreams: UpstreamRegistry, req: IncomingMessage, headers: string[], path: string, version: CompiledVersion, body: Buffer | null, count: MirrorCounter): void {
  if (mirrorsInFlight >= MAX_MIRRORS_IN_FLIGHT) {
    count(version, 'dropped');
    return;
  }
  const endpoint = upstreams.endpointsOf(version.upstream).pick();
  if (endpoint === null) {
    count(version, 'failed');
    return;
  }
  mirrorsInFlight++;
  const done = (result: MirrorResult) => {
    mirrorsInFlight--;
    count(version, result);
  };
  endpoint.dispatcher
    .request({ path, method: req.method ?? 'GET', headers, body, headersTimeout: MIRROR_TIMEOUT_MS, bodyTimeout: MIRROR_TIMEOUT_MS })
    .then(
      async (response) => {
        // Read to the end so the connection goes back to the pool.
        for await (const _ of response.body) void _;
        done(response.statusCode >= 500 ? 'failed' : 'sent');
      },
      () => done('failed'),
    );
}

/** The copy's headers: the upstream headers, naming the mirror's version. */
export function mirrorHeaders(list: readonly string[], version: string): string[] {
  const out = [...list];
  for (let i = 0; i < out.length; i += 2) {
    const name = out[i]!.toLowerCase();
    if (name === 'x-veer-version') out[i + 1] = version;
  }
  return out;
}
