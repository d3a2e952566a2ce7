// Throwaway PKI for TLS tests: a CA, a server certificate for 127.0.0.1
// and a client certificate, made with /usr/bin/openssl in a temp dir at test
// time (nothing is committed). EC P-256 keys, valid for one day.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingBinary } from './system-packages.ts';

/** The openssl binary the helper runs. */
export const OPENSSL_BIN = process.env.VEER_TEST_OPENSSL_BIN ?? '/usr/bin/openssl';

/** Why TLS tests cannot run here, or null when they can. */
export function opensslMissing(): string | null {
  return missingBinary(OPENSSL_BIN, 'openssl');
}

/** Paths of one CA and the certificates it signed. */
export interface TestPki {
  readonly dir: string;
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** Removes the directory. */
  destroy(): void;
}

const openssl = (cwd: string, ...args: string[]) => execFileSync(OPENSSL_BIN, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Makes a CA named `name` with a server certificate (SAN IP:127.0.0.1) and a client certificate (CN `client`). */
export function makePki(name = 'veer-test-ca'): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'veer-pki-'));
  openssl(dir, 'req', '-x509', ...KEY, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const sign = (who: string, cn: string, ext: string) => {
    writeFileSync(join(dir, `${who}.ext`), ext);
    openssl(dir, 'req', ...KEY, '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=${cn}`);
    openssl(dir, 'x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.crt`, '-days', '1', '-extfile', `${who}.ext`);
  };
  sign('server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  sign('client', 'client', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
    destroy: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Makes `<dir>/<name>.crt` and `.key`, signed by `pki`'s CA, for the DNS
 * names `dnsNames` (SANs; none: the CN alone). Returns the two paths.
 */
export function makeServerCert(pki: TestPki, name: string, dnsNames: readonly string[], dir = pki.dir, cn = dnsNames[0] ?? name): { cert: string; key: string } {
  const ext = `${dnsNames.length > 0 ? `subjectAltName=${dnsNames.map((n) => `DNS:${n}`).join(',')}\n` : ''}extendedKeyUsage=serverAuth\n`;
  writeFileSync(join(pki.dir, `${name}.ext`), ext);
  openssl(pki.dir, 'req', ...KEY, '-keyout', join(dir, `${name}.key`), '-out', join(pki.dir, `${name}.csr`), '-subj', `/CN=${cn}`);
  openssl(pki.dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', join(dir, `${name}.crt`), '-days', '1', '-extfile', `${name}.ext`);
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}
