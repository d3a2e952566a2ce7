// A version's `upstream` (one URL, a list, or the long form) -> UpstreamSpec:
// its origins and how to reach them (connect timeout, TLS, HTTP/1.1 or
// HTTP/2), with a key that is equal exactly when two specs are.

import { isIP } from 'node:net';
import { parseDuration } from '../config/index.ts';
import type { DnsPolicy, HealthPolicy, OutlierPolicy, UpstreamProtocol, UpstreamSpec, UpstreamTls } from './types.ts';

/** A version's `upstream` as written: one URL, a list, or the long form. */
export type UpstreamConfig =
  | string
  | readonly string[]
  | { readonly urls: string | readonly string[]; readonly health?: HealthConfig; readonly tls?: Partial<UpstreamTls>; readonly protocol?: UpstreamProtocol };
interface HealthConfig {
  readonly path?: string;
  readonly interval?: string;
  readonly timeout?: string;
  readonly unhealthyAfter?: number;
  readonly healthyAfter?: number;
}

/**
 * Compiles a version's upstream; reports each bad URL by its index (null for
 * the single-URL form; in the long form the index is into `urls`), a URL
 * whose scheme its `protocol` cannot speak (h2 over http://, h2c over https://) included.
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
  const protocol = (typeof config === 'object' && !Array.isArray(config) ? (config as { protocol?: UpstreamProtocol }).protocol : undefined) ?? 'http1';
  const urls = typeof upstream === 'string' ? [upstream] : upstream;
  const origins: string[] = [];
  urls.forEach((url, i) => {
    const origin = parseOrigin(url);
    const error = typeof origin === 'string' ? schemeErrorOf(origin, protocol) : origin.error;
    if (error === null) origins.push(origin as string);
    else report(typeof upstream === 'string' ? null : i, error);
  });
  // Endpoints with another ejection policy are another set (their health is counted apart).
  const ejection = outlier === null ? '' : `#eject:${outlier.consecutiveErrors}/${outlier.baseEjectionMs}/${outlier.maxEjectedPercent}`;
  const dns = origins.some((o) => isIP(hostOf(o)) === 0) ? resolver : null;
  const resolving = dns === null ? '' : `#dns:${dns.servers.join(',')}/${dns.refreshMs}`;
  const checking = health === null ? '' : `#health:${health.path}/${health.intervalMs}/${health.timeoutMs}/${health.unhealthyAfter}/${health.healthyAfter}`;
  return Object.freeze({
    key: `${origins.join(' ')}#${connectTimeoutMs}${ejection}${resolving}${checking}${tlsKeyOf(tls)}${protocolKeyOf(protocol)}`,
    origins: Object.freeze(origins),
    connectTimeoutMs,
    outlier,
    dns,
    health,
    tls,
    protocol,
  });
}

/** Why `protocol` cannot be spoken to `origin` (h2 is HTTP/2 over TLS, h2c cleartext), or null when it can. */
function schemeErrorOf(origin: string, protocol: UpstreamProtocol): string | null {
  if (protocol === 'h2' && origin.startsWith('http:')) return `"${origin}" is http://, but protocol h2 is HTTP/2 over TLS and needs https:// (protocol h2c is cleartext HTTP/2)`;
  if (protocol === 'h2c' && origin.startsWith('https:')) return `"${origin}" is https://, but protocol h2c is cleartext HTTP/2 and needs http:// (protocol h2 is HTTP/2 over TLS)`;
  return null;
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

/** The part of a pool's identity its protocol makes ('' for HTTP/1.1, so those keys are as before). */
export function protocolKeyOf(protocol: UpstreamProtocol): string {
  return protocol === 'http1' ? '' : `#${protocol}`;
}

/** The part of a pool's identity its TLS settings make ('' for the defaults). */
export function tlsKeyOf(tls: UpstreamTls | null): string {
  return tls === null ? '' : `#tls:${JSON.stringify([tls.ca, tls.cert, tls.key, tls.servername, tls.insecureSkipVerify])}`;
}
