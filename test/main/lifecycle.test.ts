// Start-up, hot reload, SIGHUP and SIGTERM draining, against real processes.

import { renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import t from 'tap';
import { request } from 'undici';
import { startUpstream } from '../helpers/upstreams.ts';
import { runVeer, serviceConfig, spawnVeer, writeConfig } from '../helpers/veer.ts';

async function versionOf(url: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await request(url, { headers });
  await res.body.text();
  return String(res.headers['x-veer-version']);
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

t.test('a bad config at start exits 1 and names the path and line of every error', async (t) => {
  const file = writeConfig(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
services:
  - name: shop
    versions:
      - { name: v1, upstream: http://127.0.0.1:1 }
    split:
      weights: { v1: 100, v3: 5 }
`);
  const veer = spawnVeer(['serve', '--config', file]);
  t.teardown(() => veer.child.kill('SIGKILL'));
  t.equal(await veer.exited, 1, 'exit code 1');
  t.match(veer.output(), /services\[0\]\.split\.weights\.v3/, 'names the path');
  t.match(veer.output(), new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:8:\\d+`), 'gives line:column');
  t.match(veer.output(), /unknown_version/, 'gives the code');
});

t.test('a missing config file at start exits 1 with a clear message', async (t) => {
  const veer = spawnVeer(['serve', '--config', '/nonexistent/veer.yaml']);
  t.teardown(() => veer.child.kill('SIGKILL'));
  t.equal(await veer.exited, 1);
  t.match(veer.output(), /cannot read \/nonexistent\/veer\.yaml/);
  t.match(veer.output(), /config_unreadable/);
});

t.test('a valid edit swaps the table; an invalid edit keeps the last good config', async (t) => {
  const v1 = await startUpstream('v1');
  const v2 = await startUpstream('v2');
  const yaml = (weights: Record<string, number>) => serviceConfig({ versions: { v1: v1.url, v2: v2.url }, weights });
  const running = await runVeer(yaml({ v1: 100, v2: 0 }), { watch: true });
  t.teardown(async () => {
    await running.stop();
    await v1.close();
    await v2.close();
  });
  t.equal(await versionOf(running.url), 'v1');

  writeFileSync(running.configPath, yaml({ v1: 0, v2: 100 }));
  t.ok(await waitFor(async () => (await versionOf(running.url)) === 'v2', 10_000), 'the edit is applied by the watcher');
  t.equal(running.veer.reloader.stats.success, 1);

  writeFileSync(running.configPath, yaml({ v1: 0, v2: 0 }));
  t.ok(await waitFor(async () => running.veer.reloader.stats.failure === 1, 10_000), 'the bad edit is counted');
  t.equal(await versionOf(running.url), 'v2', 'the last good config still serves');
  const ready = (await (await request(`${running.adminUrl}/readyz`)).body.json()) as {
    status: string;
    config: { reloads: { failure: number }; lastReloadError: { issues: { path: string; code: string }[] } };
  };
  t.equal(ready.status, 'ready');
  t.equal(ready.config.reloads.failure, 1);
  t.match(ready.config.lastReloadError.issues, [{ path: 'services[0].split.weights', code: 'invalid_weights' }]);

  writeFileSync(running.configPath, 'services: [ {{{ not yaml');
  t.ok(await waitFor(async () => running.veer.reloader.stats.failure === 2, 10_000), 'a syntax error is counted');
  t.equal(await versionOf(running.url), 'v2');

  // Replaced by rename, as editors and ConfigMaps do.
  const tmp = join(dirname(running.configPath), '.veer.yaml.tmp');
  writeFileSync(tmp, yaml({ v1: 100, v2: 0 }));
  renameSync(tmp, running.configPath);
  t.ok(await waitFor(async () => (await versionOf(running.url)) === 'v1', 10_000), 'a rename-replaced file is reloaded');
});

t.test('an unchanged file is not reloaded, and bursts coalesce', async (t) => {
  const v1 = await startUpstream('v1');
  const running = await runVeer(serviceConfig({ versions: { v1: v1.url } }));
  t.teardown(async () => {
    await running.stop();
    await v1.close();
  });
  t.equal(await running.veer.reloader.reload('test'), 'unchanged');
  const generation = running.veer.state.table.generation;
  writeFileSync(running.configPath, serviceConfig({ versions: { v1: v1.url }, extra: '    exposeVersionHeader: false\n' }));
  const outcomes = await Promise.all([1, 2, 3, 4, 5].map(() => running.veer.reloader.reload('burst')));
  t.ok(outcomes.includes('success'));
  t.equal(running.veer.state.table.generation, generation + 1, 'one new table for the burst');
});

t.test('SIGHUP reloads; SIGTERM lets a slow request finish and exits 0', async (t) => {
  let slowStarted: () => void = () => {};
  const started = new Promise<void>((r) => (slowStarted = r));
  const upstream = await startUpstream('v1', (req, res) => {
    if (req.url === '/slow') {
      slowStarted();
      setTimeout(() => res.end('slow done'), 1500);
      return;
    }
    res.end('fast');
  });
  const v2 = await startUpstream('v2');
  const file = writeConfig(serviceConfig({ versions: { v1: upstream.url, v2: v2.url } }).replace('log: { level: silent }', 'log: { level: info }'));
  const veer = spawnVeer(['serve', '--config', file]);
  t.teardown(async () => {
    veer.child.kill('SIGKILL');
    await upstream.close();
    await v2.close();
  });
  const serving = await veer.waitForLog('veer is serving');
  const url = `http://${String(serving.listen)}`;
  t.equal(await versionOf(url), 'v1');

  writeFileSync(file, serviceConfig({ versions: { v1: upstream.url, v2: v2.url }, weights: { v1: 0, v2: 1 } }).replace('log: { level: silent }', 'log: { level: info }'));
  veer.child.kill('SIGHUP');
  await veer.waitForLog('config reloaded');
  t.equal(await versionOf(url), 'v2', 'SIGHUP applied the new weights');

  writeFileSync(file, serviceConfig({ versions: { v1: upstream.url, v2: v2.url } }).replace('log: { level: silent }', 'log: { level: info }'));
  veer.child.kill('SIGHUP');
  await veer.waitForLog('config reloaded');

  const slow = request(`${url}/slow`);
  await started;
  veer.child.kill('SIGTERM');
  const res = await slow;
  t.equal(res.statusCode, 200);
  t.equal(await res.body.text(), 'slow done', 'the in-flight request completed');
  t.equal(await veer.exited, 0, 'exit code 0');
  t.match(veer.output(), /"msg":"stopped"/);
});
