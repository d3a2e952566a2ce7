// Upstream host names resolved to endpoints: every address a name has is an
// endpoint of its own (a headless Service spreads over its pods, and
// ejection and health work per pod), resolved again every `refresh`.
//
// Until the first answer, and whenever resolving fails, the set keeps what
// it had (at first, the name itself, which the connection pool resolves on
// each connect): a DNS outage never takes a version out of service.

import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { hostOf, type DnsPolicy } from '../table/index.ts';

/** Resolves `host` to its addresses, with the policy's servers or the system's resolver. */
export type HostResolver = (host: string) => Promise<string[]>;

export function createHostResolver(policy: DnsPolicy): HostResolver {
  if (policy.servers.length === 0) {
    return async (host) => (await dns.lookup(host, { all: true })).map((a) => a.address);
  }
  const resolver = new dns.Resolver({ timeout: 1000, tries: 2 });
  resolver.setServers([...policy.servers]);
  return async (host) => {
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
    const addresses = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (addresses.length === 0 && v4.status === 'rejected') throw v4.reason;
    return addresses;
  };
}

/** An address to connect to, and the name it was resolved from (for TLS: the name to verify; null for an IP). */
export interface ResolvedOrigin {
  readonly origin: string;
  readonly name: string | null;
}

/** The origins `origins` stand for now: each name replaced by one origin per address (config order, then address order). */
export async function resolveOrigins(origins: readonly string[], resolve: HostResolver): Promise<ResolvedOrigin[] | null> {
  const out: ResolvedOrigin[] = [];
  for (const origin of origins) {
    const host = hostOf(origin);
    if (isIP(host) !== 0) {
      out.push({ origin, name: null });
      continue;
    }
    let addresses: string[];
    try {
      addresses = await resolve(host);
    } catch {
      return null;
    }
    if (addresses.length === 0) return null;
    const url = new URL(origin);
    for (const address of [...new Set(addresses)].sort()) {
      url.hostname = isIP(address) === 6 ? `[${address}]` : address;
      out.push({ origin: url.origin, name: host });
    }
  }
  return out;
}

/** Re-resolves on an interval and hands each new list of origins to `apply`; stop() ends it. */
export class DnsRefresher {
  readonly #timer: NodeJS.Timeout;
  #last = '';
  #running = false;

  constructor(origins: readonly string[], policy: DnsPolicy, apply: (origins: ResolvedOrigin[]) => void, resolve: HostResolver = createHostResolver(policy)) {
    const refresh = async () => {
      if (this.#running) return;
      this.#running = true;
      try {
        const next = await resolveOrigins(origins, resolve);
        const key = next?.map((o) => o.origin).join(' ') ?? '';
        if (next !== null && key !== this.#last) {
          this.#last = key;
          apply(next);
        }
      } finally {
        this.#running = false;
      }
    };
    void refresh();
    this.#timer = setInterval(() => void refresh(), policy.refreshMs).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
