// deploy/grafana/veer.json is a valid dashboard whose PromQL only names
// metrics a running veer exports.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { startUpstream } from '../helpers/upstreams.ts';
import { ROOT, runVeer, serviceConfig } from '../helpers/veer.ts';
import { exportedNames, scrape } from './prom-text.ts';

interface Target {
  expr?: string;
  refId?: string;
}
interface Panel {
  id?: number;
  type?: string;
  title?: string;
  gridPos?: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name?: string;
  type?: string;
  query?: string | { query?: string };
  definition?: string;
}
interface Dashboard {
  title?: string;
  uid?: string;
  schemaVersion?: number;
  panels?: Panel[];
  templating?: { list?: Variable[] };
}

const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects: what is left once strings,
 * label matchers, ranges, grouping clauses, Grafana variables, numbers,
 * function names and keywords are taken out.
 */
function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+\S+/g, ' ')
    .replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/g, ' ')
    .replace(/(?<![A-Za-z_:])\d+(?:\.\d+)?(?:e[+-]?\d+)?/gi, ' ');
  const names: string[] = [];
  for (const m of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const rest = stripped.slice(m.index + m[0].length).trimStart();
    if (rest.startsWith('(')) continue; // a function
    if (PROMQL_KEYWORDS.has(m[0].toLowerCase())) continue;
    names.push(m[0]);
  }
  return names;
}

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana', 'veer.json'), 'utf8')) as Dashboard;

t.test('the PromQL name extractor finds metrics and only metrics', async (t) => {
  t.same(metricNamesIn('histogram_quantile(0.99, sum by (version, le) (rate(veer_request_duration_seconds_bucket{service="$service"}[$__rate_interval])))'), [
    'veer_request_duration_seconds_bucket',
  ]);
  t.same(metricNamesIn('sum(rate(a_total{code=~"5.."}[1m])) / sum without (x) (b) or vector(0) * 1e3 offset 5m'), ['a_total', 'b']);
});

t.test('veer.json has the shape of a Grafana dashboard', async (t) => {
  t.type(dashboard.title, 'string');
  t.ok(dashboard.title!.length > 0, 'has a title');
  t.type(dashboard.uid, 'string');
  t.type(dashboard.schemaVersion, 'number');
  const vars = dashboard.templating?.list ?? [];
  const service = vars.find((v) => v.name === 'service');
  t.ok(service, 'a `service` template variable');
  const serviceQuery = typeof service?.query === 'string' ? service.query : service?.query?.query;
  t.equal(serviceQuery, 'label_values(veer_requests_total, service)');
  t.equal(service?.type, 'query');

  const panels = allPanels(dashboard.panels ?? []);
  t.ok(panels.length >= 4, 'several panels');
  const ids = new Set<number>();
  for (const p of panels) {
    t.type(p.title, 'string', `panel ${p.id} has a title`);
    t.type(p.type, 'string', `${p.title}: has a type`);
    t.ok(p.gridPos && p.gridPos.w > 0 && p.gridPos.h > 0, `${p.title}: has a grid position`);
    t.ok(typeof p.id === 'number' && !ids.has(p.id), `${p.title}: unique id`);
    ids.add(p.id!);
    t.ok(Array.isArray(p.targets) && p.targets.length > 0, `${p.title}: has targets`);
    for (const target of p.targets ?? []) {
      t.type(target.expr, 'string', `${p.title} ${target.refId}: has a PromQL expr`);
      t.type(target.refId, 'string');
    }
  }
  const exprs = panels.flatMap((p) => (p.targets ?? []).map((x) => x.expr ?? ''));
  t.ok(exprs.some((e) => /rate\(veer_requests_total\{/.test(e)), 'a per-version request rate');
  t.ok(exprs.some((e) => /code=~"5\.\."/.test(e)), 'an error ratio');
  for (const q of ['0.5', '0.95', '0.99']) {
    t.ok(exprs.some((e) => e.startsWith(`histogram_quantile(${q},`) && e.includes('veer_request_duration_seconds_bucket')), `p${q.slice(2)} latency`);
  }
  t.ok(exprs.some((e) => e.includes('veer_version_weight')), 'weights over time');
});

t.test('every metric the dashboard queries is one veer exports', async (t) => {
  const upstream = await startUpstream('v1');
  const veer = await runVeer(serviceConfig({ versions: { v1: upstream.url } }));
  t.teardown(async () => {
    await veer.stop();
    await upstream.close();
  });
  await (await fetch(`${veer.url}/`)).arrayBuffer();
  const exported = exportedNames(await scrape(veer.adminUrl));

  const queries: { where: string; expr: string }[] = [];
  for (const p of allPanels(dashboard.panels ?? [])) for (const x of p.targets ?? []) queries.push({ where: `${p.title} ${x.refId}`, expr: x.expr ?? '' });
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
    const lv = /^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*[A-Za-z_]\w*\s*\)$/.exec(q);
    t.ok(lv, `variable ${v.name}: label_values(metric, label)`);
    if (lv) queries.push({ where: `variable ${v.name}`, expr: lv[1]! });
  }
  for (const { where, expr } of queries) {
    const names = metricNamesIn(expr);
    t.ok(names.length > 0, `${where}: names a metric`);
    for (const name of names) t.ok(exported.has(name), `${where}: ${name} is exported by veer`);
  }
});
