// Correctness at scale (no timing): 10 000 services compile and route, and a
// change to one of them leaves every other compiled service as it was.

import t from 'tap';
import { routeRequest } from '../../src/router/index.ts';
import { reweighTable } from '../../src/table/index.ts';
import { mulberry32 } from '../helpers/prng.ts';
import { request, tableFromYaml } from '../helpers/tables.ts';

const N = 10_000;

function manyServices(n: number): string {
  const lines = ['services:'];
  for (let i = 0; i < n; i++) {
    lines.push(`  - name: svc-${i}
    match: { hosts: [svc-${i}.example.com]${i % 10 === 0 ? `, pathPrefix: /p${i}` : ''} }
    versions: [{ name: v1, upstream: "http://127.0.0.1:1" }, { name: v2, upstream: "http://127.0.0.1:2" }]
    routes: [{ match: { header: { name: x-canary, value: always } }, to: v2 }]
    split: { weights: { v1: ${i % 100}, v2: ${100 - (i % 100)} }, sticky: { header: x-user-id } }`);
  }
  return `${lines.join('\n')}\n`;
}

const table = tableFromYaml(manyServices(N));

t.test('10 000 services compile and a sample of hosts routes to the right service and version', async (t) => {
  t.equal(table.services.length, N);
  const rand = mulberry32(11);
  let checked = 0;
  for (let k = 0; k < 500; k++) {
    const i = Math.floor(rand() * N);
    const path = i % 10 === 0 ? `/p${i}/x` : '/x';
    const canary = routeRequest(table, request(path, { host: `svc-${i}.example.com`, 'x-canary': 'always' }));
    if (canary?.service.name !== `svc-${i}` || canary.name !== 'v2') {
      t.fail(`svc-${i}: the rule goes to ${canary?.service.name}/${canary?.name}`);
      return;
    }
    const sticky = routeRequest(table, request(path, { host: `SVC-${i}.example.com:8080`, 'x-user-id': `user-${k}` }));
    if (sticky?.service.name !== `svc-${i}`) {
      t.fail(`svc-${i}: routed to ${sticky?.service.name}`);
      return;
    }
    checked++;
  }
  t.equal(checked, 500, '500 random services routed by host (and prefix), rule and sticky split');
  t.equal(routeRequest(table, request('/x', { host: 'svc-10.example.com' })), null, 'a prefix service does not take other paths');
  t.equal(routeRequest(table, request('/', { host: 'nope.example.com' })), null);
});

t.test('a weight change on one service leaves every other compiled service the same object', async (t) => {
  const changed = reweighTable(table, { 'svc-4242': { v1: 0, v2: 100 } });
  if (!changed.ok) throw new Error('reweigh failed');
  const next = changed.table;
  t.equal(next.generation, table.generation + 1);
  t.equal(next.hosts, table.hosts, 'the host index is shared');
  let same = 0;
  for (let i = 0; i < N; i++) if (next.services[i] === table.services[i]) same++;
  t.equal(same, N - 1, 'all but one compiled service are shared');
  const svc = next.servicesByName.get('svc-4242')!;
  t.not(svc, table.servicesByName.get('svc-4242'));
  t.same(svc.split.weights, { v1: 0, v2: 100 });
  t.equal(routeRequest(next, request('/', { host: 'svc-4242.example.com', 'x-user-id': 'anyone' }))!.name, 'v2', 'the new table routes with the new weights');
  t.equal(routeRequest(table, request('/', { host: 'svc-4242.example.com', 'x-user-id': 'u-1' }), () => 0.99)?.service.name, 'svc-4242', 'and the old table is untouched');
  t.same(table.servicesByName.get('svc-4242')!.split.weights, { v1: 42, v2: 58 });
});
