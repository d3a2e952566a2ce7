// veer run on the TLS overlay's rendered config, as its pod would run it:
// the ConfigMap's veer.yaml with the listeners moved to 127.0.0.1:0 and the
// state file and upstreams moved to this machine, and each Secret the
// Deployment mounts under the `tls.certificates` folder laid out as the
// kubelet writes it (test/deploy/secret-volume.ts, a certificate made by
// openssl). One HTTPS request goes through it; then the Secret is renewed as
// the kubelet renews it (..data swapped) and the new certificate is served
// without a restart. How the manifests fit together is kubernetes-wiring.test.ts.

import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { connect } from 'node:tls';
import t from 'tap';
import { Agent, request } from 'undici';
import { parseDocument } from 'yaml';
import { until } from '../helpers/admin.ts';
import { makePki, makeServerCert, opensslMissing } from '../helpers/certs.ts';
import { veerConfigOf, type VeerConfig } from '../helpers/kubernetes.ts';
import { startUpstream } from '../helpers/upstreams.ts';
import { serveInChild } from '../helpers/veer.ts';
import { allRenders } from './kubernetes-overlays.ts';
import { mountTlsSecret, updateTlsSecret } from './secret-volume.ts';

const HOST = 'shop.example.com';

/** The SHA-256 fingerprint of the certificate a handshake for HOST is answered with. */
function servedFingerprint(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: HOST, ca }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve(fingerprint);
    });
    socket.on('error', reject);
  });
}

t.test('veer serves HTTPS on the TLS overlay\'s config from a mounted Secret, and a renewal without a restart', { skip: opensslMissing() ?? false }, async (t) => {
  const here = mkdtempSync(join(tmpdir(), 'veer-deploy-tls-'));
  t.teardown(() => rmSync(here, { recursive: true, force: true }));
  const pki = makePki();
  t.teardown(() => pki.destroy());
  const ca = readFileSync(pki.ca);
  const issued = makeServerCert(pki, 'shop-0', [HOST]);

  const { text, container } = veerConfigOf(allRenders.get('tls')!);
  const doc = parseDocument(text);
  const config = doc.toJS() as VeerConfig & { tls: { certificates: { dir?: string }[] } };
  // Each Secret the Deployment mounts under a tls.certificates folder, in a folder of its own here.
  const secrets: string[] = [];
  for (const [i, entry] of config.tls.certificates.entries()) {
    if (entry.dir === undefined) continue;
    const local = join(here, `secrets-${i}`);
    for (const mount of container.volumeMounts ?? []) {
      if (mount.mountPath.startsWith(`${entry.dir}/`)) secrets.push(mountTlsSecret(local, relative(entry.dir, mount.mountPath), issued));
    }
    doc.setIn(['tls', 'certificates', i, 'dir'], local);
  }
  t.equal(secrets.length, 1, 'the overlay mounts one Secret');
  doc.set('listen', '127.0.0.1:0');
  doc.setIn(['admin', 'listen'], '127.0.0.1:0');
  doc.setIn(['tls', 'listen'], '127.0.0.1:0');
  doc.setIn(['state', 'path'], join(here, 'state.json'));
  for (const [si, service] of config.services.entries()) {
    for (const [vi, version] of service.versions.entries()) {
      const upstream = await startUpstream(version.name);
      t.teardown(() => upstream.close());
      doc.setIn(['services', si, 'versions', vi, 'upstream'], upstream.url);
    }
  }
  const configPath = join(here, 'veer.yaml');
  writeFileSync(configPath, doc.toString());

  const { serving } = await serveInChild(t, configPath, { env: { VEER_ADMIN_TOKEN: 'test-token' } });
  const tlsPort = Number(String(serving.tls).split(':').at(-1));
  const dispatcher = new Agent({ connect: { ca, servername: HOST } });
  t.teardown(() => dispatcher.close());

  const first = await request(`https://127.0.0.1:${tlsPort}/cart`, { dispatcher, headers: { host: HOST } });
  t.equal(first.statusCode, 200, 'an HTTPS request, verified against the CA, answered');
  t.equal(first.headers['x-upstream'], 'v1', 'routed as the config says: v1 has weight 100');
  t.equal(first.headers['x-veer-version'], 'v1', 'with x-veer-version');
  await first.body.text();
  t.equal(await servedFingerprint(tlsPort, ca), new X509Certificate(readFileSync(issued.cert)).fingerprint256, 'the mounted Secret\'s certificate');

  // cert-manager renews the Secret; the kubelet swaps ..data; veer's next poll (every 2 s) serves it.
  const renewed = makeServerCert(pki, 'shop-1', [HOST]);
  const want = new X509Certificate(readFileSync(renewed.cert)).fingerprint256;
  updateTlsSecret(secrets[0]!, renewed);
  t.ok(await until(async () => (await servedFingerprint(tlsPort, ca)) === want, 8000, 200), 'the renewed certificate is served, no restart');
  const again = await request(`https://127.0.0.1:${tlsPort}/cart`, { dispatcher, headers: { host: HOST } });
  t.equal(again.statusCode, 200, 'and requests keep flowing');
  await again.body.text();
});
