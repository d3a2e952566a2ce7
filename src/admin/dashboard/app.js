// The dashboard's entry: one poll loop (every 2 s, or at once after a
// change) reads services, the last 10 s of numbers, the 15-minute curves, the
// history and, where this veer has them, the releases; then every panel is
// updated in place. A 401 asks for the admin token once; any other failure
// keeps the last data on screen and says what went wrong.

import { ApiError, call, currentToken, getOptional, rememberToken } from './api.js';
import { HistoryPanel } from './history.js';
import { ReleasesPanel } from './releases.js';
import { ServiceCard } from './service-card.js';
import { formatTime, setText } from './dom.js';

const POLL_MS = 2000;

const statusEl = document.getElementById('status');
const servicesEl = document.getElementById('services');
const tokenDialog = document.getElementById('token-dialog');
const tokenForm = document.getElementById('token-form');
const tokenInput = document.getElementById('token');
const tokenWhy = document.getElementById('token-why');

/** Cards by service name. */
const cards = new Map();
let timer = null;
let running = false;
let again = false;
/** The token a 401 already asked to replace (asked once, not on every poll). */
let askedFor = null;
/** Whether this veer has releases (GET /api/v1/releases): the server says so on the page. */
const hasReleases = document.documentElement.dataset.releases === 'yes';
/** Whether the admin API needs a token: the server says so on the page. */
const needsToken = document.documentElement.dataset.auth === 'token';

const history = new HistoryPanel(() => poll());
const releases = new ReleasesPanel(() => poll());

function askToken(why) {
  setText(tokenWhy, why ? why + '. The token is kept for this browser tab only.' : 'The token is kept for this browser tab only.');
  tokenInput.value = '';
  if (!tokenDialog.open) tokenDialog.showModal();
  tokenInput.focus();
}

tokenForm.addEventListener('submit', (e) => {
  e.preventDefault();
  rememberToken(tokenInput.value);
  tokenInput.value = '';
  askedFor = null;
  tokenDialog.close();
  pollOrAskToken();
});
document.getElementById('token-cancel').addEventListener('click', () => tokenDialog.close());
document.getElementById('token-button').addEventListener('click', () => askToken(''));
document.addEventListener('veer:token-needed', (e) => askToken(e.detail));

function showStatus(text, isError) {
  setText(statusEl, text);
  statusEl.classList.toggle('error', Boolean(isError));
}

/** Brings the cards in line with the services list (new, gone, versions changed), in its order. */
function syncCards(list) {
  const names = new Set(list.map((s) => s.name));
  for (const [name, card] of cards) {
    if (!names.has(name)) {
      card.destroy();
      cards.delete(name);
    }
  }
  for (const service of list) {
    let card = cards.get(service.name);
    if (card && card.outdated(service)) {
      card.destroy();
      card = undefined;
    }
    if (!card) {
      card = new ServiceCard(service, () => poll());
      cards.set(service.name, card);
      servicesEl.append(card.element);
      card.mount();
    }
  }
  // Config order.
  list.forEach((service, i) => {
    const element = cards.get(service.name).element;
    if (servicesEl.children[i] !== element) servicesEl.insertBefore(element, servicesEl.children[i] ?? null);
  });
}

async function readAll() {
  const releasesCall = hasReleases ? getOptional('/api/v1/releases') : Promise.resolve(null);
  const [services, stats, series, log, releaseList] = await Promise.all([call('GET', '/api/v1/services'), call('GET', '/api/v1/stats?window=10s'), call('GET', '/api/v1/stats/series'), call('GET', history.path()), releasesCall]);
  const list = services.services;
  syncCards(list);
  for (const service of list) {
    const card = cards.get(service.name);
    card.update(service, stats.services[service.name]);
    const curves = series.services[service.name];
    card.updateSeries(series.times, curves ? curves.versions : {});
  }
  history.setServices(list.map((s) => s.name));
  history.render(log.history);
  releases.render(releaseList);
  showStatus('updated ' + formatTime(new Date().toISOString()) + ' · ' + list.length + (list.length === 1 ? ' service' : ' services'), false);
}

/** Polls now (coalesced: a poll asked for while one runs runs once right after it). */
async function poll() {
  if (running) {
    again = true;
    return;
  }
  running = true;
  clearTimeout(timer);
  try {
    await readAll();
    askedFor = null;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      showStatus('admin token needed: ' + err.message, true);
      if (askedFor !== currentToken()) {
        askedFor = currentToken();
        askToken(err.message);
      }
    } else {
      showStatus(err instanceof ApiError ? err.message : 'dashboard error: ' + err.message, true);
    }
  } finally {
    running = false;
    if (again) {
      again = false;
      pollOrAskToken();
    } else {
      timer = setTimeout(poll, POLL_MS);
    }
  }
}

/** Polls, or, with a token needed and none given yet, asks for it first (no 401 to start with); polling starts once it is given. */
function pollOrAskToken() {
  if (needsToken && currentToken() === '') {
    showStatus('admin token needed', true);
    askedFor = '';
    askToken('This veer needs its admin token');
  } else {
    poll();
  }
}

pollOrAskToken();
