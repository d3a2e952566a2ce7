// Host names: patterns from the config, and the Host header of a request.

const LABEL = '[a-z0-9_]([-a-z0-9_]*[a-z0-9_])?';
const HOST_NAME = new RegExp(`^${LABEL}(\\.${LABEL})*$`);
const IPV6 = /^\[[0-9a-f:.]+\]$/;

/** `Shop.Example.com.` -> `shop.example.com`; `*.example.com` kept; null when invalid. */
export function normalizeHostPattern(raw: string): string | null {
  let host = raw.trim().toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host.startsWith('*.')) return HOST_NAME.test(host.slice(2)) ? host : null;
  if (IPV6.test(host)) return host;
  return HOST_NAME.test(host) ? host : null;
}

/**
 * HOT PATH. The Host header without port or trailing dot, lowercased.
 * `[::1]:8080` -> `[::1]`. Returns the input itself when nothing changes.
 */
export function normalizeRequestHost(raw: string): string {
  let end = raw.length;
  if (raw.charCodeAt(0) === 91 /* [ */) {
    const close = raw.indexOf(']');
    if (close !== -1) end = close + 1;
  } else {
    const colon = raw.indexOf(':');
    if (colon !== -1) end = colon;
  }
  if (end > 0 && raw.charCodeAt(end - 1) === 46 /* . */) end--;
  const host = end === raw.length ? raw : raw.slice(0, end);
  return hasUpperCase(host) ? host.toLowerCase() : host;
}

function hasUpperCase(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) return true;
  }
  return false;
}
