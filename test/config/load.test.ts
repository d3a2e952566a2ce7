import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { deepFreeze, formatConfigPath, loadConfigFile, parseConfigText, type ConfigIssue } from '../../src/config/index.ts';
import { checkConfigText, listFixtures, readFixture } from '../helpers/fixtures.ts';
import { ROOT } from '../helpers/veer.ts';

const ONE_SERVICE = `services:
  - name: shop
    versions:
      - name: v1
        upstream: http://127.0.0.1:3001
`;

function issuesOf(text: string, env: NodeJS.ProcessEnv = {}): readonly ConfigIssue[] {
  const result = parseConfigText(text, env);
  if (result.ok) throw new Error('expected the config to be refused');
  return result.issues;
}

t.test('every valid fixture loads and compiles', async (t) => {
  const fixtures = listFixtures('valid');
  t.ok(fixtures.length >= 4, 'there are valid fixtures');
  for (const f of fixtures) {
    t.same(f.expect, [], `${f.name} expects no issues`);
    const result = checkConfigText(f.text, f.env);
    t.ok(result.ok, `${f.name} is valid${result.ok ? '' : `: ${JSON.stringify(result.issues)}`}`);
  }
});

t.test('the example config/veer.yaml loads and compiles', async (t) => {
  const f = readFixture(join(ROOT, 'config', 'veer.yaml'));
  const result = checkConfigText(f.text, {});
  t.ok(result.ok, result.ok ? 'valid' : JSON.stringify(result.issues));
  if (result.ok) t.same(result.compiled.table.services.map((s) => s.name), ['shop']);
});

t.test('every invalid fixture fails with exactly the issues it states', async (t) => {
  const fixtures = listFixtures('invalid');
  t.ok(fixtures.length >= 15, 'there are invalid fixtures');
  for (const f of fixtures) {
    t.test(f.name, async (t) => {
      t.ok(f.expect.length > 0, 'states what it expects');
      const result = checkConfigText(f.text, f.env);
      t.notOk(result.ok, 'is refused');
      if (result.ok) return;
      const actual = result.issues.map((i) => `${i.path} ${i.code} ${i.line}:${i.column}`).sort();
      const expected = f.expect.map((e) => `${e.path} ${e.code} ${e.line}:${e.column}`).sort();
      t.same(actual, expected, 'path, code and line:column of every issue');
      for (const e of f.expect) {
        if (e.messageIncludes === undefined) continue;
        const found = result.issues.find((i) => i.path === e.path && i.code === e.code && i.message.includes(e.messageIncludes!));
        t.ok(found, `${e.path} [${e.code}] says ${JSON.stringify(e.messageIncludes)}`);
      }
    });
  }
});

t.test('defaults are filled in', async (t) => {
  const result = parseConfigText(ONE_SERVICE, {});
  t.ok(result.ok);
  if (!result.ok) return;
  const c = result.config;
  t.equal(c.listen, '0.0.0.0:8080');
  t.equal(c.admin.listen, '127.0.0.1:9901');
  t.equal(c.admin.token, undefined);
  t.equal(c.workers, 1);
  t.same(c.state, { store: 'file', path: 'var/veer-state.json' });
  t.same(c.log, { level: 'info', access: false });
  t.equal(c.exposeVersionHeader, true);
  t.equal(c.drainTimeout, '25s');
  const s = c.services[0]!;
  t.same(s.match, { pathPrefix: '/' });
  t.same(s.timeouts, { connect: '2s', response: '30s' });
  t.same(s.routes, []);
  t.equal(s.split, undefined);
});

t.test('defaults fill the parts of a section that are missing, and keep the rest', async (t) => {
  const result = parseConfigText(`state: { store: etcd, etcd: { endpoints: [http://127.0.0.1:2379] } }\n${ONE_SERVICE}    timeouts: { response: 5s }\n    match: { hosts: [a.example.com] }\n`, {});
  t.ok(result.ok);
  if (!result.ok) return;
  t.same(result.config.state, { store: 'etcd', path: 'var/veer-state.json', etcd: { endpoints: ['http://127.0.0.1:2379'], prefix: '/veer/' } });
  t.same(result.config.services[0]!.timeouts, { connect: '2s', response: '5s' });
  t.same(result.config.services[0]!.match, { hosts: ['a.example.com'], pathPrefix: '/' });
});

t.test('the returned config is deeply frozen', async (t) => {
  const result = parseConfigText(`${ONE_SERVICE}    split: { weights: { v1: 100 } }\n`, {});
  t.ok(result.ok);
  if (!result.ok) return;
  const c = result.config as unknown as { services: { versions: { name: string }[]; split: { weights: Record<string, number> } }[]; listen: string };
  t.ok(Object.isFrozen(c));
  t.ok(Object.isFrozen(c.services));
  t.ok(Object.isFrozen(c.services[0]!.versions[0]));
  t.ok(Object.isFrozen(c.services[0]!.split.weights));
  // ES modules run in strict mode: writing to a frozen object throws.
  t.throws(() => {
    c.listen = 'x';
  }, TypeError);
  t.throws(() => {
    c.services[0]!.split.weights.v1 = 5;
  }, TypeError);
  t.throws(() => {
    c.services.push(c.services[0]!);
  }, TypeError);
  t.equal(c.services[0]!.split.weights.v1, 100);
});

t.test('deepFreeze freezes nested data in place and returns it', async (t) => {
  const data = { a: [{ b: 1 }], c: { d: { e: 'x' } } };
  t.equal(deepFreeze(data), data);
  t.ok(Object.isFrozen(data.a[0]));
  t.ok(Object.isFrozen(data.c.d));
});

t.test('${VAR} substitution', async (t) => {
  const yaml = (token: string) => `admin:\n  token: ${token}\n${ONE_SERVICE}`;
  const tokenOf = (text: string, env: NodeJS.ProcessEnv) => {
    const result = parseConfigText(text, env);
    if (!result.ok) throw new Error(JSON.stringify(result.issues));
    return result.config.admin.token;
  };
  t.equal(tokenOf(yaml('${T}'), { T: 'abc' }), 'abc', 'a set variable is substituted');
  t.equal(tokenOf(yaml('"pre-${T}-${U}-post"'), { T: 'a', U: 'b' }), 'pre-a-b-post', 'several in one value');
  t.equal(tokenOf(yaml('${T:-fallback}'), {}), 'fallback', 'unset with a default');
  t.equal(tokenOf(yaml('${T:-fallback}'), { T: '' }), 'fallback', 'empty with a default (as in a shell)');
  t.equal(tokenOf(yaml('${T:-fallback}'), { T: 'set' }), 'set', 'a set variable beats the default');
  t.equal(tokenOf(yaml('${T:-}'), {}), '', 'an empty default');
  t.equal(tokenOf(yaml('${T}'), { T: '' }), '', 'set to empty is not unset');
  t.equal(tokenOf(yaml('"a$$b"'), {}), 'a$b', '$$ is a literal dollar');
  t.equal(tokenOf(yaml('"$${T}"'), { T: 'no' }), '${T}', '$${T} is not a reference');
  t.equal(tokenOf(yaml('"cost $5"'), {}), 'cost $5', 'a lone $ stays');
  t.equal(tokenOf(yaml('${T}'), { T: 'a: b # not a comment, [x]' }), 'a: b # not a comment, [x]', 'values are not parsed as YAML');

  const unset = issuesOf(yaml('${VEER_TEST_NOT_SET}'), {});
  t.equal(unset.length, 1);
  t.match(unset[0], { code: 'env_unset', path: 'admin.token', line: 2, column: 10 });
  t.match(unset[0]!.message, /VEER_TEST_NOT_SET/, 'names the variable');

  const malformed = issuesOf(yaml('"${1BAD} ${open"'), {});
  t.same(
    malformed.map((i) => [i.code, i.path]),
    [
      ['env_syntax', 'admin.token'],
      ['env_syntax', 'admin.token'],
    ],
  );
});

t.test('substitution reaches list items and nested values, not keys', async (t) => {
  const text = `services:
  - name: shop
    versions:
      - name: v1
        upstream:
          - \${A}
          - \${B:-http://127.0.0.1:3002}
    routes:
      - match: { header: { name: "\${H}", value: "\${V}" } }
        to: v1
`;
  const result = parseConfigText(text, { A: 'http://127.0.0.1:3001', H: 'x-h', V: 'on' });
  t.ok(result.ok);
  if (!result.ok) return;
  t.same(result.config.services[0]!.versions[0]!.upstream, ['http://127.0.0.1:3001', 'http://127.0.0.1:3002']);
  t.same(result.config.services[0]!.routes[0]!.match.header, { name: 'x-h', value: 'on' });

  const missing = issuesOf(text, { H: 'x-h', V: 'on' });
  t.match(missing, [{ code: 'env_unset', path: 'services[0].versions[0].upstream[0]', line: 6, column: 13 }]);
  t.equal(missing.length, 1);
});

t.test('the admin API off loopback needs a token', async (t) => {
  for (const listen of ['127.0.0.1:9901', '127.1.2.3:9901', 'localhost:9901', '"[::1]:9901"']) {
    t.ok(parseConfigText(`admin: { listen: ${listen} }\n${ONE_SERVICE}`, {}).ok, `${listen} without a token`);
  }
  for (const listen of ['0.0.0.0:9901', '10.0.0.1:9901', '"[::]:9901"', '9901', 'example.com:9901']) {
    const issues = issuesOf(`admin: { listen: ${listen} }\n${ONE_SERVICE}`, {});
    t.match(issues, [{ code: 'admin_token_required', path: 'admin.listen', line: 1, column: 18 }], `${listen} without a token`);
    t.ok(parseConfigText(`admin: { listen: ${listen}, token: t0k }\n${ONE_SERVICE}`, {}).ok, `${listen} with a token`);
  }
  const empty = issuesOf(`admin: { listen: 0.0.0.0:9901, token: "\${EMPTY:-}" }\n${ONE_SERVICE}`, {});
  t.match(empty, [{ code: 'admin_token_required' }], 'an empty token is no token');
});

t.test('state.store etcd needs state.etcd', async (t) => {
  t.match(issuesOf(`state: { store: etcd }\n${ONE_SERVICE}`), [{ code: 'required', path: 'state.etcd', line: 1, column: 8 }]);
  t.match(issuesOf(`state: { store: redis }\n${ONE_SERVICE}`), [{ code: 'schema', path: 'state.store', message: /"file" or "etcd"/ }]);
  t.ok(parseConfigText(`state: { store: etcd, etcd: { endpoints: [http://127.0.0.1:2379] } }\n${ONE_SERVICE}`, {}).ok);
});

t.test('state.etcd tls and auth: shape, cert with key, schemes that agree with tls', async (t) => {
  const etcd = (body: string) => `state:\n  store: etcd\n  etcd:\n${body}${ONE_SERVICE}`;
  const https = '    endpoints: [https://etcd-0:2379, https://etcd-1:2379]\n';
  const full = parseConfigText(etcd(`${https}    tls: { ca: ca.crt, cert: c.crt, key: c.key }\n    auth: { username: veer, password: "\${PW}" }\n`), { PW: 's3cret' });
  t.ok(full.ok, full.ok ? 'valid' : JSON.stringify(full.issues));
  if (full.ok) t.same(full.config.state.etcd, { endpoints: ['https://etcd-0:2379', 'https://etcd-1:2379'], prefix: '/veer/', tls: { ca: 'ca.crt', cert: 'c.crt', key: 'c.key' }, auth: { username: 'veer', password: 's3cret' } });
  t.ok(parseConfigText(etcd(`${https}    tls: { ca: ca.crt }\n`), {}).ok, 'a CA alone (server-only TLS)');
  t.ok(parseConfigText(etcd(`${https}`), {}).ok, 'https without tls: the system CAs');
  t.ok(parseConfigText(etcd(`    endpoints: [http://etcd-0:2379]\n    auth: { username: veer, password: pw }\n`), {}).ok, 'auth over plain http');

  t.match(issuesOf(etcd(`${https}    tls: { cert: c.crt }\n`)), [{ code: 'invalid_etcd_tls', path: 'state.etcd.tls.cert', line: 5, column: 18, message: /without state\.etcd\.tls\.key/ }]);
  t.match(issuesOf(etcd(`${https}    tls: { key: c.key }\n`)), [{ code: 'invalid_etcd_tls', path: 'state.etcd.tls.key', message: /without state\.etcd\.tls\.cert/ }]);
  t.match(issuesOf(etcd(`    endpoints: [http://etcd-0:2379]\n    tls: { ca: ca.crt }\n`)), [
    { code: 'invalid_etcd_tls', path: 'state.etcd.tls', line: 5, column: 10, message: 'tls is set but every endpoint is http://; use https:// endpoints' },
  ]);
  t.match(issuesOf(etcd(`    endpoints: [https://etcd-0:2379, http://etcd-1:2379]\n`)), [
    { code: 'invalid_etcd_endpoint', path: 'state.etcd.endpoints[1]', line: 4, column: 38, message: /mixes http:\/\/ and https:\/\// },
  ]);
  t.match(issuesOf(etcd(`    endpoints: [etcd-0:2379]\n`)), [{ code: 'schema', path: 'state.etcd.endpoints[0]', message: /must be an http:\/\/ or https:\/\/ URL/ }]);
  t.match(issuesOf(etcd(`${https}    tls: { ca: "" }\n`)), [{ code: 'schema', path: 'state.etcd.tls.ca' }]);
  t.match(issuesOf(etcd(`${https}    tls: { cacert: ca.crt }\n`)), [{ code: 'unknown_key', path: 'state.etcd.tls.cacert', message: /expected one of: ca, cert, key/ }]);
  t.match(issuesOf(etcd(`${https}    auth: { username: veer }\n`)), [{ code: 'required', path: 'state.etcd.auth.password', line: 5, column: 11 }]);
  const unset = issuesOf(etcd(`${https}    auth: { username: veer, password: "\${ETCD_PASSWORD}" }\n`));
  t.match(unset, [{ code: 'env_unset', path: 'state.etcd.auth.password', message: /ETCD_PASSWORD/ }], 'an unset password variable names the variable');
});

t.test('schema messages', async (t) => {
  const far = issuesOf(`${ONE_SERVICE}    zzzzzz: 1\n`);
  t.equal(far.length, 1);
  t.match(far[0], { code: 'unknown_key', path: 'services[0].zzzzzz', line: 6, column: 5 });
  t.notMatch(far[0]!.message, /did you mean/, 'no suggestion when nothing is close');
  t.match(far[0]!.message, /expected one of: name, match, versions/);

  t.match(issuesOf(`workers: 0\n${ONE_SERVICE}`), [{ code: 'schema', path: 'workers' }]);
  t.match(issuesOf(`${ONE_SERVICE}    split: { weights: { v1: ten } }\n`), [{ code: 'schema', path: 'services[0].split.weights.v1', message: 'must be number' }]);
  t.match(issuesOf(`${ONE_SERVICE}    match: { pathPrefix: api }\n`), [{ code: 'schema', path: 'services[0].match.pathPrefix' }]);
  t.match(issuesOf(`${ONE_SERVICE}    split: { weights: { v1: 1 }, sticky: { header: x, cookie: y } }\n`), [
    { code: 'schema', path: 'services[0].split.sticky', message: /one of \{ header: NAME \}/ },
  ]);
  t.match(issuesOf('services: []\n'), [{ code: 'schema', path: 'services' }]);
  t.match(issuesOf('listen: 1\n'), [{ code: 'required', path: 'services', line: 1, column: 1 }]);
  t.match(issuesOf(''), [{ code: 'required', path: 'services', line: 1, column: 1 }], 'an empty file');
  t.match(issuesOf('- a\n- b\n'), [{ code: 'schema', path: '(root)', line: 1, column: 1 }], 'a list, not a mapping');
});

t.test('loadConfigFile reads a file, and refuses one it cannot read', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'veer-load-'));
  const file = join(dir, 'veer.yaml');
  writeFileSync(file, ONE_SERVICE);
  const ok = await loadConfigFile(file, {});
  t.ok(ok.ok);
  t.equal(ok.text, ONE_SERVICE);

  const missing = await loadConfigFile(join(dir, 'nope.yaml'), {});
  t.notOk(missing.ok);
  if (!missing.ok) {
    t.match(missing.issues, [{ code: 'config_unreadable', message: /nope\.yaml: no such file/ }]);
    t.equal(missing.text, '');
  }
  const directory = await loadConfigFile(dir, {});
  t.match(directory, { ok: false, issues: [{ code: 'config_unreadable', message: /directory/ }] });
});

t.test('formatConfigPath', async (t) => {
  t.equal(formatConfigPath(['services', 0, 'split', 'weights', 'v3']), 'services[0].split.weights.v3');
  t.equal(formatConfigPath(['services', 2, 'versions', 1, 'upstream', 0]), 'services[2].versions[1].upstream[0]');
  t.equal(formatConfigPath([]), '(root)');
});

t.test('a whole-value ${VAR} becomes a number or boolean where the schema wants one, and nowhere else', async (t) => {
  const yaml = `workers: \${W}
exposeVersionHeader: \${X:-false}
services:
  - name: shop
    versions: [{ name: v1, upstream: "http://127.0.0.1:1" }]
    routes: [{ match: { header: { name: a, value: "\${V}" } }, to: v1 }]
    split: { weights: { v1: "\${WT}" } }
`;
  const ok = parseConfigText(yaml, { W: '2', V: '1.10', WT: '7' });
  t.ok(ok.ok, 'valid');
  if (!ok.ok) return;
  t.equal(ok.config.workers, 2);
  t.equal(ok.config.exposeVersionHeader, false);
  t.equal(ok.config.services[0]!.split!.weights.v1, 7);
  t.equal(ok.config.services[0]!.routes[0]!.match.header!.value, '1.10', 'a string field keeps the text as set');
  const bad = parseConfigText(yaml, { W: 'two', V: 'x', WT: '7' });
  t.notOk(bad.ok);
  if (!bad.ok) t.match(bad.issues, [{ path: 'workers', line: 1 }], 'a value that does not read as a number is still an error, at its line');
});
