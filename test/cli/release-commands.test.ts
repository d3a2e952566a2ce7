// `veer release ...` against a real veer: start, status, pause, resume,
// watch until promoted, abort as a rollback, and the errors (unknown
// release, a member held).

import t from 'tap';
import { runCli } from '../helpers/cli.ts';
import { releaseConfig } from '../helpers/releases.ts';
import { startUpstream } from '../helpers/upstreams.ts';
import { runVeer } from '../helpers/veer.ts';

t.test('release start, status, pause, resume and watch', async (t) => {
  const ups = await Promise.all(['f1', 'f2', 'c4', 'c5'].map((n) => startUpstream(n)));
  t.teardown(() => Promise.all(ups.map((u) => u.close())));
  const running = await runVeer(releaseConfig(ups.map((u) => u.url), '    steps: [{ weight: 10, pause: 200ms }, { weight: 40 }, { weight: 100 }]\n'));
  t.teardown(() => running.stop());
  const env = { VEER_ADMIN_URL: running.adminUrl };

  const start = await runCli(['release', 'start', 'checkout-2.3'], env);
  t.equal(start.code, 0, start.stderr);
  t.match(start.stdout, /release checkout-2\.3: progressing step 1\/3, canaries at 10%/);
  t.match(start.stdout, /frontend: canary v2 \[commit=3f2a9c1\], stable v1; weights v1=90 v2=10/);
  t.match(start.stdout, /cart: canary v5 \[commit=3f2a9c1\], stable v4; weights v4=90 v5=10/);

  // The second step has no pause: the release waits there for resume.
  const watch = await runCli(['release', 'watch', 'checkout-2.3', '--interval', '50', '--timeout', '1'], env);
  t.equal(watch.code, 1, 'still running after --timeout: exit 1');
  t.match(watch.stderr, /paused \(plan\) step 2\/3, canaries at 40%/);

  const held = await runCli(['rollout', 'start', 'cart', '--canary', 'v5', '--steps', '10'], env);
  t.equal(held.code, 1);
  t.match(held.stderr, /release checkout-2\.3 holds cart.*\[release_holds_service\]/);

  const json = await runCli(['release', 'status', 'checkout-2.3', '--json'], env);
  t.match(JSON.parse(json.stdout), { phase: 'paused', pausedBy: 'plan', step: 1, members: { cart: { weights: { v4: 60, v5: 40 } } } });

  t.equal((await runCli(['release', 'resume', 'checkout-2.3', '--reason', 'looks good'], env)).code, 0);
  const done = await runCli(['release', 'watch', 'checkout-2.3', '--interval', '50', '--timeout', '10'], env);
  t.equal(done.code, 0, done.stderr);
  t.match(done.stderr, /promoted step 3\/3, canaries at 100%/);

  // Promoted: status says until when abort rolls back; abort then rolls every member back.
  const promoted = await runCli(['release', 'status', 'checkout-2.3'], env);
  t.match(promoted.stdout, /abort rolls every member back until \d{4}-\d\d-\d\dT/);
  const rolled = await runCli(['release', 'abort', 'checkout-2.3', '--reason', 'checkout errors'], env);
  t.equal(rolled.code, 0, rolled.stderr);
  t.match(rolled.stdout, /release checkout-2\.3: rolledBack .*canaries at 0%/);
  t.match(rolled.stdout, /reason: rolled back: abort by .*checkout errors/);
  t.match(rolled.stdout, /cart: canary v5 .*weights v4=100 v5=0/);
  const after = await runCli(['release', 'watch', 'checkout-2.3', '--interval', '50', '--timeout', '5'], env);
  t.equal(after.code, 1, 'watch ends with 1 on a rolled back release');
  t.match(after.stderr, /release checkout-2\.3 rolled back: rolled back: abort by/);

  const unknown = await runCli(['release', 'abort', 'nope'], env);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /no release named "nope".*\[no_release\]/);
});
