// The rollback window: `abort` on a rollout promoted less than
// `rollbackWindow` ago gives the old stable version 100% again (rolledBack,
// and the history says so); after the window it is refused with
// rollback_window_passed and nothing changes. Real upstreams, a real veer.

import { createServer } from 'node:http';
import t from 'tap';
import { request } from 'undici';
import { admin, countVersions, until } from '../helpers/admin.ts';
import { historyOf as readHistory, rolloutOf as readRollout, weightsOf } from '../helpers/rollouts.ts';
import { listenForTest, startTwoUpstreams } from '../helpers/upstreams.ts';
import { runVeerIn, serviceConfig, type RunningVeer } from '../helpers/veer.ts';

interface Rollout {
  phase: string;
  reason: string;
  endedAt: string | null;
  rollbackUntil?: string | null;
}

interface HistoryEntry {
  action: string;
  actor: string;
  reason: string;
  after: Record<string, number>;
  details?: { promotedAt?: string; phase?: string };
}

interface ErrorBody {
  error: { code: string; message: string };
}

const rolloutOf = (running: RunningVeer) => readRollout<Rollout>(running);
const historyOf = (running: RunningVeer) => readHistory<HistoryEntry>(running);

function canaryConfig(v1: string, v2: string, window: string | null): string {
  return serviceConfig({
    versions: { v1, v2 },
    weights: { v1: 100, v2: 0 },
    extra: `    rollout: { canary: v2, steps: [{ weight: 50 }, { weight: 100 }]${window === null ? '' : `, rollbackWindow: ${window}`} }\n`,
  });
}

t.test('abort within the window after a promotion rolls back; the history and the status say so', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const running = await runVeerIn(t, canaryConfig(v1.url, v2.url, null));
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201);
  const promoted = await admin<Rollout>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout/promote');
  t.equal(promoted.body.phase, 'promoted');
  t.same(weightsOf(running), { v1: 0, v2: 100 });
  const until = Date.parse(promoted.body.rollbackUntil!);
  t.ok(Math.abs(until - Date.parse(promoted.body.endedAt!) - 3_600_000) < 1000, 'rollbackUntil: the default window (1h) after the promotion');
  t.same(await countVersions(running.url, 10), { v2: 10 });

  const back = await admin<Rollout>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout/abort', { body: { reason: 'v2 breaks checkout' } });
  t.equal(back.status, 200);
  t.equal(back.body.phase, 'rolledBack');
  t.match(back.body.reason, /^rolled back: abort by .*v2 breaks checkout.*; v1 has 100% again, \d+s after the promotion of v2 \(rollbackWindow 1h\)/);
  t.equal(back.body.rollbackUntil, null, 'nothing left to roll back');
  t.same(weightsOf(running), { v1: 100, v2: 0 }, 'the old stable version has 100% again');
  t.same(await countVersions(running.url, 10), { v1: 10 }, 'and serves every request');
  const last = (await historyOf(running)).at(-1)!;
  t.match(last, { action: 'rollout.rollback', after: { v1: 100, v2: 0 }, details: { phase: 'rolledBack' } });
  t.equal(last.details?.promotedAt, promoted.body.endedAt, 'the line names when it was promoted');

  const again = await admin<ErrorBody>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout/abort');
  t.equal(again.status, 409);
  t.equal(again.body.error.code, 'rollout_conflict', 'a rolled back rollout is over');
  const metrics = await request(`${running.adminUrl}/metrics`);
  t.match(await metrics.body.text(), /veer_rollout_info\{service="svc",phase="rolledBack",canary="v2"\} 1/);
});

t.test('after the window, abort is refused with rollback_window_passed and nothing changes', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const running = await runVeerIn(t, canaryConfig(v1.url, v2.url, '300ms'));
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201);
  t.equal((await admin<Rollout>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout/promote')).body.phase, 'promoted');
  await new Promise((r) => setTimeout(r, 500));
  const lines = (await historyOf(running)).length;
  const res = await admin<ErrorBody>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout/abort');
  t.equal(res.status, 409);
  t.equal(res.body.error.code, 'rollback_window_passed');
  t.match(res.body.error.message, /promoted at .*, more than its rollbackWindow \(300ms\) ago; set the weights instead/);
  t.equal((await rolloutOf(running)).phase, 'promoted', 'still promoted');
  t.same(weightsOf(running), { v1: 0, v2: 100 }, 'weights unchanged');
  t.equal((await historyOf(running)).length, lines, 'no history line');
  t.same(await countVersions(running.url, 10), { v2: 10 });
});

t.test('a blue-green rollout promoted then aborted within the window: everyone back on the old version, preview closed', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const running = await runVeerIn(
    t,
    serviceConfig({
      versions: { v1: v1.url, v2: v2.url },
      weights: { v1: 100, v2: 0 },
      extra: '    rollout: { strategy: blueGreen, canary: v2, preview: { cookie: { name: beta, value: "1" } }, rollbackWindow: 10m }\n',
    }),
  );
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201);
  t.equal((await admin<Rollout>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout/promote')).body.phase, 'promoted');
  t.same(await countVersions(running.url, 10), { v2: 10 });
  const back = await admin<Rollout>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout/abort');
  t.equal(back.body.phase, 'rolledBack');
  t.match(back.body.reason, /rollbackWindow 10m/);
  t.same(weightsOf(running), { v1: 100, v2: 0 });
  const res = await request(running.url, { headers: { cookie: 'beta=1' } });
  await res.body.text();
  t.equal(res.headers['x-veer-version'], 'v1', 'the preview cookie reaches v1: the preview stays closed');
  t.same(await countVersions(running.url, 10), { v1: 10 });
});

t.test('event hooks hear the rollback', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const phases: string[] = [];
  const hooks = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      phases.push((JSON.parse(body) as { phase: string }).phase);
      res.end('ok');
    });
  });
  const port = await listenForTest(t, hooks);
  const running = await runVeerIn(
    t,
    serviceConfig({
      versions: { v1: v1.url, v2: v2.url },
      weights: { v1: 100, v2: 0 },
      extra: `    rollout: { canary: v2, steps: [{ weight: 100 }], hooks: [{ type: event, url: "http://127.0.0.1:${port}/events" }] }\n`,
    }),
  );
  t.equal((await admin<Rollout>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout')).body.phase, 'promoted', 'a one-step plan at 100% promotes at once');
  t.equal((await admin<Rollout>(running.adminUrl, 'POST', '/api/v1/services/svc/rollout/abort')).body.phase, 'rolledBack');
  t.ok(await until(() => phases.includes('rolledBack'), 3000), `the event hook got the rollback: ${phases.join(', ')}`);
});
