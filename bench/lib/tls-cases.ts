// The servers of the TLS benchmarks (bench/tls.ts), each its own child process
// in front of the same fast upstream, all with one certificate made at run
// time (a throwaway CA and an EC P-256 server certificate for 127.0.0.1, by
// test/helpers/certs.ts, in a temp dir):
//
//   veer-tls            bin/veer.js serve: bench/lib/veer.ts's 20-service config plus
//                       `tls: { listen, certificates, http2: true }` (its TLS listener is loaded)
//   bare-undici-https   bare-undici.ts behind https.createServer (bare-undici-https.ts)
//   nginx-tls           one worker, `listen ... ssl` with HTTP/2 by ALPN (native.ts)

import { appendFileSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { checkServerIdentity, connect } from 'node:tls';
import { makePki, type TestPki } from '../../test/helpers/certs.ts';
import type { BenchCase, BenchUpstream, SkippedCase } from './cases.ts';
import { findFreePort, readyLineProbe, spawnChild, type BenchChild } from './child.ts';
import { findBinary, hasHttp2Directive, nginxVersion, startNginx } from './native.ts';
import { ROOT, spawnVeer, writeVeerConfig } from './veer.ts';

/** Every case name of the TLS benchmarks, in the order they are measured. */
export const TLS_CASE_NAMES: readonly string[] = ['veer-tls', 'bare-undici-https', 'nginx-tls'];

/** The certificate every TLS case serves: a fresh CA and a server certificate for 127.0.0.1. */
export function makeBenchPki(): TestPki {
  return makePki('veer-bench-ca');
}

/** veer with the bench config and a TLS listener on a free port; the case's port is the TLS one. */
async function startVeerTls(upstream: BenchUpstream, pki: TestPki): Promise<BenchChild & { tlsPort: number }> {
  const [v1, v2] = upstream.ports;
  const file = writeVeerConfig([`http://127.0.0.1:${v1}`, `http://127.0.0.1:${v2}`]);
  const tlsPort = await findFreePort();
  // A top-level key after the services list: the generated config ends with it.
  appendFileSync(file, `tls:\n  listen: 127.0.0.1:${tlsPort}\n  certificates:\n    - { cert: ${pki.serverCert}, key: ${pki.serverKey} }\n  http2: true\n`);
  const child = await spawnVeer(file, [], 'veer-tls');
  return Object.assign(child, { tlsPort });
}

function startBareUndiciHttps(upstream: BenchUpstream, pki: TestPki): Promise<BenchChild> {
  return spawnChild('bare-undici-https', process.execPath, [join(ROOT, 'bench', 'lib', 'bare-undici-https.ts'), '--upstream', `http://127.0.0.1:${upstream.ports[0]}`], {
    probe: readyLineProbe,
    spawn: { env: { ...process.env, VEER_BENCH_TLS_CERT: pki.serverCert, VEER_BENCH_TLS_KEY: pki.serverKey } },
  });
}

/** Starts the TLS cases: veer-tls, bare-undici-https, and nginx-tls when `native` and installed. */
export async function startTlsCases(upstream: BenchUpstream, pki: TestPki, native: boolean): Promise<{ cases: BenchCase[]; skipped: SkippedCase[] }> {
  const cases: BenchCase[] = [];
  const skipped: SkippedCase[] = [];
  try {
    const veer = await startVeerTls(upstream, pki);
    cases.push({ name: veer.name, port: veer.tlsPort, proxy: veer });
    const bare = await startBareUndiciHttps(upstream, pki);
    cases.push({ name: bare.name, port: bare.port, proxy: bare });
    const nginx = findBinary('nginx');
    if (!native) skipped.push({ name: 'nginx-tls', reason: 'native proxies off in this run (--quick or --no-native)' });
    else if (nginx === null) skipped.push({ name: 'nginx-tls', reason: 'nginx is not installed (--with-native installs it with apt-get)' });
    else {
      try {
        const tls = { cert: pki.serverCert, key: pki.serverKey, http2Directive: hasHttp2Directive(nginxVersion(nginx)) };
        const child = await startNginx(nginx, upstream.ports[0], tls, 'nginx-tls');
        cases.push({ name: child.name, port: child.port, proxy: child });
      } catch (err) {
        skipped.push({ name: 'nginx-tls', reason: `failed to start: ${(err as Error).message.split('\n').slice(0, 4).join(' ')}` });
      }
    }
  } catch (err) {
    await Promise.all(cases.map((c) => c.proxy?.stop()));
    throw err;
  }
  return { cases, skipped };
}

/** One HTTPS request through a case, its certificate verified (CA, 127.0.0.1) while SNI says the bench host; throws unless it answers 200. */
export async function checkTlsCase(c: BenchCase, pki: TestPki, headers: Record<string, string>, path: string): Promise<void> {
  const ca = readFileSync(pki.ca);
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: c.port, path, headers, agent: false, ca, checkServerIdentity: (_name, cert) => checkServerIdentity('127.0.0.1', cert) }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.on('error', (err) => reject(new Error(`${c.name} failed the bench request over TLS: ${err.message}${c.proxy ? `\n${c.proxy.output().slice(-2000)}` : ''}`)));
    req.end();
  });
  if (status !== 200) throw new Error(`${c.name} answered ${status} to the bench request over TLS, expected 200${c.proxy ? `\n${c.proxy.output().slice(-2000)}` : ''}`);
}

/**
 * The protocol a client offering h2 and http/1.1 gets by ALPN (as `curl --http2`): "h2" when the
 * listener serves HTTP/2, "http/1.1" or null (no ALPN) when it does not.
 */
export function negotiatedProtocol(port: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ALPNProtocols: ['h2', 'http/1.1'], rejectUnauthorized: false });
    socket.setTimeout(5000, () => socket.destroy(new Error('TLS handshake timed out')));
    socket.once('secureConnect', () => {
      const protocol = socket.alpnProtocol;
      socket.destroy();
      resolve(typeof protocol === 'string' ? protocol : null);
    });
    socket.once('error', reject);
  });
}
