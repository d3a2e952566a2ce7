// The etcd store against a secured etcd: mutual TLS (a throwaway CA made
// with openssl at test time), etcd users with `auth enable`, and what an
// operator sees when a file, a certificate or a password is wrong. Real etcd
// and real veer in-process; nothing mocked.

import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Etcd3, type IOptions } from 'etcd3';
import { pino } from 'pino';
import t from 'tap';
import { runValidate } from '../../src/cli/validate.ts';
import { StartupError, startVeer, type Veer } from '../../src/main.ts';
import { admin, countVersions, until } from '../helpers/admin.ts';
import { makePki, opensslMissing, type TestPki } from '../helpers/certs.ts';
import { etcdMissing, startEtcd, uniquePrefix, type TestEtcd } from '../helpers/etcd.ts';
import type { TestScope } from '../helpers/http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstreams.ts';
import { serviceConfig, writeConfig } from '../helpers/veer.ts';

/** Why these tests are skipped (etcd or openssl not installed), or false. */
const skip = etcdMissing() ?? opensslMissing() ?? false;
const PASSWORD = 'pw-Zq7-never-printed';
let pki: TestPki; // etcd's CA: signs its server certificate and veer's client certificate
let other: TestPki; // a CA etcd knows nothing about
let tlsEtcd: TestEtcd; // mutual TLS
let authEtcd: TestEtcd; // plain http, `auth enable`, user veer with readwrite on /veer-test/
let v1: TestUpstream;
let v2: TestUpstream;

t.before(async () => {
  if (skip !== false) return;
  pki = makePki();
  other = makePki('other-ca');
  v1 = await startUpstream('v1');
  v2 = await startUpstream('v2');
  tlsEtcd = await startEtcd({ tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca } });
  authEtcd = await startEtcd();
  const root = new Etcd3({ hosts: authEtcd.endpoint });
  await root.user('root').create('root-pw');
  await root.user('root').addRole('root');
  const role = await root.role('veer-rw').create();
  await role.grant({ permission: 'Readwrite', range: root.range({ prefix: '/veer-test/' }) });
  await root.user('veer').create(PASSWORD);
  await root.user('veer').addRole('veer-rw');
  await root.auth.authEnable();
  root.close();
});
t.teardown(async () => {
  await v1?.close();
  await v2?.close();
  await tlsEtcd?.destroy();
  await authEtcd?.destroy();
  pki?.destroy();
  other?.destroy();
});

/** A config for one service on the etcd store; `etcd` is the YAML under state.etcd. */
const configFor = (etcd: string) =>
  serviceConfig({ versions: { v1: v1.url, v2: v2.url }, weights: { v1: 100, v2: 0 }, top: `state:\n  store: etcd\n  etcd:\n${etcd}` });

let fileCount = 0;

/** Starts veer on `yaml` written to `dir` (a fresh temp dir by default), collecting its log lines. */
async function start(t: TestScope, yaml: string, options: { dir?: string; env?: NodeJS.ProcessEnv } = {}) {
  const configPath = options.dir === undefined ? writeConfig(yaml) : join(options.dir, `veer-${++fileCount}.yaml`);
  if (options.dir !== undefined) writeFileSync(configPath, yaml);
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
  const veer = await startVeer({ configPath, log: pino({ level: 'debug' }, sink), watch: false, env: options.env ?? {} });
  t.teardown(() => veer.stop());
  return { veer, adminUrl: `http://127.0.0.1:${veer.adminAddress.port}`, url: `http://127.0.0.1:${veer.dataAddress.port}`, log: () => lines.join('') };
}

const weightsOf = (veer: Veer) => veer.state.table.servicesByName.get('svc')!.split.weights;
const readyz = async (adminUrl: string) => (await admin<{ store: { status: string; error?: string; serving?: string } }>(adminUrl, 'GET', '/readyz')).body;
const raw = (t: TestScope, options: IOptions) => {
  const client = new Etcd3(options);
  t.teardown(() => client.close());
  return client;
};
/** The etcd3 client's credentials for `files`: its CA, client certificate and key. */
const mtls = (files: TestPki): IOptions['credentials'] => ({
  rootCertificate: readFileSync(files.ca),
  certChain: readFileSync(files.clientCert),
  privateKey: readFileSync(files.clientKey),
});

t.test('mutual TLS: veer starts, a weight change is stored in etcd, a second replica serves it', { skip }, async (t) => {
  const prefix = uniquePrefix();
  // The etcd really insists on a client certificate: a client with only the CA is turned away.
  const anonymous = raw(t, { hosts: tlsEtcd.endpoint, credentials: { rootCertificate: readFileSync(pki.ca) }, defaultCallOptions: { deadline: Date.now() + 3000 } });
  await t.rejects(anonymous.get(`${prefix}x`).string(), 'no client certificate, no access');

  // Replica A: paths relative to its config file's directory (the PKI dir), not to the process's cwd.
  const a = await start(t, configFor(`    endpoints: [${tlsEtcd.endpoint}]\n    prefix: "${prefix}"\n    tls: { ca: ca.crt, cert: client.crt, key: client.key }\n`), { dir: pki.dir });
  // Replica B: absolute paths.
  const b = await start(t, configFor(`    endpoints: [${tlsEtcd.endpoint}]\n    prefix: "${prefix}"\n    tls: { ca: ${pki.ca}, cert: ${pki.clientCert}, key: ${pki.clientKey} }\n`));
  t.match(await readyz(a.adminUrl), { store: { status: 'ok' } }, 'A reaches etcd');
  t.match(await readyz(b.adminUrl), { store: { status: 'ok' } }, 'B reaches etcd');

  const put = await admin(a.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights: { v1: 20, v2: 80 } } });
  t.equal(put.status, 200, JSON.stringify(put.body));
  const client = raw(t, { hosts: tlsEtcd.endpoint, credentials: mtls(pki) });
  const stored = JSON.parse((await client.get(`${prefix}services/svc`).string()) ?? 'null') as { weights?: Record<string, number> } | null;
  t.same(stored?.weights, { v1: 20, v2: 80 }, 'the record is in etcd');
  t.ok(await until(() => weightsOf(b.veer).v2 === 80, 3000), 'B applied it');
  const counts = await countVersions(b.url, 200);
  t.ok((counts.v2 ?? 0) > 120 && (counts.v1 ?? 0) > 10, `B splits 20/80: ${JSON.stringify(counts)}`);
  const body = JSON.stringify(await readyz(a.adminUrl)) + JSON.stringify((await admin(a.adminUrl, 'GET', '/api/v1/services')).body) + a.log();
  t.notMatch(body, /BEGIN|PRIVATE KEY/, 'no certificate or key contents in /readyz, the API or the log');
});

t.test('a CA that did not sign etcd: veer serves the config weights, degraded, and says the certificate is not trusted', { skip }, async (t) => {
  const prefix = uniquePrefix();
  const v = await start(t, configFor(`    endpoints: [${tlsEtcd.endpoint}]\n    prefix: "${prefix}"\n    tls: { ca: ${other.ca}, cert: ${pki.clientCert}, key: ${pki.clientKey} }\n`));
  const health = await readyz(v.adminUrl);
  t.match(health.store, { status: 'degraded', serving: /config's initial weights/ });
  t.match(health.store.error, /TLS to etcd failed: etcd's server certificate is not trusted \(.*(verify|certificate).*\); state\.etcd\.tls\.ca must be the CA/);
  t.notMatch(health.store.error, /DEADLINE|timed? ?out/i, 'the cause, not a timeout');
  t.match(v.log(), /"err":"TLS to etcd failed: [^"]*","msg":"etcd is unreachable at start/, 'the start-up warning carries it too');
  t.same(weightsOf(v.veer), { v1: 100, v2: 0 }, "it serves the config's weights");
  const put = await admin(v.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights: { v1: 50, v2: 50 } } });
  t.match(put, { status: 503, body: { error: { code: 'store_unavailable' } } }, 'writes are refused');

  // A client certificate from a CA etcd does not trust: etcd's refusal, named as such.
  const foreign = await start(t, configFor(`    endpoints: [${tlsEtcd.endpoint}]\n    prefix: "${prefix}"\n    tls: { ca: ${pki.ca}, cert: ${other.clientCert}, key: ${other.clientKey} }\n`));
  t.match((await readyz(foreign.adminUrl)).store, { status: 'degraded', error: /etcd refused veer's client certificate .*state\.etcd\.tls\.cert/ });
});

t.test('etcd users: the right password reads and writes, a wrong one is refused by name and never shown', { skip }, async (t) => {
  const prefix = uniquePrefix();
  await t.rejects(raw(t, { hosts: authEtcd.endpoint }).get(`${prefix}x`).string(), 'auth is on: no user, no access');
  const etcd = `    endpoints: [${authEtcd.endpoint}]\n    prefix: "${prefix}"\n    auth: { username: veer, password: "\${ETCD_PASSWORD}" }\n`;
  const good = await start(t, configFor(etcd), { env: { ETCD_PASSWORD: PASSWORD } });
  t.match(await readyz(good.adminUrl), { store: { status: 'ok' } });
  const put = await admin(good.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights: { v1: 30, v2: 70 } } });
  t.equal(put.status, 200, JSON.stringify(put.body));
  const root = raw(t, { hosts: authEtcd.endpoint, auth: { username: 'veer', password: PASSWORD } });
  t.match(JSON.parse((await root.get(`${prefix}services/svc`).string()) ?? 'null'), { weights: { v1: 30, v2: 70 } }, 'stored as user veer');
  t.ok(await until(() => good.veer.runtime.leadership.isLeader(), 3000), 'leader election works under auth');

  const bad = await start(t, configFor(etcd), { env: { ETCD_PASSWORD: 'wrong-Xy9-also-secret' } });
  const health = await readyz(bad.adminUrl);
  t.match(health.store, { status: 'degraded', error: /etcd refused the user of state\.etcd\.auth: authentication failed, invalid user ID or password/ });
  t.same(weightsOf(bad.veer), { v1: 100, v2: 0 }, "it serves the config's weights");
  const everything = [
    JSON.stringify(health),
    JSON.stringify((await admin(bad.adminUrl, 'GET', '/api/v1/services')).body),
    JSON.stringify((await admin(bad.adminUrl, 'GET', '/api/v1/history')).body),
    JSON.stringify((await admin(bad.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights: { v1: 1, v2: 1 } } })).body),
    bad.log(),
    good.log(),
  ].join('\n');
  t.match(everything, /authentication failed/, 'the collected output does hold the error');
  t.notMatch(everything, /wrong-Xy9-also-secret/, 'but never the wrong password');
  t.notMatch(everything, new RegExp(PASSWORD), 'nor the right one');
});

t.test('TLS files that cannot be read or used stop start-up and `veer validate`, naming the key and the file', { skip: opensslMissing() ?? false }, async (t) => {
  // Its own PKI: this test needs openssl but no etcd.
  const files = makePki();
  const foreign = makePki('other-ca');
  t.teardown(() => {
    files.destroy();
    foreign.destroy();
  });
  const notPem = join(files.dir, 'not-pem.crt');
  writeFileSync(notPem, 'hello\n');
  copyFileSync(foreign.clientKey, join(files.dir, 'foreign.key'));
  const cases: [string, Record<string, unknown>][] = [
    ['    tls: { ca: missing/ca.crt }\n', { code: 'config_unreadable', path: 'state.etcd.tls.ca', line: 6, column: 16, message: /^cannot read \/.*\/missing\/ca\.crt: ENOENT$/ }],
    ['    tls: { ca: not-pem.crt }\n', { code: 'invalid_etcd_tls', path: 'state.etcd.tls.ca', message: /not-pem\.crt is not a PEM file/ }],
    ['    tls: { ca: ca.crt, cert: client.crt, key: foreign.key }\n', { code: 'invalid_etcd_tls', path: 'state.etcd.tls.key', message: /the client certificate and key cannot be used for TLS: .*mismatch/ }],
  ];
  for (const [tls, expected] of cases) {
    const file = join(files.dir, `bad-${++fileCount}.yaml`);
    writeFileSync(file, `state:\n  store: etcd\n  etcd:\n    endpoints: [https://127.0.0.1:1]\n    prefix: /veer-test/\n${tls}services:\n  - name: svc\n    versions: [{ name: v1, upstream: http://127.0.0.1:1 }]\n`);
    const err = await startVeer({ configPath: file, log: pino({ level: 'silent' }), watch: false, env: {} }).catch((e: unknown) => e);
    t.ok(err instanceof StartupError, `${tls.trim()}: start-up stops`);
    t.match((err as StartupError).issues, [expected], `${tls.trim()}: the issue names the key`);
    const printed: string[] = [];
    t.equal(await runValidate(file, () => {}, (s) => printed.push(s)), 1, `${tls.trim()}: veer validate exits 1`);
    t.match(printed[0], new RegExp(`:\\d+:\\d+ ${String(expected.path).replace(/\./g, '\\.')}: .* \\[${String(expected.code)}\\]$`), 'and prints it like any config error');
  }
  // A store that is not etcd reads no TLS files: a file store config with a stale etcd section still starts.
  const fileStore = await startVeer({
    configPath: writeConfig(`listen: 127.0.0.1:0\nadmin: { listen: 127.0.0.1:0 }\nstate: { store: file, path: state.json, etcd: { endpoints: [https://127.0.0.1:1], tls: { ca: /nowhere/ca.crt } } }\nservices:\n  - name: svc\n    versions: [{ name: v1, upstream: http://127.0.0.1:1 }]\n`),
    log: pino({ level: 'silent' }),
    watch: false,
    env: {},
  });
  await fileStore.stop();
});
