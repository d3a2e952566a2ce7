// `veer pipeline run` with `release:` plans, against two real veers standing
// for two clusters: a clean run promotes the release in dev, then prod; a
// release whose cart canary fails in prod aborts there and, with
// `onAbort: rollback`, rolls dev's release back (every member at once).

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { admin, startLoad } from '../helpers/admin.ts';
import { runCli } from '../helpers/cli.ts';
import type { TestScope } from '../helpers/http.ts';
import { releaseConfig } from '../helpers/releases.ts';
import { startUpstream } from '../helpers/upstreams.ts';
import { runVeer, type RunningVeer } from '../helpers/veer.ts';

const STEPS = '    steps: [{ weight: 50, pause: 300ms }, { weight: 100 }]\n    analysis: { interval: 150ms, minRequests: 2, maxErrorRate: 0.2, failureLimit: 2 }\n';

async function clusters(t: TestScope): Promise<[RunningVeer, RunningVeer]> {
  const ok = await Promise.all(['f1', 'f2', 'c4', 'c5'].map((n) => startUpstream(n)));
  const broken = await startUpstream('broken', (_req, res) => res.writeHead(500).end('boom'));
  t.teardown(() => Promise.all([...ok, broken].map((u) => u.close())));
  const dev = await runVeer(releaseConfig(ok.map((u) => u.url), STEPS));
  // In prod, cart's canary answers 500.
  const prod = await runVeer(releaseConfig([ok[0]!.url, ok[1]!.url, ok[2]!.url, broken.url], STEPS));
  t.teardown(() => dev.stop());
  t.teardown(() => prod.stop());
  for (const c of [dev, prod]) {
    for (const path of ['/front', '/cart']) {
      const load = startLoad(`${c.url}${path}`, 2);
      t.teardown(() => load.stop());
    }
  }
  return [dev, prod];
}

function writePlan(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'veer-plan-')), 'PLAN.yaml');
  writeFileSync(file, text);
  return file;
}

const releaseOf = async (c: RunningVeer) => (await admin<{ phase: string; members: Record<string, { weights: Record<string, number> }> }>(c.adminUrl, 'GET', '/api/v1/releases/checkout-2.3')).body;

t.test('a release plan promotes the release stage by stage; a failing prod rolls dev back', async (t) => {
  const [dev, prod] = await clusters(t);
  const plan = writePlan(`release: checkout-2.3\nonAbort: rollback\nstages:\n  - { name: dev, admin: "${dev.adminUrl}" }\n  - { name: prod, admin: "${prod.adminUrl}" }\n`);
  const run = await runCli(['pipeline', 'run', plan, '--interval', '100'], { VEER_PIPELINE_RETRIES: '2', VEER_PIPELINE_RETRY_DELAY: '100ms' }, 30_000);
  t.equal(run.code, 1, run.stderr + run.stdout);
  t.match(run.stdout, /prod: failed: aborted: analysis failed 2 time\(s\) in a row: cart: canary error ratio 100\.00%/);
  t.match(run.stdout, /onAbort: rollback: rolling back dev/);
  t.match(run.stdout, /dev: promoted: .*rolled back: weights back to frontend\/v1=100 frontend\/v2=0 cart\/v4=100 cart\/v5=0/);
  t.equal((await releaseOf(dev)).phase, 'rolledBack', "dev's release was rolled back by dev's veer: every member in one change");
  t.same((await releaseOf(dev)).members.cart!.weights, { v4: 100, v5: 0 }, "dev's members are back");
  t.same((await releaseOf(dev)).members.frontend!.weights, { v1: 100, v2: 0 });
  t.equal((await releaseOf(prod)).phase, 'aborted');
  t.same((await releaseOf(prod)).members.frontend!.weights, { v1: 100, v2: 0 }, "prod's healthy member went back with the failing one");
});

t.test('a clean release plan promotes every stage', async (t) => {
  const [dev] = await clusters(t);
  const ups = await Promise.all(['a', 'b', 'c', 'd'].map((n) => startUpstream(n)));
  t.teardown(() => Promise.all(ups.map((u) => u.close())));
  const other = await runVeer(releaseConfig(ups.map((u) => u.url), STEPS));
  t.teardown(() => other.stop());
  for (const path of ['/front', '/cart']) {
    const load = startLoad(`${other.url}${path}`, 2);
    t.teardown(() => load.stop());
  }
  const plan = writePlan(`release: checkout-2.3\nstages:\n  - { name: dev, admin: "${dev.adminUrl}" }\n  - { name: staging, admin: "${other.adminUrl}" }\n`);
  const run = await runCli(['pipeline', 'run', plan, '--interval', '100'], {}, 30_000);
  t.equal(run.code, 0, run.stderr + run.stdout);
  t.match(run.stdout, /pipeline of release:checkout-2\.3 to checkout-2\.3: promoted/);
  for (const c of [dev, other]) t.same((await releaseOf(c)).members.cart!.weights, { v4: 0, v5: 100 });
});

t.test('a release plan names no service or canary', async (t) => {
  const plan = writePlan('release: checkout-2.3\nservice: shop\ncanary: v2\nstages: [{ name: dev, admin: "http://127.0.0.1:1" }]\n');
  const run = await runCli(['pipeline', 'run', plan], {});
  t.equal(run.code, 2);
  t.match(run.stderr, /service.*give service: \(with canary:\) or release:, not both/);
  t.match(run.stderr, /canary.*leave canary: out/);
});
