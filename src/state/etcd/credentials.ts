// How veer proves itself to a secured etcd, and what an operator reads when
// etcd turns veer away. The TLS files are read with the config (config/pem-files.ts).
//
//   config (paths, user)  --readEtcdSecurity-->  EtcdSecurity (Buffers, user)  --etcdClientSecurity-->  new Etcd3({ credentials, auth })
//
// The password and the key's contents live only in EtcdSecurity and the
// client: nothing here puts them in a message, and the store's description,
// health and logs name endpoints and prefix only.

import { EtcdAuthenticationFailedError, EtcdPermissionDeniedError, type IOptions } from 'etcd3';
import type { EtcdSecurity } from '../../config/index.ts';

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
