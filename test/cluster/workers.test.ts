// `workers: N`: the data plane in node:cluster workers, against the real
// binary. Which worker served a request never reaches clients; the tests
// read it from the JSON logs (each worker logs its own pid and, when it
// drains, how many requests it served).

import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { admin, until } from '../helpers/admin.ts';
import { REFUSED_PORT, startTwoUpstreams, startUpstream, type TestUpstream } from '../helpers/upstreams.ts';
import { serveInChild, serviceConfig, spawnVeer, writeConfig, type VeerProcess } from '../helpers/veer.ts';
import { parsePromText, sumOf } from '../metrics/prom-text.ts';

/** One request on a fresh connection (so the primary hands each to the next worker in turn). */
function fresh(url: string, path = '/', headers: Record<string, string> = {}): Promise<{ status: number; version: string | undefined; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, version: res.headers['x-veer-version'] as string | undefined, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(3000, () => req.destroy(new Error('no answer within 3 s')));
    req.end();
  });
}

function clusterConfig(v1: TestUpstream, v2: TestUpstream, opts: { weights: Record<string, number>; sticky?: string; extra?: string }): string {
  return serviceConfig({ versions: { v1: v1.url, v2: v2.url }, ...opts, top: 'workers: 2' }).replace('log: { level: silent }', 'log: { level: info }');
}

/** Every JSON log line the process wrote with this msg, in order. */
function logsOf(veer: VeerProcess, msg: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of veer.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const record = JSON.parse(line) as Record<string, unknown>;
      if (record.msg === msg) out.push(record);
    } catch {
      // not a log line
    }
  }
  return out;
}

async function start(t: Test, yaml: string): Promise<{ veer: VeerProcess; url: string; adminUrl: string; workerPids: number[]; configPath: string }> {
  const configPath = writeConfig(yaml);
  const { veer, serving, workerPids } = await serveInChild(t, configPath, { workers: 2 });
  return { veer, url: `http://${String(serving.listen)}`, adminUrl: `http://${String(serving.admin)}`, workerPids, configPath };
}

t.test('workers: 2 agree on sticky users, /metrics sums them, rollouts see their traffic, SIGTERM drains them and exits 0', async (t) => {
  let slowStarted: () => void = () => {};
  const started = new Promise<void>((r) => (slowStarted = r));
  const slowHandler = (name: string) => (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/slow') {
      slowStarted();
      setTimeout(() => res.end('slow done'), 1000);
      return;
    }
    res.end(name);
  };
  const v1 = await startUpstream('v1', slowHandler('v1'));
  const v2 = await startUpstream('v2', slowHandler('v2'));
  t.teardown(async () => {
    await v1.close();
    await v2.close();
  });
  const { veer, url, adminUrl, workerPids } = await start(t, clusterConfig(v1, v2, { weights: { v1: 50, v2: 50 }, sticky: '{ header: x-user-id }' }));
  t.equal(new Set(workerPids).size, 2, 'two worker processes');
  t.notOk(workerPids.includes(veer.pid), 'the primary serves no traffic itself');

  // A rollout in the primary (its analysis reads the workers' windows); the step keeps 50/50.
  const rollout = await admin(adminUrl, 'POST', '/api/v1/services/svc/rollout', {
    body: { canary: 'v2', steps: [{ weight: 50 }], analysis: { interval: '1s', minRequests: 5 } },
  });
  t.equal(rollout.status, 201, 'rollout started in the primary');
  // Checks run every second over the last second: watch them all while the traffic flows.
  type Check = { canary: { requests: number }; stable: { requests: number } };
  let analysed: Check | null = null;
  const seenChecks = new Set<string>();
  const watching = (async () => {
    for (let i = 0; i < 150 && analysed === null; i++) {
      const last = (await admin<{ lastAnalysis: Check | null }>(adminUrl, 'GET', '/api/v1/services/svc/rollout')).body.lastAnalysis;
      seenChecks.add(JSON.stringify(last));
      if (last !== null && last.canary.requests > 0 && last.stable.requests > 0) analysed = last;
      else await new Promise((r) => setTimeout(r, 100));
    }
  })();

  const users = 30;
  const perUser = 4;
  const seen = new Map<string, Set<string>>();
  let leaked = 0;
  for (let round = 0; round < perUser; round++) {
    for (let u = 0; u < users; u++) {
      const res = await fresh(url, '/', { 'x-user-id': `user-${u}` });
      if (res.status !== 200) t.fail(`status ${res.status}`);
      for (const name of Object.keys(res.headers)) if (/worker|pid/i.test(name)) leaked++;
      const set = seen.get(`user-${u}`) ?? new Set<string>();
      set.add(String(res.version));
      seen.set(`user-${u}`, set);
    }
  }
  const sent = users * perUser;
  t.equal(leaked, 0, 'no response header names the worker');
  t.same([...seen.values()].filter((s) => s.size !== 1).length, 0, 'every user got one version on every request, whichever worker served it');
  const versions = new Set([...seen.values()].map((s) => [...s][0]));
  t.same([...versions].sort(), ['v1', 'v2'], 'users are split between both versions');

  const metrics = await admin<string>(adminUrl, 'GET', '/metrics');
  const text = parsePromText(metrics.body);
  t.equal(sumOf(text, 'veer_requests_total'), sent, '/metrics: requests summed over the workers equal the requests sent');
  t.equal(sumOf(text, 'veer_request_duration_seconds_count'), sent, '/metrics: durations too');
  t.equal(sumOf(text, 'veer_version_weight', { version: 'v2' }), 50, 'weight gauges are not multiplied by the worker count');
  t.equal(sumOf(text, 'veer_rollout_info', { phase: 'paused' }), 1, 'the rollout phase comes from the primary');

  // A trickle of traffic until a check has seen both versions (bounded), so
  // the check does not depend on how fast this machine sent the rounds above.
  let extra = 0;
  for (let i = 0; i < 100 && (analysed as Check | null) === null; i++) {
    const res = await fresh(url, '/', { 'x-user-id': `user-${i % users}` });
    extra++;
    if (res.status !== 200) t.fail(`status ${res.status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await watching;
  const check = analysed as Check | null;
  t.ok(check, 'the primary analysed the canary with the traffic the workers served', { checks: [...seenChecks] });
  if (check) t.ok(check.canary.requests + check.stable.requests <= sent + extra, `a check saw ${check.canary.requests} canary + ${check.stable.requests} stable requests`);

  const slow = fresh(url, '/slow', { 'x-user-id': 'user-0' });
  await started;
  veer.child.kill('SIGTERM');
  const res = await slow;
  t.equal(res.status, 200);
  t.equal(res.body, 'slow done', 'the request in flight at SIGTERM completed');
  t.equal(await veer.exited, 0, 'the primary exits 0');
  const drained = logsOf(veer, 'worker drained') as { pid: number; served: number }[];
  t.same(drained.map((d) => d.pid).sort(), [...workerPids].sort(), 'both workers drained');
  for (const d of drained) t.ok(d.served > 0, `worker ${d.pid} served ${d.served} requests`);
  t.equal(drained[0]!.served + drained[1]!.served, sent + extra + 1, 'the workers served every request between them');
  t.match(logsOf(veer, 'worker exited'), [{ code: 0, signal: null }, { code: 0, signal: null }], 'both exited 0');
  t.match(veer.output(), /"msg":"stopped"/);
  t.notMatch(veer.output(), /starting a replacement/, 'no worker is replaced while stopping');
});

t.test('a killed worker is replaced, gets the current weights before it takes traffic, and its counts stay in /metrics', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const { veer, url, adminUrl, workerPids, configPath } = await start(t, clusterConfig(v1, v2, { weights: { v1: 100, v2: 0 } }));
  const requestsTotal = async () => sumOf(parsePromText((await admin<string>(adminUrl, 'GET', '/metrics')).body), 'veer_requests_total');

  const put = await admin(adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights: { v1: 0, v2: 100 } } });
  t.equal(put.status, 200);
  const right = await Promise.all(Array.from({ length: 10 }, () => fresh(url)));
  t.same(new Set(right.map((r) => r.version)), new Set(['v2']), 'once the PUT answered, every worker serves the new weights');
  const generation = (await admin<{ config: { generation: number } }>(adminUrl, 'GET', '/readyz')).body.config.generation;
  t.equal(await requestsTotal(), 10);

  const victim = workerPids[0]!;
  process.kill(victim, 'SIGKILL');
  t.match(await veer.waitForLog('worker exited; starting a replacement'), { workerPid: victim, signal: 'SIGKILL' }, 'the primary saw it die');

  // Traffic while the replacement starts: the surviving worker serves it.
  const versions: Record<string, number> = {};
  let errors = 0;
  let loading = true;
  const loop = async () => {
    for (let i = 0; loading && i < 5000; i++) {
      try {
        const res = await fresh(url);
        versions[String(res.version)] = (versions[String(res.version)] ?? 0) + 1;
      } catch {
        errors++;
      }
    }
  };
  const load = Promise.all([loop(), loop(), loop()]);
  const replacement = Number((await veer.waitForLog('worker started')).workerPid);
  workerPids.push(replacement);
  t.not(replacement, victim);
  const ready = await veer.waitForLog('worker ready');
  t.match(ready, { workerPid: replacement, generation }, 'the replacement listened with the current table generation');
  loading = false;
  await load;
  t.equal(errors, 0, 'no request failed while the worker was replaced');
  t.same(Object.keys(versions), ['v2'], `every answer came from v2 (${JSON.stringify(versions)})`);
  // Fresh connections after the replacement listens: the primary shares them round-robin.
  const after: Record<string, number> = {};
  for (let i = 0; i < 40; i++) {
    const res = await fresh(url);
    after[String(res.version)] = (after[String(res.version)] ?? 0) + 1;
  }
  t.same(after, { v2: 40 }, 'every answer after the replacement came from v2: it never served the config weights');
  t.equal(await requestsTotal(), 10 + (versions.v2 ?? 0) + 40, "/metrics still counts the killed worker's requests (from its last snapshot)");

  // A reload in the primary reaches both workers, the replacement included.
  writeFileSync(configPath, clusterConfig(v1, v2, { weights: { v1: 100, v2: 0 }, extra: '    routes:\n      - { match: { header: { name: x-canary, value: always } }, to: v1 }\n' }));
  veer.child.kill('SIGHUP');
  await veer.waitForLog('config reloaded');
  const canary = await Promise.all(Array.from({ length: 10 }, () => fresh(url, '/', { 'x-canary': 'always' })));
  t.same(new Set(canary.map((r) => r.version)), new Set(['v1']), 'the new rule applies on every worker');
  t.equal((await fresh(url)).version, 'v2', 'the runtime weights survive the reload');

  veer.child.kill('SIGTERM');
  t.equal(await veer.exited, 0);
  const drained = logsOf(veer, 'worker drained') as { pid: number; served: number }[];
  const mine = drained.find((d) => d.pid === replacement);
  t.ok(mine && mine.served > 0, `the replacement served traffic (${mine?.served})`);
});

t.test('/readyz reports the workers, and turns 503 while none serves', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const { veer, adminUrl, workerPids } = await start(t, clusterConfig(v1, v2, { weights: { v1: 100, v2: 0 } }));
  workerPids.splice(0); // tracked below from the logs
  type Readyz = { status: string; workers?: { configured: number; serving: number } };
  const readyz = () => admin<Readyz>(adminUrl, 'GET', '/readyz');
  const before = await readyz();
  t.equal(before.status, 200);
  t.same(before.body.workers, { configured: 2, serving: 2 }, 'both workers serve');

  // Killed twice within the crash window, a worker is restarted after a backoff (250 ms, then
  // more): kill both workers, then both replacements, and both slots are empty for a while.
  const killed = new Set<number>();
  const killLiveWorkers = () => {
    const live = logsOf(veer, 'worker started').map((r) => Number(r.workerPid)).filter((pid) => !killed.has(pid));
    for (const pid of live) {
      killed.add(pid);
      workerPids.push(pid); // for the teardown, in case
      process.kill(pid, 'SIGKILL');
    }
    return live.length;
  };
  t.equal(killLiveWorkers(), 2, 'both workers killed');
  const replaced = () => logsOf(veer, 'worker started').length === 4;
  t.ok(await until(async () => replaced() && (await readyz()).body.workers?.serving === 2, 10_000), 'both replacements serve');
  t.equal(killLiveWorkers(), 2, 'both replacements killed');
  const seen: { down: { status: number; body: Readyz } | null } = { down: null };
  await until(
    async () => {
      const r = await readyz();
      if (r.body.workers?.serving === 0) seen.down = r;
      return seen.down !== null;
    },
    3000,
    10,
  );
  t.ok(seen.down, 'a moment with no worker serving was seen');
  t.equal(seen.down?.status, 503, 'then veer is not ready');
  t.match(seen.down?.body, { status: 'not_ready', workers: { configured: 2, serving: 0 } });
  t.ok(await until(async () => (await readyz()).status === 200, 10_000), 'ready again once the replacements listen');
  for (const record of logsOf(veer, 'worker started')) workerPids.push(Number(record.workerPid));
});

t.test('workers leave when the primary is killed', async (t) => {
  const v1 = await startUpstream('v1');
  t.teardown(() => v1.close());
  const { veer, workerPids } = await start(t, clusterConfig(v1, v1, { weights: { v1: 1, v2: 0 } }));
  veer.child.kill('SIGKILL');
  // Gone or a zombie (exited, orphaned, not reaped yet).
  const alive = () =>
    workerPids.filter((pid) => {
      try {
        return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
      } catch {
        return false;
      }
    });
  for (let i = 0; i < 100 && alive().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  t.same(alive(), [], 'both workers exited on their own');
});

t.test('workers that cannot listen stop veer with exit 1', async (t) => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as AddressInfo).port;
  const v1 = await startUpstream('v1');
  t.teardown(() => v1.close());
  const yaml = clusterConfig(v1, v1, { weights: { v1: 1, v2: 0 } }).replace('listen: 127.0.0.1:0', `listen: 127.0.0.1:${port}`);
  const veer = spawnVeer(['serve', '--config', writeConfig(yaml)]);
  t.teardown(() => veer.child.kill('SIGKILL'));
  t.equal(await veer.exited, 1);
  t.match(veer.output(), /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  t.notMatch(veer.output(), /starting a replacement/);
});

t.test('workers: 2 report endpoint states through the primary: veer_endpoint_up and GET /api/v1/services/{name}', async (t) => {
  const v1 = await startUpstream('v1');
  t.teardown(() => v1.close());
  const dead = REFUSED_PORT;
  const yaml = serviceConfig({
    versions: { v1: '__UP__' },
    top: 'workers: 2',
    extra: '    resilience: { failover: none, outlier: { consecutiveErrors: 1, baseEjection: 1m, maxEjectedPercent: 50 } }\n',
  })
    .replace('log: { level: silent }', 'log: { level: info }')
    .replace('upstream: __UP__', `upstream: ["${v1.url}", "http://127.0.0.1:${dead}"]`);
  const { url, adminUrl } = await start(t, yaml);
  // Enough requests on fresh connections that both workers try the dead endpoint (and retry on the live one).
  for (let i = 0; i < 20; i++) t.equal((await fresh(url)).status, 200, '', { diagnostic: false });
  const service = await admin<{ endpoints: { version: string; endpoint: string; up: boolean }[] }>(adminUrl, 'GET', '/api/v1/services/svc');
  t.same(
    [...service.body.endpoints].sort((a, b) => a.endpoint.localeCompare(b.endpoint)),
    [
      { version: 'v1', endpoint: `127.0.0.1:${v1.port}`, up: true },
      { version: 'v1', endpoint: `127.0.0.1:${dead}`, up: false },
    ].sort((a, b) => a.endpoint.localeCompare(b.endpoint)),
    'the dead endpoint is out, the live one in, as the workers see them',
  );
});
