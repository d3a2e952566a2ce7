// A version's `upstream` (one URL or a list) -> UpstreamSpec: its origins
// and connect timeout, with a key that is equal exactly when two specs are.

import { isIP } from 'node:net';
import type { DnsPolicy, OutlierPolicy, UpstreamSpec } from './types.ts';

/** Compiles a version's upstream URLs; reports each bad URL by its index (null for the single-URL form). */
export function compileUpstream(
  upstream: string | readonly string[],
  connectTimeoutMs: number,
  outlier: OutlierPolicy | null,
  resolver: DnsPolicy,
  report: (index: number | null, message: string) => void,
): UpstreamSpec {
  const urls = typeof upstream === 'string' ? [upstream] : upstream;
  const origins: string[] = [];
  urls.forEach((url, i) => {
    const origin = parseOrigin(url);
    if (typeof origin === 'string') origins.push(origin);
    else report(typeof upstream === 'string' ? null : i, origin.error);
  });
  // Endpoints with another ejection policy are another set (their health is counted apart).
  const ejection = outlier === null ? '' : `#eject:${outlier.consecutiveErrors}/${outlier.baseEjectionMs}/${outlier.maxEjectedPercent}`;
  const dns = origins.some((o) => isIP(hostOf(o)) === 0) ? resolver : null;
  const resolving = dns === null ? '' : `#dns:${dns.servers.join(',')}/${dns.refreshMs}`;
  return Object.freeze({ key: `${origins.join(' ')}#${connectTimeoutMs}${ejection}${resolving}`, origins: Object.freeze(origins), connectTimeoutMs, outlier, dns });
}

/** `http://h:p` or `https://h:p`, without path, query or credentials. */
export function parseOrigin(text: string): string | { error: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { error: `"${text}" is not a URL (expected e.g. http://127.0.0.1:3001)` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { error: `"${text}" must use http:// or https://` };
  if (url.username || url.password) return { error: `"${text}" must not carry credentials` };
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    return { error: `"${text}" must be an origin only (scheme://host:port), without a path or query` };
  }
  return url.origin;
}

/** The host of an origin, without the brackets of an IPv6 literal. */
export function hostOf(origin: string): string {
  const host = new URL(origin).hostname;
  return host.startsWith('[') ? host.slice(1, -1) : host;
}
