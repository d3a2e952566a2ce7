// Route rules, hosts and path prefixes, checked through real requests.

import t from 'tap';
import { formatRequest, rawRequest, type TestScope } from '../helpers/http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstreams.ts';
import { runVeerIn, serviceConfig, type RunningVeer } from '../helpers/veer.ts';

async function upstream(t: TestScope, name: string): Promise<TestUpstream> {
  const up = await startUpstream(name);
  t.teardown(() => up.close());
  return up;
}

/** GETs `target` through veer with exactly these headers; returns status, the upstream that answered and the body. */
async function get(veer: RunningVeer, target: string, headers: [string, string][]) {
  const res = await rawRequest(veer.veer.dataAddress.port, formatRequest('GET', target, [...headers, ['Connection', 'close']]));
  const text = res.body.toString();
  const json = res.headers['content-type']?.[0]?.startsWith('application/json') ? (JSON.parse(text) as Record<string, unknown>) : null;
  return { status: res.status, upstream: res.headers['x-upstream']?.[0] ?? null, version: res.headers['x-veer-version']?.[0] ?? null, json };
}

t.test('route rules apply in config order; the first match wins and may target a 0-weight version', async (t) => {
  const v1 = await upstream(t, 'v1');
  const v2 = await upstream(t, 'v2');
  const v3 = await upstream(t, 'v3');
  const veer = await runVeerIn(
    t,
    serviceConfig({
      versions: { v1: v1.url, v2: v2.url, v3: v3.url },
      weights: { v1: 100, v2: 0, v3: 0 },
      extra: `    routes:
      - match: { header: { name: x-canary, value: always } }
        to: v2
      - match: { cookie: { name: beta, value: "1" } }
        to: v3
      - match: { query: { name: preview, present: true } }
        to: v2
      - match: { header: { name: x-team, regex: "^qa-[0-9]+$" } }
        to: v3
`,
    }),
  );
  const host: [string, string] = ['Host', 'app.test'];
  const cases: { name: string; target: string; headers: [string, string][]; want: string }[] = [
    { name: 'no rule matches -> weighted split (v1 has all the weight)', target: '/', headers: [], want: 'v1' },
    { name: 'header rule -> v2 (0 weight)', target: '/', headers: [['X-Canary', 'always']], want: 'v2' },
    { name: 'header with another value does not match', target: '/', headers: [['X-Canary', 'never']], want: 'v1' },
    { name: 'cookie rule -> v3 (0 weight)', target: '/', headers: [['Cookie', 'a=b; beta=1; c=d']], want: 'v3' },
    { name: 'header and cookie: the header rule comes first', target: '/', headers: [['x-canary', 'always'], ['cookie', 'beta=1']], want: 'v2' },
    { name: 'cookie and query: the cookie rule comes first', target: '/page?preview', headers: [['cookie', 'beta=1']], want: 'v3' },
    { name: 'query rule alone -> v2', target: '/page?x=1&preview=yes', headers: [], want: 'v2' },
    { name: 'regex header rule -> v3', target: '/', headers: [['x-team', 'qa-42']], want: 'v3' },
    { name: 'regex that does not match', target: '/', headers: [['x-team', 'qa-x']], want: 'v1' },
    { name: 'query and regex: the query rule comes first', target: '/?preview=1', headers: [['x-team', 'qa-1']], want: 'v2' },
  ];
  for (const c of cases) {
    const res = await get(veer, c.target, [host, ...c.headers]);
    t.equal(res.status, 200, `${c.name}: 200`);
    t.equal(res.upstream, c.want, `${c.name}: served by ${c.want}`);
    t.equal(res.version, c.want, `${c.name}: x-veer-version ${c.want}`);
  }
  t.equal(v2.seen.at(-1)?.url, '/?preview=1', 'the request target reaches the upstream unchanged');
});

t.test('hosts and path prefixes: exact, wildcard, any-host fallback, longest prefix; no match is a JSON 404', async (t) => {
  const names = ['shop-root', 'shop-api', 'shop-api-v2', 'wild', 'any-public', 'any-root-other'] as const;
  const ups: Record<string, TestUpstream> = {};
  for (const name of names) ups[name] = await upstream(t, name);
  const service = (name: string, match: string) => `  - name: ${name}
    match: ${match}
    versions:
      - name: v1
        upstream: ${ups[name]!.url}
`;
  // Services listed short prefix first, so only "longest wins" (not config order) can pick /api/v2.
  const veer = await runVeerIn(
    t,
    `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: silent }
services:
${service('shop-root', '{ hosts: [shop.example.com], pathPrefix: / }')}${service('shop-api', '{ hosts: [shop.example.com], pathPrefix: /api }')}${service(
      'shop-api-v2',
      '{ hosts: [shop.example.com], pathPrefix: /api/v2 }',
    )}${service('wild', '{ hosts: ["*.example.com"], pathPrefix: / }')}${service('any-public', '{ pathPrefix: /public }')}${service(
      'any-root-other',
      '{ hosts: [other.test], pathPrefix: /only }',
    )}`,
  );
  const cases: { host: string | null; target: string; want: string | null }[] = [
    { host: 'shop.example.com', target: '/', want: 'shop-root' },
    { host: 'shop.example.com', target: '/cart', want: 'shop-root' },
    { host: 'shop.example.com', target: '/api/items', want: 'shop-api' },
    { host: 'shop.example.com', target: '/api/v2/items', want: 'shop-api-v2' },
    { host: 'SHOP.Example.COM:8080', target: '/api/v2/x', want: 'shop-api-v2' },
    { host: 'shop.example.com.', target: '/api/x', want: 'shop-api' },
    { host: 'cdn.example.com', target: '/anything', want: 'wild' },
    { host: 'a.b.EXAMPLE.com:443', target: '/', want: 'wild' },
    { host: 'example.com', target: '/public/logo.png', want: 'any-public' },
    { host: 'other.test', target: '/public/x', want: 'any-public' },
    { host: 'other.test', target: '/only/here', want: 'any-root-other' },
    { host: null, target: '/public', want: 'any-public' },
    { host: 'example.com', target: '/', want: null },
    { host: 'other.test', target: '/elsewhere', want: null },
    { host: null, target: '/private', want: null },
  ];
  for (const c of cases) {
    const headers: [string, string][] = c.host === null ? [] : [['Host', c.host]];
    // HTTP/1.1 requires Host; send HTTP/1.0 for the hostless case.
    const request = c.host === null ? `GET ${c.target} HTTP/1.0\r\n\r\n` : formatRequest('GET', c.target, [...headers, ['Connection', 'close']]);
    const res = await rawRequest(veer.veer.dataAddress.port, request);
    const label = `${c.host ?? '(no host)'} ${c.target}`;
    if (c.want === null) {
      t.equal(res.status, 404, `${label}: 404`);
      t.match(res.headers['content-type']?.[0], /^application\/json/, `${label}: JSON`);
      const body = JSON.parse(res.body.toString()) as { error: { code: string; message: string } };
      t.equal(body.error.code, 'no_route', `${label}: code no_route`);
      t.type(body.error.message, 'string', `${label}: has a message`);
    } else {
      t.equal(res.status, 200, `${label}: 200`);
      t.equal(res.headers['x-upstream']?.[0], c.want, `${label}: served by ${c.want}`);
    }
  }
});

t.test('CONNECT is answered 405 with a JSON error, not dropped', async (t) => {
  const v1 = await upstream(t, 'v1');
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: v1.url } }));
  const res = await rawRequest(veer.veer.dataAddress.port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
  t.equal(res.status, 405);
  t.match(res.headers['content-type']?.[0], /^application\/json/);
  t.equal((JSON.parse(res.body.toString()) as { error: { code: string } }).error.code, 'bad_request');
  t.equal(v1.seen.length, 0, 'nothing reached the upstream');
});
