// The release routes' edges: auth, strict bodies and verbs, unknown names,
// and a list of idle releases. The runs themselves are in test/rollout/release*.test.ts.

import t from 'tap';
import { admin } from '../helpers/admin.ts';
import { releaseConfig } from '../helpers/releases.ts';
import { startUpstream } from '../helpers/upstreams.ts';
import { runVeer } from '../helpers/veer.ts';

t.test('release routes: auth, validation, unknown names, idle list', async (t) => {
  const ups = await Promise.all(['f1', 'f2', 'c4', 'c5'].map((n) => startUpstream(n)));
  t.teardown(() => Promise.all(ups.map((u) => u.close())));
  const yaml = releaseConfig(ups.map((u) => u.url), '    steps: [{ weight: 10 }, { weight: 100 }]\n').replace('admin: { listen: 127.0.0.1:0 }', 'admin: { listen: 127.0.0.1:0, token: s3cret }');
  const running = await runVeer(yaml);
  t.teardown(() => running.stop());
  const token = 's3cret';

  t.equal((await admin(running.adminUrl, 'GET', '/api/v1/releases')).status, 401, 'the token is required');
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/start')).status, 401);
  t.equal((await admin(running.adminUrl, 'GET', '/api/v1/releases/checkout-2.3', { token })).body.phase, 'idle', 'nothing started without the token');

  const list = await admin<{ releases: { name: string; phase: string; members: Record<string, { canary: string; weights: Record<string, number> }> }[] }>(running.adminUrl, 'GET', '/api/v1/releases', { token });
  t.equal(list.status, 200);
  t.match(list.body.releases, [{ name: 'checkout-2.3', phase: 'idle', members: { frontend: { canary: 'v2', weights: { v1: 100, v2: 0 } }, cart: { canary: 'v5' } } }]);

  const verb = await admin<{ error: { code: string } }>(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/explode', { token });
  t.equal(verb.status, 400);
  t.equal(verb.body.error.code, 'invalid_body');
  const body = await admin<{ error: { code: string } }>(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/start', { token, body: { weight: 50 } });
  t.equal(body.status, 400, 'unknown body keys are refused');
  t.equal((await admin<{ phase: string }>(running.adminUrl, 'GET', '/api/v1/releases/checkout-2.3', { token })).body.phase, 'idle', 'and nothing started');
  const unknown = await admin<{ error: { code: string } }>(running.adminUrl, 'POST', '/api/v1/releases/nope/start', { token });
  t.equal(unknown.status, 404);
  t.equal(unknown.body.error.code, 'no_release');
  const pause = await admin<{ error: { code: string } }>(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/pause', { token });
  t.equal(pause.status, 404, 'a verb on a release that is not running');
  t.equal(pause.body.error.code, 'no_release');

  const started = await admin<{ phase: string }>(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/start', { token, headers: { 'x-veer-actor': 'cli:ana' }, body: { reason: 'go' } });
  t.equal(started.status, 201);
  const twice = await admin<{ error: { code: string } }>(running.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/start', { token });
  t.equal(twice.status, 409, 'a running release does not start again');
  t.equal(twice.body.error.code, 'release_holds_service');
  const history = (await admin<{ history: { service: string; actor: string; action: string }[] }>(running.adminUrl, 'GET', '/api/v1/history?service=release:checkout-2.3', { token })).body.history;
  t.match(history, [{ action: 'release.start', actor: /^cli:ana / }]);
});
