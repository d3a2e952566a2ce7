// A version's `upstream` (one URL or a list) -> UpstreamSpec: its origins
// and connect timeout, with a key that is equal exactly when two specs are.

import { isIP } from 'node:net';
import { parseDuration } from '../config/index.ts';
import type { DnsPolicy, HealthPolicy, OutlierPolicy, UpstreamSpec, UpstreamTls } from './types.ts';

/** A version's `upstream` as written: one URL, a list, or the long form. */
export type UpstreamConfig = string | readonly string[] | { readonly urls: string | readonly string[]; readonly health?: HealthConfig; readonly tls?: Partial<UpstreamTls> };
interface HealthConfig {
  readonly path?: string;
  readonly interval?: string;
  readonly timeout?: string;
  readonly unhealthyAfter?: number;
  readonly healthyAfter?: number;
}

/**
 * Compiles a version's upstream; reports each bad URL by its index (null for
 * the single-URL form; in the long form the index is into `urls`).
 */
export function compileUpstream(
  config: UpstreamConfig,
  connectTimeoutMs: number,
  outlier: OutlierPolicy | null,
  resolver: DnsPolicy,
  report: (index: number | null, message: string) => void,
): UpstreamSpec {
  const upstream = typeof config === 'string' || Array.isArray(config) ? (config as string | readonly string[]) : (config as { urls: string | readonly string[] }).urls;
  const healthConfig = typeof config === 'object' && !Array.isArray(config) ? (config as { health?: HealthConfig }).health : undefined;
  const health: HealthPolicy | null =
    healthConfig === undefined
      ? null
      : Object.freeze({
          path: healthConfig.path ?? '/healthz',
          intervalMs: parseDuration(healthConfig.interval ?? '5s'),
          timeoutMs: parseDuration(healthConfig.timeout ?? '1s'),
          unhealthyAfter: healthConfig.unhealthyAfter ?? 3,
          healthyAfter: healthConfig.healthyAfter ?? 2,
        });
  const tlsConfig = typeof config === 'object' && !Array.isArray(config) ? (config as { tls?: Partial<UpstreamTls> }).tls : undefined;
  const tls: UpstreamTls | null =
    tlsConfig === undefined
      ? null
      : Object.freeze({
          ca: tlsConfig.ca ?? null,
          cert: tlsConfig.cert ?? null,
          key: tlsConfig.key ?? null,
          servername: tlsConfig.servername ?? null,
          insecureSkipVerify: tlsConfig.insecureSkipVerify ?? false,
        });
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
  const checking = health === null ? '' : `#health:${health.path}/${health.intervalMs}/${health.timeoutMs}/${health.unhealthyAfter}/${health.healthyAfter}`;
  return Object.freeze({
    key: `${origins.join(' ')}#${connectTimeoutMs}${ejection}${resolving}${checking}${tlsKeyOf(tls)}`,
    origins: Object.freeze(origins),
    connectTimeoutMs,
    outlier,
    dns,
    health,
    tls,
  });
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

/** The part of a pool's identity its TLS settings make ('' for the defaults). */
export function tlsKeyOf(tls: UpstreamTls | null): string {
  return tls === null ? '' : `#tls:${JSON.stringify([tls.ca, tls.cert, tls.key, tls.servername, tls.insecureSkipVerify])}`;
}
