// The TLS listener (`tls:`), with a CA and certificates made by openssl in
// the test: SNI by each certificate's own names (exact, then a one-label
// wildcard, else the default), certificates from files and from folders of
// mounted Kubernetes TLS Secrets, renewal picked up without dropping open
// connections, a broken renewal that keeps the last good pair, /readyz and
// the metrics, `veer validate`, and redirectHttp.

import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import { Agent, request } from 'undici';
import t, { type Test } from 'tap';
import { CertificateStore, openCertificateStore } from '../../src/dataplane/index.ts';
import { admin, until } from '../helpers/admin.ts';
import { makePki, makeServerCert, opensslMissing, type TestPki } from '../helpers/certs.ts';
import { runCli } from '../helpers/cli.ts';
import { serveInChild, writeConfig } from '../helpers/veer.ts';
import { startUpstream } from '../helpers/upstreams.ts';

const skip = opensslMissing();

/** The certificate a TLS handshake with `servername` (none: no SNI) is answered with. */
function peerOf(port: number, servername: string | undefined, ca: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ...(servername === undefined ? {} : { servername }), rejectUnauthorized: false, ca: readFileSync(ca) }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.on('error', reject);
  });
}

const cnOf = (cert: PeerCertificate) => cert.subject.CN;

/** A PKI with: shop.test (a file pair), *.api.test and other.test (Secrets in a folder). */
function certificates(t: Test): { pki: TestPki; shop: { cert: string; key: string }; secrets: string } {
  const pki = makePki();
  t.teardown(() => pki.destroy());
  const shop = makeServerCert(pki, 'shop', ['shop.test', 'www.shop.test']);
  const secrets = join(pki.dir, 'secrets');
  for (const [name, names] of [
    ['api', ['*.api.test']],
    ['other', ['other.test']],
  ] as const) {
    mkdirSync(join(secrets, name), { recursive: true });
    const pair = makeServerCert(pki, `${name}-0`, names);
    copyFileSync(pair.cert, join(secrets, name, 'tls.crt'));
    copyFileSync(pair.key, join(secrets, name, 'tls.key'));
  }
  return { pki, shop, secrets };
}

t.test('the certificate store: SNI by names, exact before wildcard, one label, a default', { skip: skip ?? false }, async (t) => {
  const { pki, shop, secrets } = certificates(t);
  const { store, problems } = openCertificateStore({ certificates: [shop, { dir: secrets }] }, '/');
  t.teardown(() => store.close());
  t.same(problems, []);
  t.same(
    store.list().map((c) => c.names),
    [['shop.test', 'www.shop.test'], ['*.api.test'], ['other.test']],
    'names from the SANs; the file pair, then each Secret in name order',
  );
  const pick = (name: string | undefined) => store.contextFor(name);
  t.equal(pick('shop.test'), pick('www.shop.test'), 'one context per certificate');
  t.equal(pick('a.api.test'), pick('b.api.test'), 'a wildcard covers one label');
  t.not(pick('a.api.test'), pick('shop.test'));
  t.equal(pick('a.b.api.test'), pick(undefined), 'not two labels: the default');
  t.equal(pick('api.test'), pick(undefined), 'nor the bare domain');
  t.equal(pick('SHOP.TEST'), pick('shop.test'), 'names are case-insensitive');
  t.equal(pick(undefined), pick('shop.test'), 'the default is the first certificate');

  // defaultCertificate picks another; one that is not usable is a problem.
  const other = join(secrets, 'other', 'tls.crt');
  const withDefault = openCertificateStore({ certificates: [shop, { dir: secrets }], defaultCertificate: other }, '/');
  t.teardown(() => withDefault.store.close());
  t.equal(withDefault.store.contextFor('unknown.test'), withDefault.store.contextFor('other.test'));
  const missingDefault = openCertificateStore({ certificates: [shop], defaultCertificate: join(pki.dir, 'nope.crt') }, '/');
  t.teardown(() => missingDefault.store.close());
  t.match(missingDefault.problems, [{ path: ['tls', 'defaultCertificate'] }]);
});

t.test('the certificate store: a broken pair is a problem and the last good one stays', { skip: skip ?? false }, async (t) => {
  const { pki, shop } = certificates(t);
  const other = makeServerCert(pki, 'other-file', ['other.test']);
  const failures: string[] = [];
  const store = new CertificateStore({ pairs: [shop], dirs: [], defaultCert: null }, { onProblem: (p) => failures.push(p.message) });
  t.same(store.load(), []);
  const good = store.contextFor('shop.test');

  // A key that does not fit: refused, the last good pair keeps serving.
  copyFileSync(other.key, shop.key);
  const mismatch = store.load();
  t.match(mismatch, [{ cert: shop.cert, message: /key does not fit/ }]);
  t.equal(store.contextFor('shop.test'), good, 'the last good context');
  t.equal(store.failures, 1);
  t.equal(store.load().length, 1, 'still broken: still a problem');
  t.equal(store.failures, 1, 'but reported once');

  // Not PEM, then expired (a clock two days on: the certificates last one day).
  writeFileSync(shop.cert, 'not a certificate');
  t.match(store.load(), [{ message: /not PEM/ }]);
  const fresh = new CertificateStore({ pairs: [other], dirs: [], defaultCert: null });
  t.match(fresh.load(Date.now() + 2 * 86_400_000), [{ message: /expired/ }, { cert: '(none)', message: 'no usable certificate' }]);
  t.equal(failures.length, 2);
});

t.test('veer over TLS: SNI, a default, renewal under an open connection, a broken renewal, /readyz and metrics', { skip: skip ?? false }, async (t) => {
  const { pki, shop, secrets } = certificates(t);
  const upstream = await startUpstream('v1');
  t.teardown(() => upstream.close());
  const configPath = writeConfig(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: info }
tls:
  listen: 127.0.0.1:0
  certificates:
    - { cert: ${shop.cert}, key: ${shop.key} }
    - { dir: ${secrets} }
services:
  - name: svc
    versions: [{ name: v1, upstream: "${upstream.url}" }]
`);
  const { veer, serving } = await serveInChild(t, configPath);
  const tlsPort = Number(String(serving.tls).split(':').at(-1));
  const adminUrl = `http://${String(serving.admin)}`;

  t.equal(cnOf(await peerOf(tlsPort, 'shop.test', pki.ca)), 'shop.test');
  t.equal(cnOf(await peerOf(tlsPort, 'x.api.test', pki.ca)), '*.api.test');
  t.equal(cnOf(await peerOf(tlsPort, 'other.test', pki.ca)), 'other.test');
  t.equal(cnOf(await peerOf(tlsPort, undefined, pki.ca)), 'shop.test', 'no SNI: the default');
  t.equal(cnOf(await peerOf(tlsPort, 'unknown.test', pki.ca)), 'shop.test', 'an unknown name: the default');

  // An HTTPS request, verified against the test CA, routed and proxied like any other.
  const dispatcher = new Agent({ connect: { ca: readFileSync(pki.ca), servername: 'other.test' } });
  t.teardown(() => dispatcher.close());
  const first = await request(`https://127.0.0.1:${tlsPort}/hello`, { dispatcher, headers: { host: 'other.test' } });
  t.equal(first.statusCode, 200);
  t.equal(first.headers['x-upstream'], 'v1');
  await first.body.text();

  const ready = await admin<{ certificates: { names: string[]; notAfter: string }[] }>(adminUrl, 'GET', '/readyz');
  t.same(
    ready.body.certificates.map((c) => c.names),
    [['shop.test', 'www.shop.test'], ['*.api.test'], ['other.test']],
    '/readyz lists every certificate with its names',
  );
  t.ok(ready.body.certificates.every((c) => Date.parse(c.notAfter) > Date.now()), 'and its expiry');
  const metrics = (await admin<string>(adminUrl, 'GET', '/metrics')).body;
  t.match(metrics, /veer_tls_certificate_expiry_seconds\{name="other\.test"\} \d+/);

  // cert-manager renews other.test: new handshakes get the new one; the open connection keeps working.
  const renewed = makeServerCert(pki, 'other-1', ['other.test'], pki.dir, 'other.test');
  const before = (await peerOf(tlsPort, 'other.test', pki.ca)).serialNumber;
  copyFileSync(renewed.key, join(secrets, 'other', 'tls.key'));
  copyFileSync(renewed.cert, join(secrets, 'other', 'tls.crt'));
  t.ok(await until(async () => (await peerOf(tlsPort, 'other.test', pki.ca)).serialNumber !== before, 8000, 200), 'the renewed certificate is served');
  const again = await request(`https://127.0.0.1:${tlsPort}/again`, { dispatcher, headers: { host: 'other.test' } });
  t.equal(again.statusCode, 200, 'the connection opened before the renewal still serves');
  await again.body.text();

  // A broken renewal: the last good certificate stays, the failure is logged and counted.
  const served = (await peerOf(tlsPort, 'other.test', pki.ca)).serialNumber;
  writeFileSync(join(secrets, 'other', 'tls.crt'), 'garbage');
  t.ok(await until(() => veer.output().includes('TLS certificate not usable'), 8000), 'logged, with the file');
  t.equal((await peerOf(tlsPort, 'other.test', pki.ca)).serialNumber, served, 'the last good one is still served');
  t.match((await admin<string>(adminUrl, 'GET', '/metrics')).body, /veer_tls_certificate_failures_total 1/);
});

t.test('veer validate checks the certificate files; redirectHttp sends plain HTTP to https', { skip: skip ?? false }, async (t) => {
  const { pki, shop } = certificates(t);
  const broken = join(pki.dir, 'broken.crt');
  writeFileSync(broken, 'not PEM');
  const bad = writeConfig(`tls:
  certificates:
    - { cert: ${shop.cert}, key: ${shop.key} }
    - { cert: ${broken}, key: ${shop.key} }
services:
  - name: svc
    versions: [{ name: v1, upstream: "http://127.0.0.1:1" }]
`);
  const result = await runCli(['validate', '--config', bad]);
  t.equal(result.code, 1);
  t.match(result.stderr, /tls\.certificates\[1\]\.cert: .*broken\.crt: the certificate or the key is not PEM \[invalid_tls_certificate\]/);

  const upstream = await startUpstream('v1');
  t.teardown(() => upstream.close());
  const configPath = writeConfig(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: info }
tls: { listen: 127.0.0.1:0, certificates: [{ cert: ${shop.cert}, key: ${shop.key} }], redirectHttp: true }
services:
  - name: svc
    versions: [{ name: v1, upstream: "${upstream.url}" }]
`);
  const { serving } = await serveInChild(t, configPath);
  const res = await request(`http://${String(serving.listen)}/cart?item=42`, { headers: { host: 'shop.test:8080' } });
  t.equal(res.statusCode, 308);
  t.equal(res.headers.location, 'https://shop.test/cart?item=42', 'same host (no port) and path with its query');
  await res.body.text();
});

t.test('with workers: 2, every worker serves TLS with the same certificates', { skip: skip ?? false }, async (t) => {
  const { pki, shop } = certificates(t);
  const upstream = await startUpstream('v1');
  t.teardown(() => upstream.close());
  const configPath = writeConfig(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
workers: 2
log: { level: info }
tls: { listen: 127.0.0.1:0, certificates: [{ cert: ${shop.cert}, key: ${shop.key} }] }
services:
  - name: svc
    versions: [{ name: v1, upstream: "${upstream.url}" }]
`);
  const { serving } = await serveInChild(t, configPath, { workers: 2 });
  const tlsPort = Number(String(serving.tls).split(':').at(-1));
  // Fresh connections: the primary hands them to the workers in turn.
  for (let i = 0; i < 4; i++) {
    const dispatcher = new Agent({ connect: { ca: readFileSync(pki.ca), servername: 'shop.test' } });
    const res = await request(`https://127.0.0.1:${tlsPort}/w${i}`, { dispatcher, headers: { host: 'shop.test' } });
    t.equal(res.statusCode, 200, `request ${i} over TLS`);
    await res.body.text();
    await dispatcher.close();
  }
  t.equal(upstream.seen.length, 4, 'each reached the upstream');
});
