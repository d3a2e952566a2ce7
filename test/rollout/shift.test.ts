// POST/DELETE .../shift: gradual weight moves on a timer, each a history
// line; conflicting changes get 409 and change nothing.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { admin, until } from '../helpers/admin.ts';
import type { TestScope } from '../helpers/http.ts';
import { startTwoUpstreams, startUpstream } from '../helpers/upstreams.ts';
import { runVeer, serviceConfig, startVeerOn, writeConfig } from '../helpers/veer.ts';

interface ShiftAnswer {
  weights: Record<string, number>;
  shift: { to: string; until: number } | null;
}
interface HistoryBody {
  history: { action: string; actor: string; after: Record<string, number> }[];
}

async function setup(t: TestScope, weights = { v1: 100, v2: 0 }) {
  const v1 = await startUpstream('v1');
  const v2 = await startUpstream('v2');
  const running = await runVeer(serviceConfig({ versions: { v1: v1.url, v2: v2.url }, weights, extra: '    rollout: { canary: v2, steps: [{ weight: 50 }] }\n' }));
  t.teardown(async () => {
    await running.stop();
    await v1.close();
    await v2.close();
  });
  const weightsNow = () => running.veer.state.table.servicesByName.get('svc')!.split.weights;
  return { running, weightsNow };
}

t.test('a shift moves weight step by step until it reaches `until`', async (t) => {
  const { running, weightsNow } = await setup(t);
  const started = Date.now();
  const res = await admin<ShiftAnswer>(running.adminUrl, 'POST', '/api/v1/services/svc/shift', { body: { to: 'v2', step: 30, every: '150ms', until: 100 } });
  t.equal(res.status, 200);
  t.same(res.body.weights, { v1: 70, v2: 30 }, 'the first move is immediate');
  t.match(res.body.shift, { to: 'v2', until: 100 });
  t.ok(await until(() => weightsNow().v2 === 100, 3000), 'reaches 100%');
  t.ok(Date.now() - started >= 3 * 150 - 20, 'three more moves, one per `every`');
  t.ok(await until(async () => (await admin<{ shift: unknown }>(running.adminUrl, 'GET', '/api/v1/services/svc')).body.shift === null, 1000), 'the shift is over');
  const { history } = (await admin<HistoryBody>(running.adminUrl, 'GET', '/api/v1/history')).body;
  t.same(
    history.map((h) => [h.action, h.after.v2]),
    [
      ['shift.start', 30],
      ['shift.step', 60],
      ['shift.step', 90],
      ['shift.done', 100],
    ],
  );
  t.match(history[1], { actor: 'shift' });

  const down = await admin<ShiftAnswer>(running.adminUrl, 'POST', '/api/v1/services/svc/shift', { body: { to: 'v2', step: 60, every: '100ms', until: 0 } });
  t.same(down.body.weights, { v1: 60, v2: 40 }, 'a shift can move weight away too');
  t.ok(await until(() => weightsNow().v2 === 0, 2000));
});

t.test('while a shift runs, other changes get 409 conflict; DELETE stops it where it is', async (t) => {
  const { running, weightsNow } = await setup(t);
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/services/svc/shift', { body: { to: 'v2', step: 10, every: '1m' } })).status, 200);
  const before = { ...weightsNow() };
  t.same(before, { v1: 90, v2: 10 });
  const conflicts: [string, 'PUT' | 'POST' | 'DELETE', string, unknown][] = [
    ['weights', 'PUT', '/api/v1/services/svc/weights', { weights: { v1: 1, v2: 1 } }],
    ['reset', 'DELETE', '/api/v1/services/svc/weights', undefined],
    ['second shift', 'POST', '/api/v1/services/svc/shift', { to: 'v1', step: 10, every: '1s' }],
    ['rollout', 'POST', '/api/v1/services/svc/rollout', {}],
  ];
  for (const [name, method, path, body] of conflicts) {
    const res = await admin<{ error: { code: string } }>(running.adminUrl, method, path, body === undefined ? {} : { body });
    t.equal(res.status, 409, name);
    t.equal(res.body.error.code, 'conflict', name);
  }
  t.same(weightsNow(), before, 'nothing changed');
  const stop = await admin<ShiftAnswer>(running.adminUrl, 'DELETE', '/api/v1/services/svc/shift');
  t.equal(stop.status, 200);
  t.equal(stop.body.shift, null);
  t.same(weightsNow(), before, 'weights stay where the shift left them');
  t.equal((await admin<{ error: { code: string } }>(running.adminUrl, 'DELETE', '/api/v1/services/svc/shift')).body.error.code, 'no_rollout');
  t.equal((await admin(running.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights: { v1: 1, v2: 1 } } })).status, 200, 'weights can change again');
});

t.test('bad shift bodies get 400 and change nothing', async (t) => {
  const { running, weightsNow } = await setup(t);
  const bad: [unknown, string][] = [
    [{ to: 'v9', step: 10, every: '1s' }, 'unknown_version'],
    [{ to: 'v2', step: 0, every: '1s' }, 'invalid_body'],
    [{ to: 'v2', step: 101, every: '1s' }, 'invalid_body'],
    [{ to: 'v2', step: 10, every: 'soon' }, 'invalid_body'],
    [{ to: 'v2', step: 10 }, 'invalid_body'],
    [{ to: 'v2', step: 10, every: '10ms' }, 'invalid_rollout'],
    [{ to: 'v1', step: 10, every: '1s', until: 100 }, 'invalid_rollout'],
    [{ to: 'v2', step: '10', every: '1s' }, 'invalid_body'],
  ];
  for (const [body, code] of bad) {
    const res = await admin<{ error: { code: string } }>(running.adminUrl, 'POST', '/api/v1/services/svc/shift', { body });
    t.equal(res.status, 400, JSON.stringify(body));
    t.equal(res.body.error.code, code, JSON.stringify(body));
  }
  t.same(weightsNow(), { v1: 100, v2: 0 });
  t.equal((await admin<HistoryBody>(running.adminUrl, 'GET', '/api/v1/history')).body.history.length, 0);
});

t.test('a shift survives a restart and goes on from where it was', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const stateDir = mkdtempSync(join(tmpdir(), 'veer-shift-'));
  const configPath = writeConfig(serviceConfig({ versions: { v1: v1.url, v2: v2.url }, top: `state: { path: ${join(stateDir, 'state.json')} }` }));
  const start = () => startVeerOn(configPath);
  const first = await start();
  const res = await admin<ShiftAnswer>(`http://127.0.0.1:${first.adminAddress.port}`, 'POST', '/api/v1/services/svc/shift', { body: { to: 'v2', step: 40, every: '400ms' } });
  t.same(res.body.weights, { v1: 60, v2: 40 });
  await first.stop();
  const second = await start();
  t.teardown(() => second.stop());
  const weights = () => second.state.table.servicesByName.get('svc')!.split.weights;
  t.same(weights(), { v1: 60, v2: 40 }, 'the stored weights after the restart');
  t.ok(await until(() => weights().v2 === 100, 3000), 'the shift goes on to 100%');
  const { history } = (await admin<HistoryBody>(`http://127.0.0.1:${second.adminAddress.port}`, 'GET', '/api/v1/history')).body;
  t.same(
    history.map((h) => [h.action, h.after.v2]),
    [
      ['shift.start', 40],
      ['shift.step', 80],
      ['shift.done', 100],
    ],
  );
});
