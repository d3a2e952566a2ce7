// GET /: the dashboard, one self-contained page (no build step, no external
// assets). The page itself carries no data, so it is served without the
// token; its script calls the admin API every second with the token the
// user enters (kept in the tab's sessionStorage only).

import type { FastifyInstance } from 'fastify';

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>veer</title>
<style>
  :root { --fg:#1d2330; --muted:#6b7385; --line:#e3e6ee; --bg:#f7f8fb; --ok:#1f8a4c; --bad:#c23b31; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, Segoe UI, Roboto, sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: center; gap: 16px; padding: 14px 24px; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { margin: 0; font-size: 18px; }
  header .status { color: var(--muted); margin-left: auto; }
  main { padding: 20px 24px; display: grid; gap: 18px; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px; }
  .card h2 { margin: 0 0 4px; font-size: 16px; }
  .meta { color: var(--muted); margin-bottom: 10px; }
  .bar { display: flex; height: 14px; border-radius: 7px; overflow: hidden; background: var(--line); margin: 8px 0 12px; }
  .bar span { display: block; height: 100%; }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: right; padding: 6px 8px; border-bottom: 1px solid var(--line); font-variant-numeric: tabular-nums; }
  th:first-child, td:first-child { text-align: left; }
  th { color: var(--muted); font-weight: 500; }
  .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
  .bad { color: var(--bad); font-weight: 600; }
  .phase { display: inline-block; padding: 1px 8px; border-radius: 10px; background: var(--line); }
  .phase.aborted { background: #fbe3e1; color: var(--bad); }
  .phase.promoted { background: #dff3e7; color: var(--ok); }
  form.token { display: none; gap: 8px; align-items: center; }
  form.token.shown { display: flex; }
  .error { color: var(--bad); }
</style>
</head>
<body>
<header>
  <h1>veer</h1>
  <form class="token" id="token-form">
    <label for="token">Admin token</label>
    <input id="token" type="password" autocomplete="off">
    <button type="submit">Use</button>
  </form>
  <span class="status" id="status">loading…</span>
</header>
<main id="services"></main>
<script>
(() => {
  const COLORS = ['#3866d6', '#e58a1f', '#2aa876', '#b548c6', '#d64545', '#5a6b7d'];
  const WINDOW = '10s';
  const servicesEl = document.getElementById('services');
  const statusEl = document.getElementById('status');
  const form = document.getElementById('token-form');
  const tokenInput = document.getElementById('token');
  let token = sessionStorage.getItem('veer-token') || '';

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    token = tokenInput.value;
    sessionStorage.setItem('veer-token', token);
    refresh();
  });

  async function api(path) {
    const res = await fetch(path, { headers: token ? { authorization: 'Bearer ' + token } : {} });
    if (res.status === 401) { const err = new Error('unauthorized'); err.status = 401; throw err; }
    if (!res.ok) throw new Error(path + ': HTTP ' + res.status);
    return res.json();
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'style') node.style.cssText = v; else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  const fmt = {
    pct: (x) => (x * 100).toFixed(x < 0.01 && x > 0 ? 2 : 1) + '%',
    rate: (x) => x >= 100 ? x.toFixed(0) : x.toFixed(1),
    ms: (x) => x === null || x === undefined ? '–' : x < 10 ? x.toFixed(1) : x.toFixed(0),
  };

  function renderService(service, stats) {
    const card = el('section', { class: 'card', 'data-service': service.name });
    const hosts = service.hosts ? service.hosts.join(', ') : 'any host';
    const sticky = service.sticky ? ' · sticky ' + service.sticky.kind + ' ' + service.sticky.name : '';
    card.append(el('h2', {}, service.name));
    card.append(el('div', { class: 'meta' }, hosts + ' ' + service.pathPrefix + sticky + ' · weights from ' + service.weightsSource));
    const rollout = service.rollout;
    if (rollout) {
      const step = ' · step ' + (rollout.step + 1) + '/' + rollout.stepCount + ' (canary ' + rollout.canaryWeight + '%)';
      const phase = el('span', { class: 'phase ' + rollout.phase, 'data-phase': rollout.phase }, rollout.phase);
      const last = rollout.lastAnalysis;
      const why = last ? ' · last check ' + last.verdict + (last.reasons.length ? ': ' + last.reasons.join('; ') : '') : '';
      card.append(el('div', { class: 'meta' }, 'rollout of ', rollout.canary || '', ': ', phase, step + why));
    }
    const bar = el('div', { class: 'bar' });
    service.versions.forEach((v, i) => {
      if (v.percent > 0) bar.append(el('span', { title: v.name + ' ' + v.percent + '%', style: 'width:' + v.percent + '%;background:' + COLORS[i % COLORS.length] }));
    });
    card.append(bar);
    const table = el('table', {}, el('thead', {}, el('tr', {}, ...['version', 'weight', 'req/s', 'errors', 'p50 ms', 'p99 ms'].map((h) => el('th', {}, h)))));
    const body = el('tbody');
    service.versions.forEach((v, i) => {
      const s = (stats && stats.versions[v.name]) || { rps: 0, errorRatio: 0, p50Ms: null, p99Ms: null };
      body.append(el('tr', { 'data-version': v.name },
        el('td', {}, el('span', { class: 'swatch', style: 'background:' + COLORS[i % COLORS.length] }), v.name),
        el('td', { 'data-field': 'weight' }, v.percent + '%'),
        el('td', { 'data-field': 'rps' }, fmt.rate(s.rps)),
        el('td', { 'data-field': 'errors', class: s.errorRatio > 0.01 ? 'bad' : '' }, fmt.pct(s.errorRatio)),
        el('td', { 'data-field': 'p50' }, fmt.ms(s.p50Ms)),
        el('td', { 'data-field': 'p99' }, fmt.ms(s.p99Ms))));
    });
    table.append(body);
    card.append(table);
    return card;
  }

  async function refresh() {
    try {
      const [services, stats] = await Promise.all([api('/api/v1/services'), api('/api/v1/stats?window=' + WINDOW)]);
      form.classList.remove('shown');
      const list = services.services;
      servicesEl.replaceChildren(...list.map((s) => renderService(s, stats.services[s.name])));
      statusEl.textContent = 'updated ' + new Date().toLocaleTimeString() + ' · last ' + WINDOW;
      statusEl.className = 'status';
    } catch (err) {
      if (err.status === 401) form.classList.add('shown');
      statusEl.textContent = err.status === 401 ? 'admin token needed' : 'cannot reach veer: ' + err.message;
      statusEl.className = 'status error';
    }
  }

  refresh();
  setInterval(refresh, 1000);
})();
</script>
</body>
</html>
`;

/** Registers GET / (the dashboard page). */
export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  app.get('/', async (_req, reply) => {
    reply.header('content-type', 'text/html; charset=utf-8');
    reply.header('cache-control', 'no-cache');
    // The page loads nothing from elsewhere and is never framed.
    reply.header('content-security-policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'");
    reply.header('x-frame-options', 'DENY');
    return PAGE;
  });
}
