// A whole rollout driven from the CLI (as in the README), and
// `veer rollout watch` exiting 0 on promote and 1 on abort.

import t from 'tap';
import { admin } from '../helpers/admin.ts';
import { runCli } from '../helpers/cli.ts';
import { reportErrors } from '../../src/cli/admin-io.ts';
import { runWatch } from '../../src/cli/admin-watch.ts';
import { startUpstream } from '../helpers/upstreams.ts';
import { runVeer, serviceConfig } from '../helpers/veer.ts';

async function setup(t: { teardown(fn: () => unknown): void }, rollout: string) {
  const v1 = await startUpstream('v1');
  const v2 = await startUpstream('v2');
  const running = await runVeer(serviceConfig({ versions: { v1: v1.url, v2: v2.url }, extra: `    rollout: ${rollout}\n` }));
  t.teardown(async () => {
    await running.stop();
    await v1.close();
    await v2.close();
  });
  return running;
}

t.test('start, status, resume and watch a rollout to promotion from the CLI', async (t) => {
  const running = await setup(t, '{ canary: v2, steps: [{ weight: 10 }, { weight: 50, pause: 800ms }, { weight: 100 }] }');
  const env = { VEER_ADMIN_URL: running.adminUrl };

  const start = await runCli(['rollout', 'start', 'svc'], env);
  t.equal(start.code, 0, start.stderr);
  t.match(start.stdout, /rollout of svc: paused \(by plan\), canary v2 at 10%/);
  t.match(start.stdout, /steps: +\[10%\] -> 50%\/800ms -> 100%/);

  const status = await runCli(['status', 'svc'], env);
  t.match(status.stdout, /paused step 1\/3 \(plan\)/);
  t.match(status.stdout, /v2 at 10%/);

  const watching = runCli(['rollout', 'watch', 'svc', '--interval', '100', '--timeout', '10'], env);
  const resume = await runCli(['rollout', 'resume', 'svc'], env);
  t.equal(resume.code, 0, resume.stderr);
  t.match(resume.stdout, /progressing, canary v2 at 50%/);

  const watch = await watching;
  t.equal(watch.code, 0, `exit 0 on promoted (${watch.stderr})`);
  t.match(watch.stdout, /svc: progressing step 2\/3, v2 at 50%/);
  t.match(watch.stdout, /rollout of svc promoted: promoted: step 2 paused 800ms; the last step gives v2 100%/);
  t.same(running.veer.state.table.servicesByName.get('svc')!.split.weights, { v1: 0, v2: 100 });
});

t.test('watch exits 1 when the rollout is aborted', async (t) => {
  const running = await setup(t, '{ canary: v2, steps: [{ weight: 25, pause: 1m }, { weight: 100 }] }');
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201);
  const watching = runCli(['rollout', 'watch', 'svc', '--admin', running.adminUrl, '--interval', '100', '--timeout', '10']);
  await new Promise((r) => setTimeout(r, 1200));
  const abort = await runCli(['rollout', 'abort', 'svc', '--admin', running.adminUrl, '--reason', 'bad canary']);
  t.equal(abort.code, 0, abort.stderr);
  t.match(abort.stdout, /aborted, canary v2 at 0%/);
  const watch = await watching;
  t.equal(watch.code, 1, 'exit 1 on aborted');
  t.match(watch.stdout, /svc: progressing step 1\/2, v2 at 25%/);
  t.match(watch.stdout, /rollout of svc aborted: aborted: abort by cli:\S+ \(127\.0\.0\.1\) \(bad canary\)/);
});

t.test('watch with the progress bar (terminal mode) ends the same way', async (t) => {
  const running = await setup(t, '{ canary: v2, steps: [{ weight: 50, pause: 300ms }, { weight: 100 }] }');
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201);
  const lines: string[] = [];
  const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
  const code = await runWatch({ admin: running.adminUrl, interval: '50', timeout: '5' }, 'svc', io, true);
  t.equal(code, 0);
  t.match(lines.at(-1), /rollout of svc promoted/);
  t.equal(await runWatch({ admin: running.adminUrl, interval: '50', timeout: '5' }, 'svc', io, true), 0, 'an ended rollout answers at once');
  t.equal(await reportErrors(io, () => runWatch({ admin: running.adminUrl, interval: '50', timeout: '5' }, 'nope', io, true)), 1, 'an unknown service fails');
});
