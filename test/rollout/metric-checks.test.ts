// Metric checks without a real Prometheus: placeholders, judging a value,
// combining a check's parts, and the client against stand-in servers that
// answer what a Prometheus may (NaN, no data, several series, an error,
// nothing at all). An unreachable Prometheus is inconclusive end to end.

import { createServer as createHttpsServer } from 'node:https';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import t from 'tap';
import { combineCheck, fillQuery, judgeMetric, PrometheusClient, promDuration } from '../../src/rollout/index.ts';
import type { AnalysisResult, MetricCheck } from '../../src/state/index.ts';
import { METRIC_PLACEHOLDERS } from '../../src/table/index.ts';
import { admin, startLoad, until } from '../helpers/admin.ts';
import { makePki, opensslMissing } from '../helpers/certs.ts';
import type { TestScope } from '../helpers/http.ts';
import { freePort, REFUSED_PORT, listenForTest, startTwoUpstreams } from '../helpers/upstreams.ts';
import { runVeer, serviceConfig } from '../helpers/veer.ts';

const CTX = { service: 'shop', canary: 'v2', stables: ['v1', 'v3'], intervalMs: 60_000 };
const CHECK: MetricCheck = { name: 'conversion', query: 'x', min: 0.02, max: 0.5 };

t.test('placeholders: every one compile accepts is filled, {{interval}} as a PromQL duration', async (t) => {
  const query = METRIC_PLACEHOLDERS.map((p) => `{{${p}}}`).join(' ');
  t.equal(fillQuery(query, CTX), 'shop v2 v1|v3 1m');
  t.equal(fillQuery('rate(x{version="{{ canary }}"}[{{interval}}])', { ...CTX, intervalMs: 400 }), 'rate(x{version="v2"}[400ms])');
  t.same([promDuration(3_600_000), promDuration(90_000), promDuration(10_000), promDuration(1500), promDuration(100)], ['1h', '90s', '10s', '1500ms', '100ms']);
});

t.test('a value outside [min, max] fails; NaN, Inf or no value is inconclusive, never a pass', async (t) => {
  t.match(judgeMetric(CHECK, 'q', 0.1, null), { verdict: 'pass', value: 0.1, reason: 'conversion = 0.1 is within [0.02, 0.5]' });
  t.match(judgeMetric(CHECK, 'q', 0.01, null), { verdict: 'fail', value: 0.01, reason: 'conversion = 0.01 is outside [0.02, 0.5]' });
  t.match(judgeMetric(CHECK, 'q', 0.6, null), { verdict: 'fail' });
  t.match(judgeMetric({ ...CHECK, min: null }, 'q', -5, null), { verdict: 'pass', reason: /within \[-inf, 0\.5\]/ });
  t.match(judgeMetric({ ...CHECK, max: null }, 'q', 1e9, null), { verdict: 'pass', reason: /within \[0\.02, \+inf\]/ });
  for (const v of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) t.match(judgeMetric(CHECK, 'q', v, null), { verdict: 'inconclusive', value: null }, String(v));
  t.match(judgeMetric(CHECK, 'q', null, 'no data'), { verdict: 'inconclusive', value: null, query: 'q', reason: 'conversion: no data' });
});

t.test("a check's verdict: any failure fails it, else anything inconclusive leaves it inconclusive", async (t) => {
  const own = (verdict: AnalysisResult['verdict']): AnalysisResult => ({
    at: 'now',
    verdict,
    reasons: [`own ${verdict}`],
    windowMs: 1000,
    canary: { requests: 100, errors: 0, errorRatio: 0, p99Ms: 1 },
    stable: { requests: 100, errors: 0, errorRatio: 0, p99Ms: 1 },
    z: 0,
  });
  const pass = judgeMetric(CHECK, 'q', 0.1, null);
  const fail = judgeMetric(CHECK, 'q', 0.01, null);
  const unsure = judgeMetric(CHECK, 'qq', null, 'no data');
  const okHook = { type: 'rollout', url: 'http://h/', at: 'now', status: 200, ok: true, durationMs: 1 };
  const badHook = { ...okHook, status: 500, ok: false, error: 'answered 500' };
  t.same(combineCheck(own('pass'), [], []), own('pass'), 'nothing added: unchanged');
  t.match(combineCheck(own('pass'), [pass], [okHook]), { verdict: 'pass', metrics: [pass], hooks: [okHook] });
  t.match(combineCheck(own('pass'), [pass, unsure], []), { verdict: 'inconclusive', reasons: ['conversion: no data (query: qq)'] });
  t.match(combineCheck(own('inconclusive'), [fail], []), { verdict: 'fail', reasons: [fail.reason] }, 'a failing metric fails even with too little traffic');
  t.match(combineCheck(own('pass'), [unsure], [badHook]), { verdict: 'fail', reasons: ['rollout hook http://h/ answered 500'] });
  t.match(combineCheck(own('fail'), [pass], []), { verdict: 'fail', reasons: ['own fail'] });
  t.match(combineCheck(own('inconclusive'), [pass], []), { verdict: 'inconclusive', reasons: ['own inconclusive'] });
});

/** A stand-in Prometheus answering `answer` to every query; records the requests. */
async function fakePrometheus(t: TestScope, answer: (req: IncomingMessage, res: ServerResponse, body: string) => void) {
  const seen: { headers: IncomingMessage['headers']; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ headers: req.headers, body });
      answer(req, res, body);
    });
  });
  const port = await listenForTest(t, server);
  return { address: `http://127.0.0.1:${port}`, seen };
}

const json = (res: ServerResponse, status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
const vector = (...values: string[]) => ({ status: 'success', data: { resultType: 'vector', result: values.map((v, i) => ({ metric: { i: String(i) }, value: [1, v] })) } });

t.test('the client: one number, or the reason there is none (inconclusive)', async (t) => {
  const answers: Record<string, (res: ServerResponse) => void> = {
    one: (res) => json(res, 200, vector('0.125')),
    scalar: (res) => json(res, 200, { status: 'success', data: { resultType: 'scalar', result: [1, '3'] } }),
    nan: (res) => json(res, 200, vector('NaN')),
    inf: (res) => json(res, 200, vector('+Inf')),
    empty: (res) => json(res, 200, vector()),
    two: (res) => json(res, 200, vector('1', '2')),
    matrix: (res) => json(res, 200, { status: 'success', data: { resultType: 'matrix', result: [] } }),
    bad: (res) => json(res, 400, { status: 'error', errorType: 'bad_data', error: 'parse error at char 5' }),
    html: (res) => res.writeHead(502).end('<html>bad gateway</html>'),
    hang: () => {},
  };
  const prom = await fakePrometheus(t, (_req, res, body) => answers[new URLSearchParams(body).get('query')!]!(res));
  const client = new PrometheusClient(process.cwd());
  t.teardown(() => client.close());
  const source = { address: `${prom.address}/`, bearerToken: 's3cret' };
  const checks = Object.keys(answers).map((name) => ({ name, query: name, min: 0, max: 100 }));
  const started = performance.now();
  const results = Object.fromEntries((await client.check(source, checks, CTX, 1000)).map((r) => [r.name, r]));
  t.ok(performance.now() - started < 3000, 'a query that hangs is bounded by the timeout');
  t.match(results.one, { verdict: 'pass', value: 0.125 });
  t.match(results.scalar, { verdict: 'pass', value: 3 });
  t.match(results.nan, { verdict: 'inconclusive', value: null, reason: 'nan: the query answered NaN, not a number to judge' });
  t.match(results.inf, { verdict: 'inconclusive', reason: /answered Infinity/ });
  t.match(results.empty, { verdict: 'inconclusive', reason: 'empty: no data: the query answered an empty vector' });
  t.match(results.two, { verdict: 'inconclusive', reason: /answered 2 series; it must answer one/ });
  t.match(results.matrix, { verdict: 'inconclusive', reason: /a matrix result/ });
  t.match(results.bad, { verdict: 'inconclusive', reason: 'bad: Prometheus refused the query (HTTP 400, bad_data): parse error at char 5' });
  t.match(results.html, { verdict: 'inconclusive', reason: /HTTP 502 with a body that is not JSON/ });
  t.match(results.hang, { verdict: 'inconclusive', reason: 'hang: Prometheus did not answer within 1000ms' });
  t.equal(prom.seen[0]!.headers.authorization, 'Bearer s3cret', 'the bearer token is sent');
  t.equal(prom.seen[0]!.headers['content-type'], 'application/x-www-form-urlencoded', 'POST /api/v1/query with a form body');

  const basic = await client.check({ address: prom.address, basicAuth: { username: 'u', password: 'p:w' } }, [checks[0]!], CTX, 2000);
  t.equal(basic[0]!.verdict, 'pass');
  t.equal(prom.seen.at(-1)!.headers.authorization, `Basic ${Buffer.from('u:p:w').toString('base64')}`, 'basic auth is sent');
  t.match((await client.check(undefined, [checks[0]!], CTX, 2000))[0], { verdict: 'inconclusive', reason: /no analysis.prometheus in the running config/ });
  const down = await client.check({ address: `http://127.0.0.1:${REFUSED_PORT}` }, [checks[0]!], CTX, 2000);
  t.match(down[0], { verdict: 'inconclusive', reason: /cannot query Prometheus at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/ });
});

t.test('https: the server is verified against analysis.prometheus.ca', { skip: opensslMissing() ?? false }, async (t) => {
  const pki = makePki();
  t.teardown(() => pki.destroy());
  const server = createHttpsServer({ cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) }, (_req, res) => json(res, 200, vector('1')));
  const port = await listenForTest(t, server);
  const client = new PrometheusClient(dirname(pki.ca));
  t.teardown(() => client.close());
  const check = [{ name: 'one', query: 'one', min: 0, max: null }];
  t.match((await client.check({ address: `https://127.0.0.1:${port}`, ca: 'ca.crt' }, check, CTX, 2000))[0], { verdict: 'pass', value: 1 }, 'trusted through the CA file (relative to the config)');
  t.match((await client.check({ address: `https://127.0.0.1:${port}` }, check, CTX, 2000))[0], { verdict: 'inconclusive', reason: /cannot query Prometheus/ }, 'not trusted without it');
  t.match((await client.check({ address: `https://127.0.0.1:${port}`, ca: 'missing.crt' }, check, CTX, 2000))[0], { verdict: 'inconclusive', reason: /cannot read analysis\.prometheus\.ca .*missing\.crt: ENOENT/ });
});

t.test('an unreachable Prometheus: every check is inconclusive, the rollout never moves on', async (t) => {
  const [v1, v2] = await startTwoUpstreams(t);
  const rollout = [
    '    rollout:',
    '      canary: v2',
    '      steps: [{ weight: 50, pause: 100ms }, { weight: 100 }]',
    '      analysis:',
    '        interval: 150ms',
    '        minRequests: 1',
    `        prometheus: { address: "http://127.0.0.1:${await freePort()}" }`,
    '        metrics: [{ name: orders, query: "sum(rate(orders_total[{{interval}}]))", min: 1 }]',
    '',
  ].join('\n');
  const running = await runVeer(serviceConfig({ versions: { v1: v1.url, v2: v2.url }, weights: { v1: 100, v2: 0 }, extra: rollout }));
  t.teardown(() => running.stop());
  const load = startLoad(running.url, 4);
  t.teardown(() => load.stop());
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/services/svc/rollout')).status, 201);
  const rolloutOf = async () => (await admin<{ phase: string; step: number; consecutiveInconclusive: number; lastAnalysis: { verdict: string; metrics: unknown[] } | null }>(running.adminUrl, 'GET', '/api/v1/services/svc/rollout')).body;
  t.ok(await until(async () => (await rolloutOf()).consecutiveInconclusive >= 4, 5000), 'inconclusive checks in a row, counted');
  const r = await rolloutOf();
  t.match(r, { phase: 'progressing', step: 0 }, 'the step did not move on');
  t.match(r.lastAnalysis, { verdict: 'inconclusive', metrics: [{ name: 'orders', verdict: 'inconclusive', value: null, query: 'sum(rate(orders_total[150ms]))', reason: /ECONNREFUSED/ }] });
});
