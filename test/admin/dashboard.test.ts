// The dashboard (GET /) in a real Chromium, and GET /api/v1/stats behind it.

import t, { type Test } from 'tap';
import { admin, countVersions } from '../helpers/admin.ts';
import { missingBinary } from '../helpers/system-packages.ts';
import { startUpstream } from '../helpers/upstreams.ts';
import { runVeer } from '../helpers/veer.ts';

const CHROMIUM = process.env.VEER_TEST_CHROMIUM ?? '/usr/bin/chromium';
const TOKEN = 'dash-secret';

/** In-page code sees the browser's DOM; tsconfig has no DOM lib, so it is typed here. */
declare const document: { querySelector(selector: string): { textContent: string | null } | null };

async function setup(t: Test) {
  const v1 = await startUpstream('v1');
  // v2 fails every fourth request, so its error ratio is 25%.
  let n = 0;
  const v2 = await startUpstream('v2', (_req, res) => {
    n++;
    res.writeHead(n % 4 === 0 ? 500 : 200, { 'content-type': 'text/plain' });
    res.end('v2');
  });
  const veer = await runVeer(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0, token: ${TOKEN} }
log: { level: silent }
drainTimeout: 2s
services:
  - name: shop
    versions:
      - { name: v1, upstream: "${v1.url}" }
      - { name: v2, upstream: "${v2.url}" }
    split: { weights: { v1: 50, v2: 50 } }
`);
  t.teardown(async () => {
    await veer.stop();
    await v1.close();
    await v2.close();
  });
  return veer;
}

type Stats = { windowMs: number; services: Record<string, { versions: Record<string, { requests: number; errors: number; errorRatio: number; rps: number; p99Ms: number | null }> }> };

t.test('GET /api/v1/stats gives each version the requests it served', async (t) => {
  const veer = await setup(t);
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
});

t.test('the dashboard shows live weights and per-version numbers in Chromium', { skip: missingBinary(CHROMIUM, 'chromium') ?? false }, async (t) => {
  const veer = await setup(t);
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage();

  const res = await page.goto(`${veer.adminUrl}/`);
  t.equal(res?.status(), 200, 'the page is served without the token');
  t.match(res?.headers()['content-security-policy'] ?? '', /default-src 'none'/);
  await page.waitForSelector('#token-form.shown', { timeout: 5000 });
  t.match(await page.textContent('#status'), /admin token needed/, 'asks for the token');

  await countVersions(veer.url, 200);
  await page.fill('#token', TOKEN);
  await page.click('#token-form button');
  const v1Rate = page.locator('[data-service="shop"] tr[data-version="v1"] td[data-field="rps"]');
  await page.waitForFunction(() => Number(document.querySelector('[data-service="shop"] tr[data-version="v2"] td[data-field="rps"]')?.textContent ?? 0) > 0, undefined, { timeout: 5000 });
  t.ok(Number(await v1Rate.textContent()) > 0, 'v1 has a request rate');
  t.equal(await page.textContent('[data-service="shop"] tr[data-version="v1"] td[data-field="weight"]'), '50%');
  const v2Errors = page.locator('[data-service="shop"] tr[data-version="v2"] td[data-field="errors"]');
  t.match(await v2Errors.textContent(), /^2\d(\.\d)?%$/, 'v2 error ratio near 25%');
  t.equal(await v2Errors.getAttribute('class'), 'bad', 'an error ratio over 1% is flagged');
  t.equal(await page.textContent('[data-service="shop"] tr[data-version="v1"] td[data-field="errors"]'), '0.0%');

  const put = await admin(veer.adminUrl, 'PUT', '/api/v1/services/shop/weights', { token: TOKEN, body: { weights: { v1: 0, v2: 100 } } });
  t.equal(put.status, 200);
  await page.waitForFunction(() => document.querySelector('[data-service="shop"] tr[data-version="v2"] td[data-field="weight"]')?.textContent === '100%', undefined, { timeout: 5000 });
  t.pass('the new weights show within the refresh interval');
  await page.screenshot({ path: `${process.env.TMPDIR ?? '/tmp'}/veer-dashboard.png`, fullPage: true });
});
