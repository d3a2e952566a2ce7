// The dashboard: GET / is the page, /dashboard/* its ES modules and styles
// (plain files in ./dashboard/, no build step), /dashboard/vendor/* uPlot
// straight from node_modules, and GET /api/v1/stats/series its curves.
//
// The page and its code carry no data, so they are served without the
// token (api-auth.ts lists them public); every number and every change goes
// through the admin API with the token the user enters, which the page keeps
// in the tab's sessionStorage and sends as a Bearer header, never in a URL.

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { RuntimeState } from '../state/index.ts';
import type { StatsSource } from './api-stats.ts';
import { SeriesSampler } from './dashboard-series.ts';

/** What the dashboard routes need. */
export interface DashboardOptions {
  readonly runtime: RuntimeState;
  readonly stats: StatsSource;
  /** The admin token (read per request); the page is told whether one is needed, never the token. */
  readonly token: () => string | undefined;
}

/** The URL prefix of the page's own files; public like the page (api-auth.ts). */
export const DASHBOARD_ASSETS = '/dashboard/';

/** The page's files (in ./dashboard/, copied beside the compiled code by scripts/build.ts), by URL name. */
const PAGE_FILES: Readonly<Record<string, string>> = {
  'app.js': 'text/javascript; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
  'charts.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'service-card.js': 'text/javascript; charset=utf-8',
  'rollout-panel.js': 'text/javascript; charset=utf-8',
  'history.js': 'text/javascript; charset=utf-8',
  'releases.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

/** uPlot's browser build and styles, served from the installed package (a dependency). */
const VENDOR_FILES: Readonly<Record<string, { readonly file: string; readonly type: string }>> = {
  'uplot.js': { file: 'uPlot.esm.js', type: 'text/javascript; charset=utf-8' },
  'uplot.css': { file: 'uPlot.min.css', type: 'text/css; charset=utf-8' },
};

const PAGE_DIR = join(import.meta.dirname, 'dashboard');

/** Where uPlot's dist/ is; resolved on first use (a veer whose dashboard is never opened never looks). */
function uplotDir(): string {
  return dirname(createRequire(import.meta.url).resolve('uplot'));
}

// The page loads nothing from elsewhere, runs only its own scripts and is never framed.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Files read once and kept: they are a few KB and never change while veer runs. */
const cache = new Map<string, Promise<Buffer>>();

function readCached(path: string): Promise<Buffer> {
  let body = cache.get(path);
  if (body === undefined) {
    body = readFile(path);
    body.catch(() => cache.delete(path));
    cache.set(path, body);
  }
  return body;
}

function sendFile(reply: FastifyReply, body: Buffer, type: string): FastifyReply {
  return reply.header('content-type', type).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').header('content-security-policy', CSP).header('x-frame-options', 'DENY').send(body);
}

/** Registers the page, its files and the series route, and samples the series while the server runs. */
export async function dashboardRoutes(app: FastifyInstance, options: DashboardOptions): Promise<void> {
  const sampler = new SeriesSampler(options.runtime, options.stats);
  sampler.start();
  app.addHook('onClose', async () => sampler.stop());

  // The page learns, without a failing request (a console error), whether to ask for the token
  // first and whether this veer has releases: <html data-auth data-releases>.
  app.get('/', async (_req, reply) => {
    const page = (await readCached(join(PAGE_DIR, 'index.html'))).toString('utf8');
    const token = options.token();
    const auth = token !== undefined && token !== '' ? 'token' : 'none';
    const releases = app.hasRoute({ method: 'GET', url: '/api/v1/releases' }) ? 'yes' : 'no';
    return sendFile(reply, Buffer.from(page.replace('<html lang="en">', `<html lang="en" data-auth="${auth}" data-releases="${releases}">`)), 'text/html; charset=utf-8');
  });

  app.get<{ Params: { file: string } }>(`${DASHBOARD_ASSETS}:file`, async (req, reply) => {
    const type = PAGE_FILES[req.params.file];
    if (type === undefined || !Object.hasOwn(PAGE_FILES, req.params.file)) return reply.callNotFound();
    return sendFile(reply, await readCached(join(PAGE_DIR, req.params.file)), type);
  });

  app.get<{ Params: { file: string } }>(`${DASHBOARD_ASSETS}vendor/:file`, async (req, reply) => {
    if (!Object.hasOwn(VENDOR_FILES, req.params.file)) return reply.callNotFound();
    const vendor = VENDOR_FILES[req.params.file]!;
    return sendFile(reply, await readCached(join(uplotDir(), vendor.file)), vendor.type);
  });

  app.get('/api/v1/stats/series', async () => sampler.view());
}
