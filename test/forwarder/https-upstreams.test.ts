// https:// upstreams, against real TLS servers on 127.0.0.1 with a CA made
// by openssl in the test: verified against the configured CA (the system's
// by default), a name to verify other than the address, a client
// certificate (mutual TLS), and every way verification fails answered 502
// upstream_tls_error.

import { readFileSync } from 'node:fs';
import { createServer, type ServerOptions } from 'node:https';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { makePki, makeServerCert, opensslMissing, type TestPki } from '../helpers/certs.ts';
import { runCli } from '../helpers/cli.ts';
import { listenOnLoopback } from '../helpers/upstreams.ts';
import { runVeer, serviceConfig, writeConfig } from '../helpers/veer.ts';

const skip = opensslMissing();

async function httpsUpstream(t: Test, options: ServerOptions): Promise<string> {
  const server = createServer(options, (req, res) => {
    const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
    res.end(`hello over TLS${peer?.subject?.CN ? ` to ${peer.subject.CN}` : ''}`);
  });
  const port = await listenOnLoopback(server);
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `https://127.0.0.1:${port}`;
}

async function through(t: Test, upstream: string): Promise<{ status: number; text: string }> {
  const veer = await runVeer(serviceConfig({ versions: { v1: '__UP__' } }).replace('upstream: __UP__', `upstream: ${upstream}`));
  t.teardown(() => veer.stop());
  const res = await request(`${veer.url}/`);
  return { status: res.statusCode, text: await res.body.text() };
}

let pki: TestPki;
let other: TestPki;
if (skip === null) {
  pki = makePki('upstream-ca');
  other = makePki('another-ca');
  t.teardown(() => {
    pki.destroy();
    other.destroy();
  });
}

t.test('verified against the configured CA; any other CA, or none, is 502 upstream_tls_error', { skip: skip ?? false }, async (t) => {
  const url = await httpsUpstream(t, { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) });
  const ok = await through(t, `{ urls: "${url}", tls: { ca: "${pki.ca}" } }`);
  t.same(ok, { status: 200, text: 'hello over TLS' });
  const wrong = await through(t, `{ urls: "${url}", tls: { ca: "${other.ca}" } }`);
  t.equal(wrong.status, 502);
  t.match(wrong.text, /"code":"upstream_tls_error"/);
  const system = await through(t, `"${url}"`);
  t.equal(system.status, 502, 'the system CAs do not know the test CA');
  t.match(system.text, /upstream_tls_error/);
  const insecure = await through(t, `{ urls: "${url}", tls: { insecureSkipVerify: true } }`);
  t.equal(insecure.status, 200, 'insecureSkipVerify connects anyway');
});

t.test('servername: the name to verify when the address is not it', { skip: skip ?? false }, async (t) => {
  const named = makeServerCert(pki, 'api-internal', ['api.internal']);
  const url = await httpsUpstream(t, { cert: readFileSync(named.cert), key: readFileSync(named.key) });
  t.equal((await through(t, `{ urls: "${url}", tls: { ca: "${pki.ca}", servername: api.internal } }`)).status, 200);
  const mismatch = await through(t, `{ urls: "${url}", tls: { ca: "${pki.ca}" } }`);
  t.equal(mismatch.status, 502, 'the certificate is not for 127.0.0.1');
  t.match(mismatch.text, /upstream_tls_error/);
});

t.test('mutual TLS: a client certificate when the upstream asks for one', { skip: skip ?? false }, async (t) => {
  const url = await httpsUpstream(t, { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey), ca: readFileSync(pki.ca), requestCert: true, rejectUnauthorized: true });
  const mutual = await through(t, `{ urls: "${url}", tls: { ca: "${pki.ca}", cert: "${pki.clientCert}", key: "${pki.clientKey}" } }`);
  t.same(mutual, { status: 200, text: 'hello over TLS to client' });
  t.equal((await through(t, `{ urls: "${url}", tls: { ca: "${pki.ca}" } }`)).status, 502, 'refused without one');
});

t.test('veer validate checks the files an upstream names', { skip: skip ?? false }, async (t) => {
  const file = writeConfig(`services:
  - name: svc
    versions:
      - name: v1
        upstream: { urls: "https://127.0.0.1:1", tls: { ca: /nonexistent/ca.pem, cert: "${pki.clientCert}" } }
`);
  const result = await runCli(['validate', '--config', file]);
  t.equal(result.code, 1);
  t.match(result.stderr, /services\[0\]\.versions\[0\]\.upstream\.tls\.ca: cannot read \/nonexistent\/ca\.pem: ENOENT \[config_unreadable\]/);
  t.match(result.stderr, /services\[0\]\.versions\[0\]\.upstream\.tls: cert and key go together/);
});
