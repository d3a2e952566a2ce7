// Cross-field checks of `state.etcd` that the schema cannot express: a TLS
// client certificate comes with its key, and TLS and the endpoints' schemes
// agree. The etcd client uses one set of credentials for every endpoint, so
// http:// and https:// cannot be mixed. The files themselves are read by
// readEtcdSecurity (pem-files.ts), at start and in `veer validate`.

import type { EtcdStoreConfig } from './schema.ts';

/** One problem in `state.etcd`, with its path below the document root. */
export interface EtcdRuleIssue {
  readonly code: 'invalid_etcd_tls' | 'invalid_etcd_endpoint';
  readonly path: readonly (string | number)[];
  readonly message: string;
}

const BASE = ['state', 'etcd'] as const;

/** Every cross-field problem of `state.etcd` (none when it is consistent). */
export function checkEtcdRules(etcd: EtcdStoreConfig): EtcdRuleIssue[] {
  const issues: EtcdRuleIssue[] = [];
  const { tls } = etcd;
  if (tls?.cert !== undefined && tls.key === undefined) {
    issues.push({ code: 'invalid_etcd_tls', path: [...BASE, 'tls', 'cert'], message: 'is set without state.etcd.tls.key: a client certificate needs its private key' });
  }
  if (tls?.key !== undefined && tls.cert === undefined) {
    issues.push({ code: 'invalid_etcd_tls', path: [...BASE, 'tls', 'key'], message: 'is set without state.etcd.tls.cert: a private key needs its client certificate' });
  }
  const secure = etcd.endpoints.map((e) => e.toLowerCase().startsWith('https://'));
  if (secure.some((s) => s) && secure.some((s) => !s)) {
    const first = secure.indexOf(!secure[0]);
    issues.push({
      code: 'invalid_etcd_endpoint',
      path: [...BASE, 'endpoints', first],
      message: `mixes http:// and https:// endpoints (${etcd.endpoints[0]} and ${etcd.endpoints[first]}); use one scheme for every endpoint`,
    });
  } else if (tls !== undefined && !secure[0]) {
    issues.push({ code: 'invalid_etcd_tls', path: [...BASE, 'tls'], message: 'tls is set but every endpoint is http://; use https:// endpoints' });
  }
  return issues;
}
