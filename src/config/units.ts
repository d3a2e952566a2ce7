// Parsing of the small value syntaxes the config file uses: durations and
// listen addresses. The schema has already checked their shape.

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `30s` -> 30000. Throws on a string the schema would have refused. */
export function parseDuration(text: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(text);
  if (!match) throw new Error(`not a duration: ${text}`);
  return Math.round(Number(match[1]) * DURATION_UNITS_MS[match[2]!]!);
}

/** A parsed listen address. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * `0.0.0.0:8080`, `[::1]:8080`, `localhost:0` or a bare port (all interfaces).
 * Returns null when the text is not such an address.
 */
export function parseListenAddress(value: string | number): ListenAddress | null {
  if (typeof value === 'number') return { host: '0.0.0.0', port: value };
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(value);
  if (!match) return /^[0-9]{1,5}$/.test(value) && Number(value) <= 65535 ? { host: '0.0.0.0', port: Number(value) } : null;
  const port = Number(match[3]);
  if (port > 65535) return null;
  return { host: match[1] ?? match[2]!, port };
}

/** True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.[0-9]+\.[0-9]+\.[0-9]+$/.test(host);
}
