// The admin API's weights, services, explain and history, against a real
// veer and real upstreams: bad input changes nothing, concurrent changes
// serialise, runtime weights survive restarts, a corrupt state file stops
// start-up.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { admin, countVersions } from '../helpers/admin.ts';
import { startTwoUpstreams } from '../helpers/upstreams.ts';
import { runVeer, serviceConfig, spawnVeer, startVeerOn, writeConfig } from '../helpers/veer.ts';

interface ServiceBody {
  weights: Record<string, number>;
  weightsSource: string;
  versions: { name: string; percent: number }[];
}
interface HistoryBody {
  history: { seq: number; action: string; actor: string; before: Record<string, number>; after: Record<string, number> }[];
}

t.test('GET services, PUT weights moves traffic, explain says why, history records it', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const running = await runVeer(serviceConfig({ versions: { v1: v1.url, v2: v2.url }, weights: { v1: 100, v2: 0 }, sticky: '{ header: x-user-id }' }));
  t.teardown(() => running.stop());
  const list = await admin<{ services: ServiceBody[] }>(running.adminUrl, 'GET', '/api/v1/services');
  t.equal(list.status, 200);
  t.match(list.body.services, [{ name: 'svc', weights: { v1: 100, v2: 0 }, weightsSource: 'config', sticky: { kind: 'header', name: 'x-user-id' }, rollout: null }]);

  const put = await admin<{ service: ServiceBody; change: { action: string } }>(running.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights: { v1: 0, v2: 1 } }, headers: { 'x-veer-actor': 'cli:alice' } });
  t.equal(put.status, 200);
  t.same(put.body.service.weights, { v1: 0, v2: 1 });
  t.equal(put.body.service.weightsSource, 'runtime');
  t.same(await countVersions(running.url, 20), { v2: 20 }, 'every request now goes to v2');

  const one = await admin<ServiceBody>(running.adminUrl, 'GET', '/api/v1/services/svc');
  t.same(one.body.versions.map((v) => v.percent), [0, 100]);

  const explain = await admin<{ version: string; by: string; reason: string }>(running.adminUrl, 'POST', '/api/v1/services/svc/explain', { body: { headers: { 'X-User-Id': 'alice' } } });
  t.equal(explain.status, 200);
  t.match(explain.body, { version: 'v2', by: 'sticky', reason: /x-user-id hashes to bucket/ });
  const noBody = await admin<{ by: string }>(running.adminUrl, 'POST', '/api/v1/services/svc/explain');
  t.equal(noBody.body.by, 'random', 'an empty explain body is a request without a sticky key');

  const history = await admin<HistoryBody>(running.adminUrl, 'GET', '/api/v1/history');
  t.match(history.body.history, [{ seq: 1, action: 'weights', actor: /^cli:alice \(/, before: { v1: 100, v2: 0 }, after: { v1: 0, v2: 1 } }]);

  const reset = await admin<{ service: ServiceBody }>(running.adminUrl, 'DELETE', '/api/v1/services/svc/weights');
  t.equal(reset.status, 200);
  t.same(reset.body.service.weights, { v1: 100, v2: 0 });
  t.equal(reset.body.service.weightsSource, 'config');
  t.same(await countVersions(running.url, 10), { v1: 10 });

  for (const [method, path] of [
    ['GET', '/api/v1/services/nope'],
    ['PUT', '/api/v1/services/nope/weights'],
    ['POST', '/api/v1/services/nope/explain'],
  ] as const) {
    const res = await admin<{ error: { code: string } }>(running.adminUrl, method, path, method === 'PUT' ? { body: { weights: { v1: 1 } } } : {});
    t.equal(res.status, 404, `${method} ${path}`);
    t.equal(res.body.error.code, 'unknown_service');
  }
});

t.test('every bad body gets 400 (or 413/415) with a code and changes nothing', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const running = await runVeer(serviceConfig({ versions: { v1: v1.url, v2: v2.url }, weights: { v1: 90, v2: 10 } }));
  t.teardown(() => running.stop());
  const ok = await admin(running.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights: { v1: 70, v2: 30 } } });
  t.equal(ok.status, 200);
  const stateFile = join(running.configPath, '..', 'var', 'veer-state.json');
  const fileBefore = readFileSync(stateFile, 'utf8');
  const generation = running.veer.state.table.generation;

  const bad: [string, string | object, number, string, Record<string, string>?][] = [
    ['unknown version', { weights: { v1: 50, v3: 50 } }, 400, 'unknown_version'],
    ['negative', { weights: { v1: -5, v2: 105 } }, 400, 'invalid_weights'],
    ['all zero', { weights: { v1: 0, v2: 0 } }, 400, 'invalid_weights'],
    ['empty weights', { weights: {} }, 400, 'invalid_weights'],
    ['string number', { weights: { v1: '50', v2: 50 } }, 400, 'invalid_body'],
    ['null', { weights: { v1: null, v2: 50 } }, 400, 'invalid_body'],
    ['boolean', { weights: { v1: true } }, 400, 'invalid_body'],
    ['nested object', { weights: { v1: { n: 1 } } }, 400, 'invalid_body'],
    ['malformed JSON', '{"weights": {"v1": 5', 400, 'invalid_body'],
    ['JSON with trailing garbage', '{"weights": {"v1": 5}} x', 400, 'invalid_body'],
    ['empty body', '', 400, 'invalid_body'],
    ['array', [{ v1: 1 }], 400, 'invalid_body'],
    ['weights as array', { weights: [50, 50] }, 400, 'invalid_body'],
    ['missing weights', { v1: 50, v2: 50 }, 400, 'invalid_body'],
    ['extra key', { weights: { v1: 50, v2: 50 }, force: true }, 400, 'invalid_body'],
    ['huge number', { weights: { v1: 1e12, v2: 1 } }, 400, 'invalid_weights'],
    ['overflowing number', '{"weights": {"v1": 1e400, "v2": 1}}', 400, 'invalid_weights'],
    ['text body', 'v1=50', 415, 'invalid_body', { 'content-type': 'text/plain' }],
    ['form body', 'v1=50', 415, 'invalid_body', { 'content-type': 'application/x-www-form-urlencoded' }],
    ['over the body limit', { weights: { v1: 1, pad: 'x'.repeat(70 * 1024) } }, 413, 'invalid_body'],
  ];
  for (const [name, body, status, code, headers] of bad) {
    const res = await admin<{ error: { code: string; message: string } }>(running.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body, headers });
    t.equal(res.status, status, `${name}: status`);
    t.equal(res.body.error?.code, code, `${name}: code (${res.body.error?.message})`);
    t.type(res.body.error?.message, 'string', `${name}: message`);
  }
  t.equal(running.veer.state.table.generation, generation, 'no new table was published');
  t.same(running.veer.state.table.servicesByName.get('svc')!.split.weights, { v1: 70, v2: 30 });
  t.equal(readFileSync(stateFile, 'utf8'), fileBefore, 'the state file is unchanged');
  const history = await admin<HistoryBody>(running.adminUrl, 'GET', '/api/v1/history');
  t.equal(history.body.history.length, 1, 'no history line for a refused change');
});

t.test('50 concurrent conflicting weight changes end in exactly one of them, each in the history', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const running = await runVeer(serviceConfig({ versions: { v1: v1.url, v2: v2.url } }));
  t.teardown(() => running.stop());
  const requests = Array.from({ length: 50 }, (_, i) => ({ v1: i + 1, v2: 100 - i }));
  const answers = await Promise.all(requests.map((weights) => admin(running.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights } })));
  t.same(
    answers.map((a) => a.status),
    requests.map(() => 200),
  );
  const final = running.veer.state.table.servicesByName.get('svc')!.split.weights;
  t.ok(
    requests.some((r) => r.v1 === final.v1 && r.v2 === final.v2),
    `the final weights ${JSON.stringify(final)} are one request's`,
  );
  const stored = JSON.parse(readFileSync(join(running.configPath, '..', 'var', 'veer-state.json'), 'utf8'));
  t.same(stored.services.svc.weights, final, 'the store holds the same weights');
  const { history } = (await admin<HistoryBody>(running.adminUrl, 'GET', '/api/v1/history?limit=100')).body;
  t.equal(history.length, 50, 'one history line per change');
  t.same(
    history.map((h) => h.after.v1!).sort((a, b) => a - b),
    requests.map((r) => r.v1),
    'each request appears exactly once',
  );
  for (let i = 1; i < history.length; i++) t.same(history[i]!.before, history[i - 1]!.after, `change ${i + 1} starts where change ${i} ended`);
  t.same(history.at(-1)!.after, final, 'the last change is the final state');
});

t.test('admin token: missing or wrong -> 401, right -> 200; health, readiness and metrics stay open', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const running = await runVeer(serviceConfig({ versions: { v1: v1.url, v2: v2.url }, top: 'admin:\n  listen: 127.0.0.1:0\n  token: s3cret-token\n' }).replace('admin:\n  listen: 127.0.0.1:0\n', ''));
  t.teardown(() => running.stop());
  const cases: [string, Record<string, string>, number][] = [
    ['missing', {}, 401],
    ['wrong', { authorization: 'Bearer nope' }, 401],
    ['prefix of the token', { authorization: 'Bearer s3cret' }, 401],
    ['longer token', { authorization: 'Bearer s3cret-token-x' }, 401],
    ['basic scheme', { authorization: `Basic ${Buffer.from('x:s3cret-token').toString('base64')}` }, 401],
    ['no scheme', { authorization: 's3cret-token' }, 401],
    ['right', { authorization: 'Bearer s3cret-token' }, 200],
    ['right, lower-case scheme', { authorization: 'bearer s3cret-token' }, 200],
  ];
  for (const [name, headers, status] of cases) {
    const res = await admin<{ error?: { code: string } }>(running.adminUrl, 'GET', '/api/v1/services', { headers });
    t.equal(res.status, status, name);
    if (status === 401) t.equal(res.body.error?.code, 'unauthorized', `${name}: code`);
  }
  const put = await admin<{ error?: { code: string } }>(running.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights: { v1: 1, v2: 1 } } });
  t.equal(put.status, 401, 'a write without the token is refused');
  t.same(running.veer.state.table.servicesByName.get('svc')!.split.weights, { v1: 100, v2: 0 }, 'and changes nothing');
  t.equal((await admin(running.adminUrl, 'GET', '/api/v1/nothing-here')).status, 401, 'unknown endpoints do not leak without the token');
  t.equal((await admin(running.adminUrl, 'GET', '/api/v1/nothing-here', { token: 's3cret-token' })).status, 404);
  for (const path of ['/healthz', '/readyz', '/metrics', '/metrics?x=1']) t.equal((await admin(running.adminUrl, 'GET', path)).status, 200, `${path} needs no token`);
});

t.test('a store that cannot save: 503 store_unavailable and nothing changes', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const d = mkdtempSync(join(tmpdir(), 'veer-store-'));
  const running = await runVeer(serviceConfig({ versions: { v1: v1.url, v2: v2.url }, top: `state: { path: ${join(d, 'gone', 'state.json')} }` }));
  t.teardown(() => running.stop());
  // After start, a plain file takes the place of the state directory: saving must fail.
  writeFileSync(join(d, 'gone'), 'x');
  const res = await admin<{ error: { code: string } }>(running.adminUrl, 'PUT', '/api/v1/services/svc/weights', { body: { weights: { v1: 0, v2: 1 } } });
  t.equal(res.status, 503);
  t.equal(res.body.error.code, 'store_unavailable');
  t.same(running.veer.state.table.servicesByName.get('svc')!.split.weights, { v1: 100, v2: 0 });
  t.same(await countVersions(running.url, 10), { v1: 10 });
  const ready = await admin<{ status: string; store: { status: string } }>(running.adminUrl, 'GET', '/readyz');
  t.equal(ready.status, 503, 'not ready while the store cannot be written');
  t.equal(ready.body.store.status, 'failing');
});

t.test('runtime weights survive a restart and win over the config until reset', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const stateDir = mkdtempSync(join(tmpdir(), 'veer-state-'));
  const configPath = writeConfig(serviceConfig({ versions: { v1: v1.url, v2: v2.url }, top: `state: { path: ${join(stateDir, 'state.json')} }` }));
  const start = () => startVeerOn(configPath);
  const first = await start();
  const url1 = `http://127.0.0.1:${first.adminAddress.port}`;
  t.equal((await admin(url1, 'PUT', '/api/v1/services/svc/weights', { body: { weights: { v1: 25, v2: 75 } } })).status, 200);
  await first.stop();

  const second = await start();
  t.teardown(() => second.stop());
  const url2 = `http://127.0.0.1:${second.adminAddress.port}`;
  const svc = (await admin<ServiceBody>(url2, 'GET', '/api/v1/services/svc')).body;
  t.same(svc.weights, { v1: 25, v2: 75 }, 'the stored weights win over the config');
  t.equal(svc.weightsSource, 'runtime');
  t.equal((await admin<HistoryBody>(url2, 'GET', '/api/v1/history')).body.history.length, 1, 'history survives too');
  t.equal((await admin(url2, 'DELETE', '/api/v1/services/svc/weights')).status, 200);
  t.same((await admin<ServiceBody>(url2, 'GET', '/api/v1/services/svc')).body.weights, { v1: 100, v2: 0 }, 'reset: the config applies again');
});

t.test('a corrupt state file stops start-up with a message naming it, and is left untouched', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'veer-state-'));
  const stateFile = join(stateDir, 'state.json');
  const corrupt = '{"format":"veer-state/1","services":{"svc":{"weights":{"v1":';
  writeFileSync(stateFile, corrupt);
  const file = writeConfig(serviceConfig({ versions: { v1: 'http://127.0.0.1:1' }, top: `state: { path: ${stateFile} }` }));
  const veer = spawnVeer(['serve', '--config', file]);
  t.teardown(() => veer.child.kill('SIGKILL'));
  t.equal(await veer.exited, 1, 'exit code 1');
  t.match(veer.output(), `state file ${stateFile} is corrupt`);
  t.match(veer.output(), /not valid JSON/);
  t.match(veer.output(), /state_corrupt/);
  t.equal(readFileSync(stateFile, 'utf8'), corrupt, 'the file is not overwritten');
});
