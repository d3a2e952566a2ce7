// `node scripts/screenshot-dashboard.ts [--out docs/dashboard.png] [--seconds 40]`:
// the README's picture of the dashboard during a rollout. Starts veer on
// 127.0.0.1 with two demo upstreams (v2 a little slower, with a few errors),
// starts the rollout, sends traffic for a while so the charts fill, and saves
// one service's card from Debian's Chromium (/usr/bin/chromium, or
// $VEER_CHROMIUM) with playwright-core.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { createLogger } from '../src/log/index.ts';
import { startVeer } from '../src/main.ts';

const root = join(import.meta.dirname, '..');
const { values: flags } = parseArgs({ options: { out: { type: 'string' }, seconds: { type: 'string' } } });
const out = resolve(flags.out ?? join(root, 'docs', 'dashboard.png'));
const seconds = Number(flags.seconds ?? 40);
const chromiumPath = process.env.VEER_CHROMIUM ?? '/usr/bin/chromium';
const TOKEN = 'screenshot';

/** A demo upstream answering after `delayMs` (plus jitter), failing `errorRate` of requests. */
async function upstream(name: string, delayMs: number, errorRate: number): Promise<Server> {
  const server = createServer((_req, res) => {
    setTimeout(() => {
      res.writeHead(Math.random() < errorRate ? 500 : 200, { 'content-type': 'text/plain' });
      res.end(name);
    }, delayMs * (0.5 + Math.random()));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return server;
}

const urlOf = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const v1 = await upstream('v1', 8, 0);
const v2 = await upstream('v2', 14, 0.004);
const dir = mkdtempSync(join(tmpdir(), 'veer-screenshot-'));
const configPath = join(dir, 'veer.yaml');
writeFileSync(
  configPath,
  `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0, token: ${TOKEN} }
log: { level: silent }
state: { store: file, path: ${join(dir, 'state.json')} }
services:
  - name: shop
    match: { hosts: [shop.example.com] }
    versions:
      - { name: v1, upstream: "${urlOf(v1)}", labels: { commit: 3f2a9c1, image: "shop:1.4.0" } }
      - { name: v2, upstream: "${urlOf(v2)}", labels: { commit: 9b1e07d, image: "shop:1.5.0" } }
    split: { weights: { v1: 100, v2: 0 }, sticky: { header: x-user-id } }
    rollout:
      canary: v2
      steps:
        - { weight: 10, pause: ${Math.round(seconds / 2)}s }
        - { weight: 25, pause: 10m }
        - { weight: 50, pause: 10m }
        - { weight: 100 }
      analysis: { interval: 5s, minRequests: 20, maxErrorRate: 0.02, maxP99Ms: 200, failureLimit: 3 }
`,
);
const veer = await startVeer({ configPath, log: createLogger('silent', { pretty: false }), watch: false });
const dataUrl = `http://127.0.0.1:${veer.dataAddress.port}`;
const adminUrl = `http://127.0.0.1:${veer.adminAddress.port}`;

const start = await request(`${adminUrl}/api/v1/services/shop/rollout`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'x-veer-actor': 'cli:alice' }, body: '{}' });
if (start.statusCode !== 201) throw new Error(`rollout start: HTTP ${start.statusCode} ${await start.body.text()}`);
await start.body.dump();

// Traffic: a few loops of users, bounded by the time given.
const until = Date.now() + seconds * 1000;
let user = 0;
const loop = async () => {
  while (Date.now() < until) {
    const res = await request(dataUrl, { headers: { host: 'shop.example.com', 'x-user-id': `u${user++ % 5000}` } });
    await res.body.dump();
    await new Promise((r) => setTimeout(r, 15));
  }
};
const traffic = Promise.all(Array.from({ length: 6 }, loop));

const { chromium } = await import('playwright-core');
const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 1400 }, deviceScaleFactor: 1 });
  await page.goto(`${adminUrl}/`);
  await page.fill('#token', TOKEN);
  await page.keyboard.press('Enter');
  // While the traffic still flows: the header and the service's card.
  await page.waitForTimeout(Math.max(0, until - Date.now() - 1500));
  const card = await page.locator('section[data-service="shop"]').boundingBox();
  if (card === null) throw new Error('the service card is not on the page');
  await page.screenshot({ path: out, clip: { x: 0, y: 0, width: 1100, height: Math.ceil(card.y + card.height + 12) } });
  console.log(`wrote ${out}`);
  await traffic;
} finally {
  await browser.close();
  await veer.stop();
  v1.close();
  v2.close();
}
