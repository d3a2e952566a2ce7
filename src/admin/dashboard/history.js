// The history panel: who changed what and when, weights before and after,
// newest first, filtered by service with the select above it.

import { el, formatTime, formatWeights } from './dom.js';

const LIMIT = 50;

/** The history table and its service filter. */
export class HistoryPanel {
  constructor(refresh) {
    this.body = document.querySelector('#history-table tbody');
    this.select = document.getElementById('history-service');
    this.lastKey = '';
    this.select.addEventListener('change', () => refresh());
  }

  /** The API path for the current filter. */
  path() {
    const service = this.select.value;
    return '/api/v1/history?limit=' + LIMIT + (service === '' ? '' : '&service=' + encodeURIComponent(service));
  }

  /** Offers every service in the filter (keeps the current choice). */
  setServices(names) {
    const have = [...this.select.options].slice(1).map((o) => o.value);
    if (have.join('\u0000') === names.join('\u0000')) return;
    const chosen = this.select.value;
    this.select.replaceChildren(el('option', { value: '' }, 'all services'), ...names.map((n) => el('option', { value: n }, n)));
    this.select.value = names.includes(chosen) ? chosen : '';
  }

  /** Shows the entries (oldest first, as the API answers them) newest first. */
  render(entries) {
    const key = this.select.value + '\u0000' + entries.map((e) => e.seq).join(',');
    if (key === this.lastKey) return;
    this.lastKey = key;
    const rows = entries
      .slice()
      .reverse()
      .map((e) =>
        el(
          'tr',
          { 'data-seq': e.seq, 'data-service': e.service, 'data-action': e.action },
          el('td', { class: 'nowrap' }, el('time', { datetime: e.at }, formatTime(e.at))),
          el('td', {}, e.service),
          el('td', {}, e.actor),
          el('td', {}, e.action),
          el('td', { 'data-field': 'before' }, formatWeights(e.before)),
          el('td', { 'data-field': 'after' }, formatWeights(e.after)),
          el('td', {}, e.reason),
        ),
      );
    if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: '7', class: 'muted' }, 'No changes yet.')));
    this.body.replaceChildren(...rows);
  }
}
