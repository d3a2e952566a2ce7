// The etcd key layout and the decoding of what is stored there (no etcd needed).

import t from 'tap';
import { decodeHistoryEntry, decodeReplicaMarker, decodeServiceRecord, EtcdKeys } from '../../../src/state/etcd/keys.ts';

t.test('keys under the prefix are built and read back', async (t) => {
  const keys = new EtcdKeys('/veer');
  t.equal(keys.prefix, '/veer/', 'a missing trailing slash is added');
  t.equal(keys.service('shop'), '/veer/services/shop');
  t.equal(keys.replica('r1'), '/veer/replicas/r1');
  t.equal(keys.leader, '/veer/leader');
  const h1 = keys.newHistory('r1', 1000);
  const h2 = keys.newHistory('r1', 1000);
  t.not(h1, h2, 'history keys are unique');
  t.match(h1, /^\/veer\/history\/000000000001000-r1-\d+$/);
  t.same(keys.parse('/veer/services/shop'), { kind: 'service', name: 'shop' });
  t.same(keys.parse(h1), { kind: 'history' });
  t.same(keys.parse('/veer/replicas/r1'), { kind: 'replica', id: 'r1' });
  t.same(keys.parse('/veer/leader'), { kind: 'leader' });
  t.same(keys.parse('/veer/services/'), { kind: 'other' });
  t.same(keys.parse('/other/services/shop'), { kind: 'other' });
});

t.test('service records are checked against the state schema', async (t) => {
  t.same(decodeServiceRecord('{"weights":{"v1":90,"v2":10}}'), { ok: true, record: { weights: { v1: 90, v2: 10 } } });
  t.match(decodeServiceRecord('{'), { ok: false, error: /not valid JSON/ });
  t.match(decodeServiceRecord('{"weights":{"v1":-1}}'), { ok: false, error: /not a veer record \(\/weights\/v1/ });
  t.match(decodeServiceRecord('[]'), { ok: false });
});

t.test('history lines take their seq from the create revision', async (t) => {
  const line = { seq: 1, at: '2024-01-01T00:00:00.000Z', service: 's', actor: 'a', action: 'weights', reason: 'r', before: {}, after: { v1: 1 } };
  const decoded = decodeHistoryEntry(JSON.stringify(line), 42);
  t.ok(decoded.ok);
  if (decoded.ok) t.equal(decoded.entry.seq, 42);
  t.match(decodeHistoryEntry('"text"', 1), { ok: false, error: 'not an object' });
  t.match(decodeHistoryEntry('{"at":1}', 1), { ok: false, error: /not a veer record/ });
});

t.test('replica markers', async (t) => {
  t.same(decodeReplicaMarker('{"applied":12,"at":"x"}'), { applied: 12, at: 'x' });
  t.equal(decodeReplicaMarker('{"applied":"12","at":"x"}'), null);
  t.equal(decodeReplicaMarker('nope'), null);
});
