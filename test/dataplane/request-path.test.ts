// Regression: request paths were matched raw, so `/%69nternal`, `//internal`
// and `/x/../internal` missed the service with `pathPrefix: /internal` (and
// reached the one at `/` with a path its upstream reads as /internal), while
// `/internal/../public` reached the internal one. veer now normalises the
// path as nginx does before it routes, and forwards the normalised path.

import t from 'tap';
import { formatRequest, rawRequest, sendRawUntilClose, type TestScope } from '../helpers/http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstreams.ts';
import { oneVersionServices, runVeerIn, type RunningVeer } from '../helpers/veer.ts';

async function upstream(t: TestScope, name: string): Promise<TestUpstream> {
  const up = await startUpstream(name);
  t.teardown(() => up.close());
  return up;
}

/** veer with `internal` at /internal and `public` at /, each with one upstream that records what it got. */
async function twoServices(t: TestScope): Promise<{ veer: RunningVeer; internal: TestUpstream; pub: TestUpstream }> {
  const internal = await upstream(t, 'internal');
  const pub = await upstream(t, 'public');
  const veer = await runVeerIn(
    t,
    oneVersionServices([
      ['internal', '{ pathPrefix: /internal }', internal.url],
      ['public', '{ pathPrefix: / }', pub.url],
    ]),
  );
  return { veer, internal, pub };
}

const get = (veer: RunningVeer, target: string) =>
  rawRequest(veer.veer.dataAddress.port, formatRequest('GET', target, [['Host', 'shop.example.com'], ['Connection', 'close']]));

t.test('a path is normalised before routing, and the upstream gets the normalised path', async (t) => {
  const { veer, internal, pub } = await twoServices(t);
  const cases: { target: string; want: 'internal' | 'public'; path: string }[] = [
    { target: '/%69nternal', want: 'internal', path: '/internal' },
    { target: '/%69%6E%74ernal/x', want: 'internal', path: '/internal/x' },
    { target: '//internal', want: 'internal', path: '/internal' },
    { target: '/x/../internal', want: 'internal', path: '/internal' },
    { target: '/./internal/./a//b/', want: 'internal', path: '/internal/a/b/' },
    { target: '/x/%2e%2E/internal?q=%2e%2e/a//b', want: 'internal', path: '/internal?q=%2e%2e/a//b' },
    { target: '/internal/../public', want: 'public', path: '/public' },
    { target: '/internal/..', want: 'public', path: '/' },
    // An encoded slash is not a separator: the first segment is "internal%2F..%2Fpublic", not
    // "internal", so it is public's (pathPrefix matches whole segments), and nobody resolves the "..".
    { target: '/internal%2F..%2Fpublic', want: 'public', path: '/internal%2F..%2Fpublic' },
    { target: '/internal%2f..%2fpublic', want: 'public', path: '/internal%2F..%2Fpublic' },
    { target: '/public/%5c..%5cinternal', want: 'public', path: '/public/%5C..%5Cinternal' },
    { target: '/a%20b/%7Euser/%2Dx', want: 'public', path: '/a%20b/~user/-x' },
    { target: '/.well-known/x', want: 'public', path: '/.well-known/x' },
  ];
  for (const c of cases) {
    const before = { internal: internal.seen.length, public: pub.seen.length };
    const res = await get(veer, c.target);
    t.equal(res.status, 200, `${c.target}: 200`);
    t.equal(res.headers['x-upstream']?.[0], c.want, `${c.target}: served by ${c.want}`);
    const other = c.want === 'internal' ? pub : internal;
    const chosen = c.want === 'internal' ? internal : pub;
    t.equal(chosen.seen.length, before[c.want] + 1, `${c.target}: ${c.want} got one request`);
    t.equal(other.seen.length, before[c.want === 'internal' ? 'public' : 'internal'], `${c.target}: the other got none`);
    t.equal(chosen.seen.at(-1)?.url, c.path, `${c.target}: the upstream got ${c.path}`);
  }
});

t.test('a path that climbs above the root, or has a broken percent-encoding, is a 400 and reaches no upstream', async (t) => {
  const { veer, internal, pub } = await twoServices(t);
  for (const target of ['/..', '/../internal', '/x/../../internal', '/%2e%2e/internal', '//../internal', '/a%2', '/a%zz/b', '/%']) {
    const answer = await sendRawUntilClose(veer.veer.dataAddress.port, formatRequest('GET', target, [['Host', 'shop.example.com']]));
    t.match(answer.text, /^HTTP\/1\.1 400 /, `${target}: 400`);
    t.match(answer.text, /"code":"bad_request"/, `${target}: bad_request`);
    t.match(answer.text, /connection: close/i, `${target}: connection: close`);
    t.ok(answer.closed, `${target}: the connection is closed`);
  }
  t.equal(internal.seen.length + pub.seen.length, 0, 'no upstream got anything');
});

t.test('a WebSocket upgrade is routed on the normalised path too', async (t) => {
  const { veer, internal, pub } = await twoServices(t);
  const answer = await sendRawUntilClose(
    veer.veer.dataAddress.port,
    formatRequest('GET', '/x/../%69nternal/ws', [
      ['Host', 'shop.example.com'],
      ['Connection', 'Upgrade'],
      ['Upgrade', 'websocket'],
      ['Sec-WebSocket-Version', '13'],
      ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='],
    ]),
  );
  // The echo upstream does not speak WebSocket: it answers 200, which veer relays and then closes.
  t.match(answer.text, /^HTTP\/1\.1 200 /, 'relayed');
  t.match(answer.text, /x-upstream: internal/i, 'from the internal service');
  t.equal(internal.seen.at(-1)?.url, '/internal/ws', 'which got the normalised path');
  t.equal(pub.seen.length, 0, 'public got nothing');
  const climbing = await sendRawUntilClose(
    veer.veer.dataAddress.port,
    formatRequest('GET', '/../internal', [
      ['Host', 'shop.example.com'],
      ['Connection', 'Upgrade'],
      ['Upgrade', 'websocket'],
    ]),
  );
  t.match(climbing.text, /^HTTP\/1\.1 400 /, 'an upgrade that climbs above the root is a 400');
  t.equal(internal.seen.length, 1, 'and reaches no upstream');
});
