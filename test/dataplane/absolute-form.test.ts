// Regression: an absolute-form request target (`GET http://shop.example.com/x
// HTTP/1.1`, what a client sends to a proxy) was answered 404 whatever the
// Host. RFC 9112 3.2.2: the target's authority is the host, the Host header
// is ignored; veer routes on it and forwards origin-form with that Host.

import t from 'tap';
import { formatRequest, rawHeaderValues, rawRequest, sendRawUntilClose, type TestScope } from '../helpers/http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstreams.ts';
import { oneVersionServices, runVeerIn, type RunningVeer } from '../helpers/veer.ts';

async function upstream(t: TestScope, name: string): Promise<TestUpstream> {
  const up = await startUpstream(name);
  t.teardown(() => up.close());
  return up;
}

const rawValues = rawHeaderValues;

/** veer with `shop` on shop.example.com and `other` on other.test. */
async function twoHosts(t: TestScope): Promise<{ veer: RunningVeer; shop: TestUpstream; other: TestUpstream }> {
  const shop = await upstream(t, 'shop');
  const other = await upstream(t, 'other');
  const veer = await runVeerIn(
    t,
    oneVersionServices([
      ['shop', '{ hosts: [shop.example.com], pathPrefix: / }', shop.url],
      ['other', '{ hosts: [other.test], pathPrefix: / }', other.url],
    ]),
  );
  return { veer, shop, other };
}

t.test('an absolute-form target is routed by its authority and forwarded origin-form with that Host', async (t) => {
  const { veer, shop, other } = await twoHosts(t);
  const port = veer.veer.dataAddress.port;
  const cases: { target: string; host: string; path: string; sentHost: string }[] = [
    { target: 'http://shop.example.com/x?a=1', host: 'other.test', path: '/x?a=1', sentHost: 'shop.example.com' },
    { target: 'HTTP://Shop.Example.com:8080/x', host: 'other.test', path: '/x', sentHost: 'Shop.Example.com:8080' },
    { target: 'https://shop.example.com', host: 'other.test', path: '/', sentHost: 'shop.example.com' },
    { target: 'http://shop.example.com?q', host: 'other.test', path: '/?q', sentHost: 'shop.example.com' },
    { target: 'http://shop.example.com//a/../%69', host: 'other.test', path: '/i', sentHost: 'shop.example.com' },
  ];
  for (const c of cases) {
    const res = await rawRequest(port, formatRequest('GET', c.target, [['Host', c.host], ['Connection', 'close']]));
    t.equal(res.status, 200, `${c.target}: 200`);
    t.equal(res.headers['x-upstream']?.[0], 'shop', `${c.target}: routed by the target's authority, not the Host header`);
    const got = shop.seen.at(-1)!;
    t.equal(got.url, c.path, `${c.target}: the upstream got origin-form ${c.path}`);
    t.same(rawValues(got, 'host'), [c.sentHost], `${c.target}: and one Host, the target's authority`);
    t.same(rawValues(got, 'x-forwarded-host'), [c.sentHost], `${c.target}: x-forwarded-host is that authority too`);
  }
  // HTTP/1.0 needs no Host header: the authority is all there is.
  const bare = await rawRequest(port, 'GET http://shop.example.com/bare HTTP/1.0\r\n\r\n');
  t.equal(bare.status, 200, 'HTTP/1.0 without Host: 200');
  t.same(rawValues(shop.seen.at(-1)!, 'host'), ['shop.example.com'], 'and the upstream got the authority as Host');
  t.equal(shop.seen.length, cases.length + 1, 'shop got every request');
  t.equal(other.seen.length, 0, 'the Host header never routed one to other');
});

t.test('an absolute-form target with another scheme or an authority that is not a host is a 400', async (t) => {
  const { veer, shop, other } = await twoHosts(t);
  for (const target of ['ftp://shop.example.com/x', 'ws://shop.example.com/x', 'http:///x', 'http://user@shop.example.com/x', 'http://a,b/x', 'http://shop.example.com\\x/']) {
    const answer = await sendRawUntilClose(veer.veer.dataAddress.port, formatRequest('GET', target, [['Host', 'shop.example.com']]));
    t.match(answer.text, /^HTTP\/1\.1 400 /, `${target}: 400`);
    t.match(answer.text, /"code":"bad_request"/, `${target}: bad_request`);
    t.ok(answer.closed, `${target}: closed`);
  }
  t.equal(shop.seen.length + other.seen.length, 0, 'nothing reached an upstream');
});
