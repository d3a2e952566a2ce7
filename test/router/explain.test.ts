import t from 'tap';
import { describeRequest, explainChoice, findService, routeRequest } from '../../src/router/index.ts';
import { bucketOf, createValueReader } from '../../src/table/index.ts';
import { request, splitYaml, tableFromYaml } from '../helpers/tables.ts';

const TABLE = tableFromYaml(`${splitYaml({ v1: 90, v2: 10 }, 'sticky: { header: x-user-id }')}    routes:
      - match: { header: { name: x-canary, value: always } }
        to: v2
      - match: { cookie: { name: beta, value: "1" }, query: { name: preview, present: true } }
        to: v2
`);
const SERVICE = TABLE.services[0]!;

t.test('a rule match names the rule index and its conditions', async (t) => {
  const e = explainChoice(SERVICE, describeRequest({ cookies: { beta: '1' }, query: { preview: '' }, headers: { 'x-user-id': 'u1' } }));
  t.equal(e.by, 'rule');
  t.equal(e.version, 'v2');
  t.equal(e.service, 'svc');
  t.same(e.rule, { index: 1, conditions: ['cookie beta = "1"', 'query preview is present'] });
  t.match(e.reason, /route rule 1 matched \(cookie beta = "1" and query preview is present\)/);
  t.same(e.weights, { v1: 90, v2: 10 });
  t.equal(explainChoice(SERVICE, describeRequest({ headers: { 'X-Canary': 'always' } })).rule?.index, 0, 'first matching rule');
});

t.test('sticky: bucket and range agree with the router', async (t) => {
  let onCanary = 0;
  let wrong = 0;
  const noDraw = () => {
    throw new Error('no draw');
  };
  for (let i = 0; i < 2000; i++) {
    const user = `user-${i}`;
    const req = describeRequest({ headers: { 'x-user-id': user } });
    const e = explainChoice(SERVICE, req);
    const routed = routeRequest(TABLE, req, noDraw)!.name;
    const [start, end] = e.range ?? [-1, -1];
    const ok =
      e.by === 'sticky' &&
      e.version === routed &&
      e.bucket === bucketOf(SERVICE.split.seedState, user) &&
      start <= e.bucket &&
      e.bucket < end &&
      start === (e.version === 'v1' ? 0 : 9000) &&
      end === (e.version === 'v1' ? 9000 : 10000);
    if (!ok && wrong++ < 5) t.fail(`${user}: ${JSON.stringify(e)} but the router picks ${routed}`);
    if (e.version === 'v2') onCanary++;
  }
  t.equal(wrong, 0, '2000 users: same version as the router, bucket inside the version\'s range');
  t.ok(onCanary > 100 && onCanary < 300, `${onCanary} of 2000 on v2 (about 200)`);
  const one = explainChoice(SERVICE, describeRequest({ headers: { 'x-user-id': 'alice' } }));
  t.match(one.reason, new RegExp(`sticky header x-user-id hashes to bucket ${one.bucket} of 10000, in ${one.version}'s range \\[${one.range![0]}, ${one.range![1]}\\)`));
});

t.test('no sticky key: by random, with every version\'s chance', async (t) => {
  const e = explainChoice(SERVICE, describeRequest({}));
  t.equal(e.by, 'random');
  t.equal(e.version, 'v1', 'the most likely version');
  t.equal(e.bucket, undefined);
  t.match(e.reason, /no sticky header x-user-id in the request/);
  t.match(e.reason, /v1 90%, v2 10%/);

  const plain = tableFromYaml(splitYaml({ a: 1, b: 2, c: 1 })).services[0]!;
  const p = explainChoice(plain, describeRequest({ headers: { 'x-user-id': 'u' } }));
  t.equal(p.by, 'random');
  t.equal(p.version, 'b');
  t.match(p.reason, /the split is not sticky/);
  t.match(p.reason, /a 25%, b 50%, c 25%/);
});

t.test('a single version', async (t) => {
  const single = tableFromYaml(splitYaml({ only: 1 }, 'sticky: { cookie: uid }')).services[0]!;
  t.match(explainChoice(single, describeRequest({ cookies: { uid: 'x' } })), { by: 'single', version: 'only' });
});

t.test('describeRequest builds headers, cookies and query', async (t) => {
  const req = describeRequest({
    headers: { 'X-User-Id': 'u1', Cookie: 'a=1' },
    cookies: { uid: 'a b;c', beta: '1' },
    query: { q: 'x y', n: '1&2' },
    path: '/shop?page=2',
  });
  t.equal(req.headers['x-user-id'], 'u1', 'header names lowercased');
  t.equal(req.headers.cookie, 'a=1; uid=a%20b%3Bc; beta=1', 'cookies appended to a given cookie header, encoded');
  t.equal(req.url, '/shop?page=2&q=x+y&n=1%262');
  // What describeRequest writes, the readers read back.
  t.equal(createValueReader('cookie', 'uid').read(req), 'a b;c');
  t.equal(createValueReader('cookie', 'a').read(req), '1');
  t.equal(createValueReader('query', 'q').read(req), 'x y');
  t.equal(createValueReader('query', 'n').read(req), '1&2');
  t.equal(createValueReader('query', 'page').read(req), '2');

  t.same(describeRequest({}), { headers: {}, url: '/' });
  t.equal(describeRequest({ query: { a: '1' } }).url, '/?a=1');
  t.equal(describeRequest({ cookies: { k: 'v' } }).headers.cookie, 'k=v');
});

t.test('explaining a described request matches routing the real one', async (t) => {
  const table = tableFromYaml(splitYaml({ v1: 50, v2: 50 }, 'sticky: { cookie: uid }'));
  const service = findService(table, 'any.host', '/')!;
  for (let i = 0; i < 500; i++) {
    const uid = `id ${i};x`;
    const described = explainChoice(service, describeRequest({ cookies: { uid } })).version;
    const real = routeRequest(table, request('/', { host: 'any.host', cookie: `session=s; uid="${encodeURIComponent(uid)}"` }), () => 0)!.name;
    if (described !== real) t.fail(`${uid}: ${described} vs ${real}`);
  }
  t.pass('500 users agree');
});
