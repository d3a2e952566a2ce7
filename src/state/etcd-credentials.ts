// How veer proves itself to a secured etcd: the TLS files of
// `state.etcd.tls` (read once, at start, relative to the config file's
// directory like `state.path`) and the etcd user of `state.etcd.auth`; and
// what an operator reads when etcd turns veer away.
//
//   config (paths, user)  --readEtcdSecurity-->  EtcdSecurity (Buffers, user)  --etcdClientSecurity-->  new Etcd3({ credentials, auth })
//
// The password and the key's contents live only in EtcdSecurity and the
// client: nothing here puts them in a message, and the store's description,
// health and logs name endpoints and prefix only.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { EtcdAuthenticationFailedError, EtcdPermissionDeniedError, type IOptions } from 'etcd3';
import type { Config, PathIssue } from '../config/index.ts';

/** What the etcd client needs beyond the endpoints. Never log it. */
export interface EtcdSecurity {
  /** TLS: the CA to trust (null: the system's), and the client certificate and key for mutual TLS. */
  readonly tls?: { readonly ca: Buffer | null; readonly cert?: Buffer; readonly key?: Buffer };
  readonly auth?: { readonly username: string; readonly password: string };
}

/** The files read, or every one that could not be, with its config path. */
export type EtcdSecurityResult = { readonly ok: true; readonly security: EtcdSecurity } | { readonly ok: false; readonly issues: PathIssue[] };

const TLS_FILES = ['ca', 'cert', 'key'] as const;

/**
 * Reads the TLS files of `state.etcd.tls` (paths relative to `baseDir`, the
 * config file's directory) and checks that they are PEM that TLS can use.
 * Nothing to read for the file store.
 */
export function readEtcdSecurity(state: Config['state'], baseDir: string): EtcdSecurityResult {
  const etcd = state.store === 'etcd' ? state.etcd : undefined;
  if (etcd === undefined) return { ok: true, security: {} };
  const issues: PathIssue[] = [];
  const read: Partial<Record<(typeof TLS_FILES)[number], Buffer>> = {};
  for (const name of TLS_FILES) {
    const file = etcd.tls?.[name];
    if (file === undefined) continue;
    const path = ['state', 'etcd', 'tls', name];
    const absolute = resolve(baseDir, file);
    let data: Buffer;
    try {
      data = readFileSync(absolute);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      issues.push({ code: 'config_unreadable', path, message: `cannot read ${absolute}: ${e.code ?? e.message}` });
      continue;
    }
    if (data.includes('-----BEGIN ')) read[name] = data;
    else issues.push({ code: 'invalid_etcd_tls', path, message: `${absolute} is not a PEM file (no -----BEGIN line)` });
  }
  // Whatever TLS would refuse later (a key that does not match the certificate, a broken PEM body), refused now.
  const usable = (path: string[], what: string, parts: Parameters<typeof createSecureContext>[0]) => {
    try {
      createSecureContext(parts);
    } catch (err) {
      issues.push({ code: 'invalid_etcd_tls', path, message: `${what} cannot be used for TLS: ${(err as Error).message}` });
    }
  };
  if (read.ca) usable(['state', 'etcd', 'tls', 'ca'], 'the CA bundle', { ca: read.ca });
  if (read.cert && read.key) usable(['state', 'etcd', 'tls', 'key'], 'the client certificate and key', { cert: read.cert, key: read.key });
  if (issues.length > 0) return { ok: false, issues };
  const tls = etcd.tls === undefined ? undefined : { ca: read.ca ?? null, cert: read.cert, key: read.key };
  return { ok: true, security: { tls, auth: etcd.auth && { username: etcd.auth.username, password: etcd.auth.password } } };
}

/** The etcd3 client's `credentials` and `auth` options for `security`. */
export function etcdClientSecurity(security: EtcdSecurity): Pick<IOptions, 'credentials' | 'auth'> {
  const out: { -readonly [K in 'credentials' | 'auth']?: IOptions[K] } = {};
  if (security.tls !== undefined) {
    // grpc's createSsl takes null for "the system's CAs"; etcd3's type insists on a Buffer.
    out.credentials = { rootCertificate: security.tls.ca as Buffer, certChain: security.tls.cert, privateKey: security.tls.key };
  }
  if (security.auth !== undefined) out.auth = { username: security.auth.username, password: security.auth.password };
  return out;
}

/**
 * One line for logs and /readyz saying why etcd could not be used, naming
 * the setting to look at when TLS or the etcd user is the reason.
 */
export function describeEtcdError(err: unknown): string {
  if (err instanceof EtcdAuthenticationFailedError) {
    return `etcd refused the user of state.etcd.auth: ${stripGrpc(err.message)}`;
  }
  if (err instanceof EtcdPermissionDeniedError) {
    return `etcd denied access: ${stripGrpc(err.message)} (the user of state.etcd.auth needs readwrite on the prefix)`;
  }
  const message = err instanceof Error ? err.message : String(err);
  // grpc: "14 UNAVAILABLE: No connection established. Last error: <cause> (<time>). Resolution note: ..."
  const cause = /Last error: ([\s\S]*?)(?: \(\d{4}-\d\d-\d\dT[^)]*\))?\.? Resolution note:/.exec(message)?.[1]?.replace(/^Error: /, '').replace(/; if the root CA is installed locally.*$/s, '').replace(/\s+/g, ' ').trim();
  if (cause === undefined || !TLS_ERROR.test(cause)) return message;
  if (/alert (bad certificate|certificate required|unknown ca)|alert number (42|48|116)/i.test(cause)) {
    return `TLS to etcd failed: etcd refused veer's client certificate (${cause}); state.etcd.tls.cert must be signed by a CA in etcd's --trusted-ca-file`;
  }
  if (/verify|self[- ]signed|issuer|altnames|IP: .* is not in the cert/i.test(cause)) {
    return `TLS to etcd failed: etcd's server certificate is not trusted (${cause}); state.etcd.tls.ca must be the CA that signed it, and it must name the endpoint's host`;
  }
  return `TLS to etcd failed: ${cause}`;
}

const TLS_ERROR = /certificate|ssl|tls|handshake|wrong version number|altnames|self[- ]signed/i;

function stripGrpc(message: string): string {
  return message.replace(/^\d+ [A-Z_]+: /, '').replace(/^etcdserver: /, '');
}
