// The forwarder's registry of upstream connections: what a table names by
// UpstreamSpec becomes pools on first use, shared across tables and across
// versions with the same origins, and retired once no table names them.

import t from 'tap';
import { request } from 'undici';
import { RoundRobinEndpoints, UpstreamRegistry } from '../../src/forwarder/index.ts';
import { reweighTable } from '../../src/table/index.ts';
import { tableFromYaml } from '../helpers/tables.ts';
import { startTwoUpstreams } from '../helpers/upstreams.ts';

const yaml = (a: string, b: string, extra = '') => `services:
  - name: svc
    versions:
      - { name: v1, upstream: "${a}" }
      - { name: v2, upstream: ["${a}", "${b}"] }
      - { name: v3, upstream: "${a}/" }
${extra}`;

t.test('nothing opens until a request needs it; equal specs share one endpoint set and pool', async (t) => {
  const [one, two] = await startTwoUpstreams(t);
  const registry = new UpstreamRegistry({ retireGraceMs: 0 });
  t.teardown(() => registry.close(true));
  const table = tableFromYaml(yaml(one.url, two.url));
  const [v1, v2, v3] = table.services[0]!.versions;
  t.equal(registry.size, 0, 'compiling a table opens nothing');

  const set1 = registry.endpointsOf(v1!.upstream);
  t.equal(registry.endpointsOf(v3!.upstream), set1, 'the same origin written differently is the same set');
  t.equal(registry.size, 1);
  const set2 = registry.endpointsOf(v2!.upstream);
  t.equal(registry.size, 2, 'v2 adds one pool: its first origin is shared with v1');
  t.equal(set2.endpoints[0]!.dispatcher, set1.endpoints[0]!.dispatcher, 'one pool per origin');

  const picked = [0, 1, 2, 3].map(() => set2.pick()!.origin);
  t.same(picked, [one.url, two.url, one.url, two.url], 'round robin over the endpoints');

  const answer = await request(`${one.url}/x`, { dispatcher: set1.pick()!.dispatcher });
  t.equal(answer.statusCode, 200, 'the pool reaches its origin');
  await answer.body.text();

  const reweighed = reweighTable(table, { svc: { v1: 0, v2: 100, v3: 0 } });
  if (!reweighed.ok) throw new Error('reweigh failed');
  t.equal(registry.endpointsOf(reweighed.table.services[0]!.versions[1]!.upstream), set2, 'a weight change keeps the connections');
});

t.test('retainOnly forgets what the table no longer names and closes its pools after the grace', async (t) => {
  const [one, two] = await startTwoUpstreams(t);
  const registry = new UpstreamRegistry({ retireGraceMs: 0 });
  t.teardown(() => registry.close(true));
  const before = tableFromYaml(yaml(one.url, two.url));
  for (const v of before.services[0]!.versions) registry.endpointsOf(v.upstream);
  t.equal(registry.size, 2);
  const oldPool = registry.endpointsOf(before.services[0]!.versions[1]!.upstream).endpoints[1]!.dispatcher;

  const after = tableFromYaml(`services:\n  - name: svc\n    versions: [{ name: v1, upstream: "${one.url}" }]\n`);
  registry.retainOnly(after);
  t.equal(registry.size, 1, "two's pool is retired");
  const kept = registry.endpointsOf(after.services[0]!.versions[0]!.upstream);
  t.equal(kept.endpoints[0]!.origin, one.url);
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.equal((oldPool as unknown as { closed: boolean }).closed, true, 'the retired pool is closed after the grace');
});

t.test('an endpoint set needs an endpoint', async (t) => {
  t.throws(() => new RoundRobinEndpoints([]), RangeError);
});
