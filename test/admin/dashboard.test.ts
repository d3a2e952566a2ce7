// The dashboard (GET /) in a real Chromium against a real veer with real
// upstreams, and the API behind it: GET /api/v1/stats, /api/v1/stats/series,
// the page's public files. Chromium is required: without it this file fails.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { admin, countVersions, startLoad } from '../helpers/admin.ts';
import { releaseConfig } from '../helpers/releases.ts';
import { weightsOf as weightsOfIn } from '../helpers/rollouts.ts';
import { startUpstream } from '../helpers/upstreams.ts';
import { runVeer, type RunningVeer } from '../helpers/veer.ts';

const CHROMIUM = process.env.VEER_TEST_CHROMIUM ?? '/usr/bin/chromium';
/** Headless Chromium as root in a container: no sandbox, no GPU, nothing fetched from outside. */
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const TOKEN = 'dash-secret';

/** In-page code sees the browser's DOM; tsconfig has no DOM lib, so the little it uses is typed here. */
declare const document: {
  querySelector(selector: string): (PageElement & { getContext?: (kind: string) => { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } }) | null;
  documentElement: { scrollWidth: number; clientWidth: number };
};
interface PageElement {
  textContent: string | null;
  getAttribute(name: string): string | null;
  width: number;
  height: number;
}

type Weights = Record<string, number>;
type ServiceAnswer = { weights: Weights; rollout: { phase: string; step: number } | null };

async function setup(t: Test, v2Fails: (path: string, n: number) => boolean): Promise<RunningVeer> {
  const v1 = await startUpstream('v1');
  let n = 0;
  const v2 = await startUpstream('v2', (req, res) => {
    n++;
    res.writeHead(v2Fails(req.url ?? '/', n) ? 500 : 200, { 'content-type': 'text/plain' });
    res.end('v2');
  });
  const veer = await runVeer(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0, token: ${TOKEN} }
log: { level: silent }
drainTimeout: 2s
services:
  - name: shop
    match: { pathPrefix: / }
    versions:
      - { name: v1, upstream: "${v1.url}", labels: { commit: 3f2a9c1, image: "shop:1.4.0" } }
      - { name: v2, upstream: "${v2.url}", labels: { commit: 9b1e07d, image: "shop:1.5.0" } }
    split: { weights: { v1: 50, v2: 50 } }
    rollout:
      canary: v2
      steps:
        - { weight: 30, pause: 1h }
        - { weight: 100 }
      analysis: { interval: 1s, minRequests: 5, maxErrorRate: 0.5, maxP99Ms: 2000, failureLimit: 5 }
  - name: api
    match: { pathPrefix: /api }
    versions:
      - { name: v1, upstream: "${v1.url}" }
`);
  t.teardown(async () => {
    await veer.stop();
    await v1.close();
    await v2.close();
  });
  return veer;
}

const weightsOf = async (veer: RunningVeer, service = 'shop') => (await admin<ServiceAnswer>(veer.adminUrl, 'GET', `/api/v1/services/${service}`, { token: TOKEN })).body;

type Stats = { windowMs: number; services: Record<string, { versions: Record<string, { requests: number; errors: number; errorRatio: number; rps: number; p99Ms: number | null }> }> };
type Series = { stepMs: number; times: number[]; services: Record<string, { versions: Record<string, { rps: (number | null)[]; errorRatio: (number | null)[]; p50Ms: (number | null)[]; p99Ms: (number | null)[] }> }> };

t.test('GET /api/v1/stats gives each version the requests it served', async (t) => {
  const veer = await setup(t, (_path, n) => n % 4 === 0);
  const counts = await countVersions(veer.url, 400);
  const stats = await admin<Stats>(veer.adminUrl, 'GET', '/api/v1/stats?window=1m', { token: TOKEN });
  t.equal(stats.status, 200);
  const versions = stats.body.services.shop!.versions;
  t.equal(versions.v1!.requests, counts.v1 ?? 0, 'v1 requests');
  t.equal(versions.v2!.requests, counts.v2 ?? 0, 'v2 requests');
  t.equal(versions.v2!.errors, Math.floor((counts.v2 ?? 0) / 4), 'v2 errors: every fourth');
  t.equal(versions.v1!.errors, 0);
  t.ok(versions.v1!.rps > 0, 'a rate');
  t.type(versions.v1!.p99Ms, 'number', 'a p99');
  t.equal((await admin(veer.adminUrl, 'GET', '/api/v1/stats', {})).status, 401, 'needs the token');
  for (const bad of ['soon', '0s', '1h']) {
    const res = await admin<{ error: { code: string } }>(veer.adminUrl, 'GET', `/api/v1/stats?window=${bad}`, { token: TOKEN });
    t.equal(res.status, 400, `window=${bad} is refused`);
    t.equal(res.body.error.code, 'invalid_body');
  }

  const series = await admin<Series>(veer.adminUrl, 'GET', '/api/v1/stats/series', { token: TOKEN });
  t.equal(series.status, 200);
  t.equal(series.body.stepMs, 5000);
  t.ok(series.body.times.length >= 1, 'at least the live point');
  const live = series.body.times.length - 1;
  t.ok(series.body.services.shop!.versions.v1!.rps[live]! > 0, 'the live point has v1 traffic');
  t.ok(series.body.services.shop!.versions.v2!.errorRatio[live]! > 0.2, 'and v2 errors');
  t.equal(series.body.services.api!.versions.v1!.errorRatio[live], null, 'no requests: no error ratio');
  t.equal((await admin(veer.adminUrl, 'GET', '/api/v1/stats/series', {})).status, 401, 'the series need the token');
});

t.test('the page and its files are public; nothing else is', async (t) => {
  const veer = await setup(t, () => false);
  const page = await fetch(`${veer.adminUrl}/`);
  t.equal(page.status, 200);
  t.match(page.headers.get('content-security-policy'), /default-src 'none'; script-src 'self'/);
  const html = await page.text();
  t.match(html, /<html lang="en" data-auth="token" data-releases="yes">/, 'the page knows a token is needed (not the token) and that this veer has releases');
  t.notMatch(html, TOKEN);
  for (const file of ['app.js', 'api.js', 'charts.js', 'style.css', 'vendor/uplot.js', 'vendor/uplot.css']) {
    const res = await fetch(`${veer.adminUrl}/dashboard/${file}`);
    t.equal(res.status, 200, `/dashboard/${file}`);
    t.match(res.headers.get('content-type'), file.endsWith('.js') ? /^text\/javascript/ : /^text\/css/);
    t.ok((await res.text()).length > 100);
  }
  t.equal((await fetch(`${veer.adminUrl}/dashboard/nope.js`)).status, 404, 'only the page files');
  for (const sneaky of ['/dashboard/../api/v1/services', '/dashboard/%2e%2e/api/v1/services', '/dashboard/vendor/../../api/v1/history']) {
    t.equal((await fetch(`${veer.adminUrl}${sneaky}`)).status, 401, `${sneaky} still needs the token`);
  }
});

t.test('the dashboard in Chromium: numbers, charts, weights, the token, rollouts, history', async (t) => {
  // Required, not skipped: .ci/apt-packages installs it (Debian's chromium).
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is not installed (apt-get install chromium): the dashboard test needs it`);
  // v2 fails the requests to /fail, so an error ratio shows without failing the rollout's analysis.
  const veer = await setup(t, (path) => path.startsWith('/fail'));
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  /** The refusals the test provokes on purpose (Chromium logs every 4xx answer): 401 for a wrong token, 409 for a conflict. */
  let expectStatus: string | null = null;
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !(expectStatus !== null && msg.text().includes(`status of ${expectStatus}`))) problems.push(`console: ${msg.text()} (${msg.location().url})`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  const card = '[data-service="shop"]';
  const cell = (version: string, field: string) => `${card} tr[data-version="${version}"] td[data-field="${field}"]`;

  await t.test('asks for the token before anything else, then shows every service', async (t) => {
    const res = await page.goto(`${veer.adminUrl}/`);
    t.equal(res?.status(), 200, 'the page is served without the token');
    await page.waitForSelector('#token-dialog[open]', { timeout: 10000 });
    t.match(await page.textContent('#status'), /admin token needed/);
    await page.fill('#token', TOKEN);
    await page.keyboard.press('Enter');
    await page.waitForSelector(`${card} tr[data-version="v2"]`, { timeout: 10000 });
    t.notOk(await page.isVisible('#token-dialog'), 'the dialog closed');
    t.equal(await page.textContent(cell('v1', 'weight')), '50%');
    t.equal(await page.textContent(cell('v2', 'weight')), '50%');
    t.match(await page.textContent(cell('v2', 'labels')), /commit=9b1e07d.*image=shop:1\.5\.0/, 'labels');
    t.ok(await page.isVisible('[data-service="api"]'), 'the other service too');
    t.equal(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem('veer-admin-token')), TOKEN, 'kept for the tab');
    t.notMatch(page.url(), TOKEN, 'never in the URL');
  });

  await t.test('numbers and charts fill after traffic', async (t) => {
    await countVersions(veer.url, 300);
    await countVersions(`${veer.url}/fail`, 100);
    // The next poll after both batches shows them.
    await page.waitForFunction(() => document.querySelector('[data-service="shop"] tr[data-version="v2"] td[data-field="errors"]')?.getAttribute('class') === 'bad', undefined, { timeout: 10000 });
    t.ok(Number(await page.textContent(cell('v1', 'rps'))) > 0, 'v1 has a request rate');
    t.match(await page.textContent(cell('v2', 'errors')), /^\d+(\.\d+)?%$/);
    t.ok(Number((await page.textContent(cell('v2', 'errors')))!.replace('%', '')) > 1, 'v2 shows errors');
    t.equal(await page.getAttribute(cell('v2', 'errors'), 'class'), 'bad', 'flagged over 1%');
    t.equal(await page.textContent(cell('v1', 'errors')), '0.0%');
    for (const chart of ['rps', 'errors', 'latency']) {
      await page.waitForFunction((c) => Number(document.querySelector(`[data-service="shop"] figure[data-chart="${c}"]`)?.getAttribute('data-points') ?? 0) > 0, chart, { timeout: 10000 });
    }
    // The rate chart's canvas holds pixels of v1's colour (#3866d6): the line was drawn.
    const countV1Pixels = () => {
      type Canvas = { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } | null };
      const canvas = document.querySelector('[data-service="shop"] figure[data-chart="rps"] canvas') as unknown as Canvas;
      const data = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data ?? [];
      let n = 0;
      for (let i = 0; i + 3 < data.length; i += 4) {
        const [r, g, b, a] = [data[i] as number, data[i + 1] as number, data[i + 2] as number, data[i + 3] as number];
        // Any opacity: a thin, nearly flat line that falls between two pixel rows is drawn
        // antialiased at half alpha in both (getImageData keeps the colour unpremultiplied).
        if (Math.abs(r - 56) < 24 && Math.abs(g - 102) < 24 && Math.abs(b - 214) < 24 && a > 40) n++;
      }
      return n;
    };
    // A line needs two points, and the next poll (2 s) draws the second on a loaded machine.
    for (let i = 0; i < 60 && (await page.evaluate(countV1Pixels)) <= 20; i++) await new Promise((r) => setTimeout(r, 250));
    const drawn = await page.evaluate(countV1Pixels);
    t.ok(drawn > 20, `v1's line is drawn (${drawn} pixels)`);
  });

  await t.test('a weight change from the page reaches the data plane and the history', async (t) => {
    await page.fill(`${card} form.weights input[type="number"][data-version="v2"]`, '100');
    t.equal(await page.inputValue(`${card} form.weights input[type="number"][data-version="v1"]`), '0', 'two versions: the other takes the rest');
    await page.press(`${card} form.weights input[type="number"][data-version="v2"]`, 'Enter');
    await page.waitForSelector(`${card} [data-role="notice"]:has-text("weights applied")`, { timeout: 10000 });
    t.same((await weightsOf(veer)).weights, { v1: 0, v2: 100 }, 'through the API');
    t.same(await countVersions(veer.url, 40), { v2: 40 }, 'the data plane sends everything to v2');
    await page.waitForFunction(() => document.querySelector('[data-service="shop"] tr[data-version="v2"] td[data-field="weight"]')?.textContent === '100%', undefined, { timeout: 10000 });
    await page.waitForSelector('#history-table tr[data-service="shop"] td:has-text("dashboard")', { timeout: 10000 });
    const top = page.locator('#history-table tbody tr').first();
    t.match(await top.textContent(), /shop.*dashboard \(127\.0\.0\.1\).*v1 50 · v2 50.*v1 0 · v2 100/, 'who, what, before and after');

    await admin(veer.adminUrl, 'PUT', '/api/v1/services/api/weights', { token: TOKEN, body: { weights: { v1: 7 } } });
    await page.waitForSelector('#history-table tr[data-service="api"]', { timeout: 10000 });
    await page.selectOption('#history-service', 'shop');
    await page.waitForFunction(() => document.querySelector('#history-table tr[data-service="api"]') === null, undefined, { timeout: 10000 });
    t.ok(await page.isVisible('#history-table tr[data-service="shop"]'), 'filtered by service');
    await page.selectOption('#history-service', '');
  });

  await t.test('a wrong token is refused with the API message and changes nothing', async (t) => {
    expectStatus = '401';
    await page.click('#token-button');
    await page.fill('#token', 'not-the-token');
    await page.click('#token-form button[type="submit"]');
    await page.waitForFunction(() => /wrong admin token/.test(document.querySelector('#status')?.textContent ?? ''), undefined, { timeout: 10000 });
    await page.waitForSelector('#token-dialog[open]', { timeout: 10000 });
    t.match(await page.textContent('#token-why'), /wrong admin token/, 'asks again, saying why');
    await page.keyboard.press('Escape');
    await page.fill(`${card} form.weights input[type="number"][data-version="v1"]`, '100');
    await page.click(`${card} button[data-action="apply-weights"]`);
    await page.waitForSelector(`${card} [data-role="error"]:has-text("wrong admin token")`, { timeout: 10000 });
    t.match(await page.textContent(`${card} [data-role="error"]`), /^unauthorized: wrong admin token/);
    t.same((await weightsOf(veer)).weights, { v1: 0, v2: 100 }, 'weights unchanged');
    t.same(await countVersions(veer.url, 20), { v2: 20 }, 'traffic unchanged');
    // The right token again, through the same dialog.
    await page.waitForSelector('#token-dialog[open]', { timeout: 10000 });
    await page.fill('#token', TOKEN);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /^updated/.test(document.querySelector('#status')?.textContent ?? ''), undefined, { timeout: 10000 });
    // A poll sent with the wrong token may still be answered (401) just before the first with the right one.
    await page.waitForTimeout(500);
    expectStatus = null;
  });

  await t.test('a rollout starts, shows its steps and analysis, and aborts from the page', async (t) => {
    await page.click(`${card} button[data-action="reset-weights"]`);
    await page.waitForSelector(`${card} [data-role="notice"]:has-text("reset")`, { timeout: 10000 });
    t.same((await weightsOf(veer)).weights, { v1: 50, v2: 50 }, 'back to the config');
    await page.click(`${card} button[data-action="start-rollout"]`);
    await page.waitForSelector(`${card} [data-role="rollout"][data-phase="progressing"]`, { timeout: 10000 });
    t.equal(await page.getAttribute(`${card} .steps li[aria-current="step"]`, 'data-step'), '0', 'the current step is marked');
    t.match(await page.textContent(`${card} [data-role="progress"]`), /step 1 of 2 · canary 30% · next step in \d+[hm]/);
    t.same((await weightsOf(veer)).weights, { v1: 70, v2: 30 });
    // Steady traffic while the analysis (every 1 s) looks.
    const load = startLoad(veer.url, 2);
    try {
      await page.waitForSelector(`${card} [data-role="analysis"][data-verdict="pass"]`, { timeout: 15000 });
    } finally {
      await load.stop();
    }
    t.match(await page.textContent(`${card} [data-role="analysis"] tr[data-check="error rate"]`), /0\.0%.*≤ 50\.0%.*pass/, 'each check against its threshold');

    // While the rollout holds the weights, the page's weight change is refused with the API's reason.
    expectStatus = '409';
    await page.fill(`${card} form.weights input[type="number"][data-version="v2"]`, '80');
    await page.click(`${card} button[data-action="apply-weights"]`);
    await page.waitForSelector(`${card} [data-role="error"]:has-text("rollout_conflict")`, { timeout: 10000 });
    t.same((await weightsOf(veer)).weights, { v1: 70, v2: 30 }, 'a refused change changes nothing');
    expectStatus = null;

    // Promote asks first; cancelling changes nothing.
    await page.click(`${card} button[data-verb="promote"]`);
    await page.waitForSelector('#confirm-dialog[open]');
    await page.click('#confirm-no');
    t.equal((await weightsOf(veer)).rollout?.phase, 'progressing', 'cancelled: still progressing');

    await page.click(`${card} button[data-verb="abort"]`);
    await page.waitForSelector('#confirm-dialog[open]');
    t.match(await page.textContent('#confirm-text'), /Abort the rollout of shop/);
    await page.click('#confirm-yes');
    await page.waitForSelector(`${card} [data-role="rollout"][data-phase="aborted"]`, { timeout: 10000 });
    const after = await weightsOf(veer);
    t.equal(after.rollout?.phase, 'aborted');
    t.equal(after.weights.v2, 0, 'the canary has no weight');
    t.same(await countVersions(veer.url, 30), { v1: 30 }, 'the data plane sends everything to v1');
  });

  await t.test('a rollout promotes from the page', async (t) => {
    await page.click(`${card} button[data-action="start-rollout"]`);
    await page.waitForSelector(`${card} [data-role="rollout"][data-phase="progressing"]`, { timeout: 10000 });
    await page.click(`${card} button[data-verb="promote"]`);
    await page.waitForSelector('#confirm-dialog[open]');
    await page.click('#confirm-yes');
    await page.waitForSelector(`${card} [data-role="rollout"][data-phase="promoted"]`, { timeout: 10000 });
    t.equal((await weightsOf(veer)).rollout?.phase, 'promoted');
    t.same(await countVersions(veer.url, 30), { v2: 30 }, 'the data plane sends everything to v2');
    await page.waitForSelector('#history-table tr[data-action*="promote"]', { timeout: 10000 });
  });

  await t.test('a promoted rollout rolls back from the page within its rollbackWindow', async (t) => {
    t.match(await page.textContent(`${card} [data-role="progress"]`), /can be rolled back until \d/, 'the window shows');
    await page.click(`${card} button[data-verb="rollback"]`);
    await page.waitForSelector('#confirm-dialog[open]');
    t.match(await page.textContent('#confirm-text'), /Roll back the rollout of shop\?/);
    await page.click('#confirm-yes');
    await page.waitForSelector(`${card} [data-role="rollout"][data-phase="rolledBack"]`, { timeout: 10000 });
    t.equal((await weightsOf(veer)).rollout?.phase, 'rolledBack');
    t.same(await countVersions(veer.url, 30), { v1: 30 }, 'the data plane sends everything back to v1');
    t.equal(await page.locator(`${card} button[data-verb="rollback"]`).count(), 0, 'no second rollback');
    await page.waitForSelector('#history-table tr[data-action="rollout.rollback"]', { timeout: 10000 });
  });

  await t.test('readable at a phone width', async (t) => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() => Number(document.querySelector('[data-service="shop"] figure[data-chart="rps"] canvas')?.getAttribute('width') ?? 9999) <= 2 * 390, undefined, { timeout: 10000 });
    const { scrollWidth, clientWidth } = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth }));
    t.ok(scrollWidth <= clientWidth, `no sideways scrolling (${scrollWidth} <= ${clientWidth})`);
    await page.screenshot({ path: join(process.env.TMPDIR ?? '/tmp', 'veer-dashboard-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.screenshot({ path: join(process.env.TMPDIR ?? '/tmp', 'veer-dashboard.png'), fullPage: true });
  });

  t.same(problems, [], 'no console errors');
});

t.test('the dashboard in Chromium: a release promotes, then rolls back, from the page', async (t) => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is not installed (apt-get install chromium): the dashboard test needs it`);
  const ups = await Promise.all(['f1', 'f2', 'c4', 'c5'].map((name) => startUpstream(name)));
  t.teardown(() => Promise.all(ups.map((u) => u.close())));
  const veer = await runVeer(releaseConfig(ups.map((u) => u.url), '    steps: [{ weight: 20 }, { weight: 100 }]\n'));
  t.teardown(() => veer.stop());
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  const release = (phase: string) => `[data-release="checkout-2.3"] [data-role="rollout"][data-phase="${phase}"]`;
  const members = async () => ({ frontend: weightsOfIn(veer, 'frontend'), cart: weightsOfIn(veer, 'cart') });

  t.equal((await admin(veer.adminUrl, 'POST', '/api/v1/releases/checkout-2.3/start')).status, 201);
  await page.goto(`${veer.adminUrl}/`);
  await page.waitForSelector(release('paused'), { timeout: 10000 });
  t.same(await members(), { frontend: { v1: 80, v2: 20 }, cart: { v4: 80, v5: 20 } });

  await page.click('[data-release="checkout-2.3"] button[data-verb="promote"]');
  await page.waitForSelector('#confirm-dialog[open]');
  await page.click('#confirm-yes');
  await page.waitForSelector(release('promoted'), { timeout: 10000 });
  t.same(await members(), { frontend: { v1: 0, v2: 100 }, cart: { v4: 0, v5: 100 } }, 'promoted: every member at once');
  t.match(await page.textContent('[data-release="checkout-2.3"] [data-role="progress"]'), /can be rolled back until/);

  await page.click('[data-release="checkout-2.3"] button[data-verb="rollback"]');
  await page.waitForSelector('#confirm-dialog[open]');
  t.match(await page.textContent('#confirm-text'), /Roll back release checkout-2\.3\?/);
  await page.click('#confirm-yes');
  await page.waitForSelector(release('rolledBack'), { timeout: 10000 });
  t.same(await members(), { frontend: { v1: 100, v2: 0 }, cart: { v4: 100, v5: 0 } }, 'rolled back: every member as before the release');
  t.same(problems, [], 'no console errors');
});
