// Upstream host names resolved through a real DNS server (dnsmasq on
// loopback): every address is an endpoint, traffic spreads over them, a DNS
// change is picked up at the next refresh, and a DNS outage keeps the last
// answer serving.

import { createServer, type Server } from 'node:http';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { admin, until } from '../helpers/admin.ts';
import { dnsmasqMissing, startDnsmasq } from '../helpers/dns.ts';
import { freePort } from '../helpers/upstreams.ts';
import { runVeer, serviceConfig } from '../helpers/veer.ts';

const skip = dnsmasqMissing();

/** A server on `address:port` that answers with its address. */
async function podAt(t: Test, address: string, port: number): Promise<{ hits: () => number }> {
  let hits = 0;
  const server: Server = createServer((_req, res) => {
    hits++;
    res.end(address);
  });
  await new Promise<void>((resolve) => server.listen(port, address, resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { hits: () => hits };
}

t.test('a host name is every address it resolves to, and follows DNS', { skip: skip ?? false }, async (t) => {
  const port = await freePort();
  const pods = { a: await podAt(t, '127.0.0.2', port), b: await podAt(t, '127.0.0.3', port), c: await podAt(t, '127.0.0.4', port) };
  const dns = await startDnsmasq({ 'shop.pods.test': ['127.0.0.2', '127.0.0.3'] });
  t.teardown(() => dns.stop());
  const veer = await runVeer(serviceConfig({ versions: { v1: `http://shop.pods.test:${port}` }, top: `resolver: { servers: ["${dns.server}"], refresh: 200ms }` }));
  t.teardown(() => veer.stop());

  const answered = async (n: number) => {
    const seen = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const res = await request(`${veer.url}/`);
      const text = await res.body.text();
      seen.set(text, (seen.get(text) ?? 0) + 1);
    }
    return seen;
  };
  // The first answers may come before the first resolution (the name itself, resolved per connect).
  t.ok(await until(async () => (await answered(10)).size === 2, 5000), 'requests spread over both addresses');
  const spread = await answered(20);
  t.same([...spread.keys()].sort(), ['127.0.0.2', '127.0.0.3']);
  t.equal(spread.get('127.0.0.2'), 10, 'round robin: half each');

  const metrics = (await admin<string>(veer.adminUrl, 'GET', '/metrics')).body;
  t.match(metrics, `veer_endpoint_up{service="svc",version="v1",endpoint="127.0.0.2:${port}"} 1`, 'an endpoint per address');
  t.match(metrics, `veer_endpoint_up{service="svc",version="v1",endpoint="127.0.0.3:${port}"} 1`);

  // A pod goes, another comes: the next refresh moves traffic.
  await dns.setRecords({ 'shop.pods.test': ['127.0.0.3', '127.0.0.4'] });
  t.ok(await until(async () => (await answered(4)).has('127.0.0.4') && !(await answered(6)).has('127.0.0.2'), 5000), 'the change is followed');
  const before = pods.a.hits();
  const after = await answered(20);
  t.same([...after.keys()].sort(), ['127.0.0.3', '127.0.0.4']);
  t.equal(pods.a.hits(), before, 'the departed address gets nothing');
  t.ok(pods.c.hits() > 0 && pods.b.hits() > 0);

  // DNS goes away: the last answer keeps serving.
  await dns.stop();
  await new Promise((r) => setTimeout(r, 600));
  const during = await answered(10);
  t.same([...during.keys()].sort(), ['127.0.0.3', '127.0.0.4'], 'a DNS outage changes nothing');
});
