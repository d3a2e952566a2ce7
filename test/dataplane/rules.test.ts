// `rules:` (Gateway API's HTTPRouteRule) through real requests: matches,
// precedence across services of one host, splits, filters and timeouts.

import t from 'tap';
import { formatRequest, rawRequest, waitFor, type TestScope } from '../helpers/http.ts';
import { startUpstream } from '../helpers/upstreams.ts';
import { runVeerIn, type RunningVeer } from '../helpers/veer.ts';

interface Answer {
  status: number;
  upstream: string | null;
  headers: Record<string, string[]>;
  echo: { url: string; method: string; headers: Record<string, string> } | null;
}

async function send(veer: RunningVeer, method: string, target: string, headers: [string, string][] = [], body = ''): Promise<Answer> {
  const all: [string, string][] = [...headers, ['Connection', 'close']];
  if (body !== '') all.push(['Content-Length', String(Buffer.byteLength(body))]);
  const res = await rawRequest(veer.veer.dataAddress.port, formatRequest(method, target, all, body));
  const text = res.body.toString();
  const echo = res.headers['content-type']?.[0]?.startsWith('application/json') && res.headers['x-upstream'] ? JSON.parse(text) : null;
  return { status: res.status, upstream: res.headers['x-upstream']?.[0] ?? null, headers: res.headers, echo };
}

async function upstreams(t: TestScope, ...names: string[]) {
  const out: Record<string, string> = {};
  for (const name of names) {
    const up = await startUpstream(name);
    t.teardown(() => up.close());
    out[name] = up.url;
  }
  return out;
}

const HEAD = `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: silent }
`;

t.test('matches: path kinds, method, headers, query and cookies; a rule without `to` uses the service split', async (t) => {
  const u = await upstreams(t, 'v1', 'v2', 'v3');
  const veer = await runVeerIn(
    t,
    `${HEAD}services:
  - name: shop
    versions:
      - { name: v1, upstream: ${u.v1} }
      - { name: v2, upstream: ${u.v2} }
      - { name: v3, upstream: ${u.v3} }
    split: { weights: { v1: 100, v2: 0, v3: 0 } }
    rules:
      - matches: [{ path: { type: Exact, value: /exact } }]
        to: v2
      - matches: [{ path: { type: RegularExpression, value: "/items/[0-9]+" } }]
        to: v3
      - matches: [{ path: { type: PathPrefix, value: /api }, method: POST }]
        to: v2
      - matches:
          - { path: { value: /api }, headers: [{ name: X-Canary, value: "1" }, { name: x-team, type: RegularExpression, value: "qa-[0-9]+" }] }
          - { queryParams: [{ name: beta, type: Present }] }
          - { cookies: [{ name: pilot, value: "yes" }] }
        to: v3
      - matches: [{ path: { value: /api } }]
`,
  );
  const cases: [string, string, [string, string][], number, string | null][] = [
    ['GET', '/exact', [], 200, 'v2'],
    ['GET', '/exact?x=1', [], 200, 'v2'],
    ['GET', '/exact/more', [], 404, null],
    ['GET', '/items/42', [], 200, 'v3'],
    ['GET', '/items/42x', [], 404, null],
    ['POST', '/api/orders', [], 200, 'v2'],
    ['GET', '/api/orders', [], 200, 'v1'],
    ['GET', '/apix', [], 404, null],
    ['GET', '/api', [['x-canary', '1'], ['X-Team', 'qa-7']], 200, 'v3'],
    ['GET', '/api', [['x-canary', '1'], ['X-Team', 'qa-7b']], 200, 'v1'],
    ['GET', '/anything?beta', [], 200, 'v3'],
    ['GET', '/anything', [['Cookie', 'a=1; pilot=yes']], 200, 'v3'],
    ['GET', '/anything', [], 404, null],
  ];
  for (const [method, target, headers, status, upstream] of cases) {
    const res = await send(veer, method, target, [['Host', 'shop.test'], ...headers]);
    t.equal(res.status, status, `${method} ${target} ${JSON.stringify(headers)}: ${status}`);
    t.equal(res.upstream, upstream, `${method} ${target}: ${upstream}`);
  }
});

t.test('precedence across the services of one host: exact, longest prefix, method, headers, query, then config order', async (t) => {
  const u = await upstreams(t, 'a', 'b', 'c', 'd', 'e', 'f');
  const svc = (name: string, rules: string) => `  - name: ${name}
    match: { hosts: [shop.test] }
    versions: [{ name: v1, upstream: ${u[name]} }]
    rules:
${rules}`;
  const veer = await runVeerIn(
    t,
    `${HEAD}services:
${svc('a', '      - matches: [{ path: { value: / } }]\n')}${svc('b', '      - matches: [{ path: { value: /x } }]\n')}${svc('c', '      - matches: [{ path: { type: Exact, value: /x } }]\n')}${svc('d', '      - matches: [{ path: { value: /x }, method: GET }]\n')}${svc('e', '      - matches: [{ path: { value: /x/y }, headers: [{ name: h, value: "1" }] }]\n      - matches: [{ path: { value: /x/y }, queryParams: [{ name: q, value: "1" }] }]\n')}${svc('f', '      - matches: [{ path: { value: /x/y }, queryParams: [{ name: q, value: "1" }, { name: r, value: "1" }] }]\n')}`,
  );
  const cases: [string, string, [string, string][], string][] = [
    ['GET', '/x', [], 'c'],
    ['POST', '/x', [], 'c'],
    ['GET', '/x/z', [], 'd'],
    ['POST', '/x/z', [], 'b'],
    ['DELETE', '/other', [], 'a'],
    ['GET', '/x/y?q=1&r=1', [['h', '1']], 'e'],
    ['GET', '/x/y?q=1&r=1', [], 'f'],
    ['GET', '/x/y?q=1', [], 'e'],
    ['GET', '/x/y', [], 'd'],
  ];
  for (const [method, target, headers, want] of cases) {
    const res = await send(veer, method, target, [['Host', 'shop.test'], ...headers]);
    t.equal(res.upstream, want, `${method} ${target} ${JSON.stringify(headers)} -> ${want}`);
  }
});

t.test('filters: header modifiers both ways, rewrites, redirects, timeouts, mirror', async (t) => {
  let slowRelease: (() => void) | null = null;
  const mirrored: string[] = [];
  const v1 = await startUpstream('v1');
  const v2 = await startUpstream('v2', (req, res) => {
    if (req.url?.startsWith('/slow')) {
      slowRelease = () => res.end('late');
      setTimeout(() => slowRelease?.(), 3000).unref();
      return;
    }
    res.writeHead(200, { 'x-upstream': 'v2', 'content-type': 'application/json', server: 'upstream', 'x-keep': 'a' });
    res.end(JSON.stringify({ url: req.url, method: req.method, headers: req.headers }));
  });
  const shadow = await startUpstream('shadow', (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      mirrored.push(`${req.method} ${req.url} ${req.headers['x-veer-version']} ${body}`);
      res.end();
    });
  });
  for (const up of [v1, v2, shadow]) t.teardown(() => up.close());
  const veer = await runVeerIn(
    t,
    `${HEAD}services:
  - name: shop
    versions:
      - { name: v1, upstream: ${v1.url} }
      - { name: v2, upstream: ${v2.url} }
      - { name: shadow, upstream: ${shadow.url} }
    split: { weights: { v1: 100, v2: 0, shadow: 0 } }
    rules:
      - matches: [{ path: { value: /headers } }]
        to: v2
        filters:
          - requestHeaderModifier: { set: [{ name: X-Env, value: canary }], add: [{ name: x-add, value: two }], remove: [x-debug] }
          - responseHeaderModifier: { set: [{ name: x-keep, value: b }], add: [{ name: x-extra, value: "1" }], remove: [server] }
      - matches: [{ path: { value: /old } }]
        to: v2
        filters: [{ urlRewrite: { hostname: internal.test, path: { type: ReplacePrefixMatch, replacePrefixMatch: /new } } }]
      - matches: [{ path: { value: /strip } }]
        to: v2
        filters: [{ urlRewrite: { path: { type: ReplacePrefixMatch, replacePrefixMatch: / } } }]
      - matches: [{ path: { value: /full } }]
        to: v2
        filters: [{ urlRewrite: { path: { type: ReplaceFullPath, replaceFullPath: /replaced } } }]
      - matches: [{ path: { value: /moved } }]
        filters: [{ requestRedirect: { scheme: https, hostname: example.test, statusCode: 301 } }]
      - matches: [{ path: { value: /port } }]
        filters: [{ requestRedirect: { port: 8443, path: { type: ReplaceFullPath, replaceFullPath: /elsewhere } } }]
      - matches: [{ path: { value: /slow } }]
        to: v2
        timeouts: { request: 300ms }
      - matches: [{ path: { value: /mirror } }]
        to: v2
        filters: [{ requestMirror: { to: shadow } }]
`,
  );
  const h = await send(veer, 'GET', '/headers', [['Host', 'shop.test'], ['x-env', 'prod'], ['x-add', 'one'], ['X-Debug', '1']]);
  t.equal(h.echo?.headers['x-env'], 'canary', 'set replaces the client value');
  t.equal(h.echo?.headers['x-add'], 'one, two', 'add appends');
  t.equal(h.echo?.headers['x-debug'], undefined, 'remove drops');
  t.same(h.headers['x-keep'], ['b'], 'response set replaces');
  t.same(h.headers['x-extra'], ['1'], 'response add');
  t.equal(h.headers.server, undefined, 'response remove');

  const r1 = await send(veer, 'GET', '/old/a?x=1', [['Host', 'shop.test']]);
  t.equal(r1.echo?.url, '/new/a?x=1', 'ReplacePrefixMatch keeps the rest and the query');
  t.equal(r1.echo?.headers.host, 'internal.test', 'hostname rewrite sets Host');
  t.equal(r1.echo?.headers['x-forwarded-host'], 'shop.test', 'the client host stays in x-forwarded-host');
  t.equal((await send(veer, 'GET', '/strip/three', [['Host', 'shop.test']])).echo?.url, '/three');
  t.equal((await send(veer, 'GET', '/strip', [['Host', 'shop.test']])).echo?.url, '/');
  t.equal((await send(veer, 'GET', '/full/x?y=1', [['Host', 'shop.test']])).echo?.url, '/replaced?y=1');

  const moved = await send(veer, 'GET', '/moved/a?b=c', [['Host', 'shop.test:8080']]);
  t.equal(moved.status, 301);
  t.same(moved.headers.location, ['https://example.test/moved/a?b=c'], 'scheme changed: its default port, left out');
  const port = await send(veer, 'GET', '/port', [['Host', 'shop.test']]);
  t.equal(port.status, 302, 'statusCode defaults to 302');
  t.same(port.headers.location, ['http://shop.test:8443/elsewhere']);

  const started = Date.now();
  const slow = await send(veer, 'GET', '/slow', [['Host', 'shop.test']]);
  t.equal(slow.status, 504, 'timeouts.request answers 504');
  t.ok(Date.now() - started < 2500, 'well before the upstream answers');

  const m = await send(veer, 'POST', '/mirror/x', [['Host', 'shop.test']], 'hello');
  t.equal(m.upstream, 'v2', 'the real request is answered by its version');
  t.equal(m.echo?.method, 'POST');
  t.ok(await waitFor(() => mirrored.length === 1), 'the copy arrives');
  t.equal(mirrored[0], 'POST /mirror/x shadow hello', 'with method, path, its version and the body');
  const metrics = await (await fetch(`${veer.adminUrl}/metrics`)).text();
  t.match(metrics, /veer_mirror_requests_total\{service="shop",version="shadow",result="sent"\} 1/);
});
