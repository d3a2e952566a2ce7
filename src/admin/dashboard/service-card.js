// One service's card: versions with labels and weights, the live numbers,
// the charts, the rollout, and the controls (weights, shift, rollout verbs).
// The card is built once and updated on every poll, so a half-typed weight,
// the keyboard focus and the charts survive the refresh; it is rebuilt only
// when the service's versions change (a reload).
//
//   section.card[data-service]
//   ├── h2, meta line, weight bar
//   ├── table: version | labels | weight | req/s | errors | p50 | p99
//   ├── charts (charts.js)
//   ├── rollout (rollout-panel.js) or "Start rollout"
//   ├── form: weights (slider + number per version), Apply, Reset to config
//   ├── form: shift (to, step, every, until), Start / Stop
//   └── p[role=alert]: the API's error when it refuses

import { call } from './api.js';
import { ServiceCharts } from './charts.js';
import { append, colorOf, confirmAction, el, fmt, setText } from './dom.js';
import { isRunning, progressLine, renderRollout } from './rollout-panel.js';

let nextId = 0;

/** A stable id prefix for one card's form controls (labels point at them). */
function idPrefix(service) {
  nextId++;
  return 'svc' + nextId + '-' + service.replace(/[^A-Za-z0-9_-]/g, '_');
}

/** The card of one service; `refresh()` asks the page to poll now (after a change). */
export class ServiceCard {
  constructor(service, refresh) {
    this.name = service.name;
    this.versions = service.versions.map((v) => v.name);
    this.refresh = refresh;
    this.dirty = false;
    this.ids = idPrefix(service.name);
    const enc = encodeURIComponent(service.name);
    this.base = '/api/v1/services/' + enc;

    this.meta = el('p', { class: 'meta' });
    this.bar = el('div', { class: 'bar', role: 'img' });
    this.rows = new Map();
    const tbody = el('tbody');
    service.versions.forEach((v, i) => {
      const cells = {
        labels: el('td', { class: 'labels', 'data-field': 'labels' }),
        weight: el('td', { 'data-field': 'weight' }),
        rps: el('td', { 'data-field': 'rps' }),
        errors: el('td', { 'data-field': 'errors' }),
        p50: el('td', { 'data-field': 'p50' }),
        p99: el('td', { 'data-field': 'p99' }),
      };
      tbody.append(el('tr', { 'data-version': v.name }, el('th', { scope: 'row' }, el('span', { class: 'swatch', style: 'background:' + colorOf(i), 'aria-hidden': 'true' }), v.name), cells.labels, cells.weight, cells.rps, cells.errors, cells.p50, cells.p99));
      this.rows.set(v.name, cells);
    });
    const head = el('tr', {}, ...['version', 'labels', 'weight', 'req/s', 'errors', 'p50 ms', 'p99 ms'].map((h) => el('th', { scope: 'col' }, h)));
    const table = el('div', { class: 'scroll' }, el('table', { class: 'versions' }, el('caption', { class: 'sr-only' }, 'Versions of ' + service.name + ', last 10 seconds'), el('thead', {}, head), tbody));

    this.chartBox = el('div', { class: 'charts' });
    this.rolloutBox = el('div', { class: 'rollout-box' });
    this.error = el('p', { class: 'error', role: 'alert', 'data-role': 'error' });
    this.notice = el('p', { class: 'notice', role: 'status', 'data-role': 'notice' });

    this.element = el(
      'section',
      { class: 'card', 'data-service': service.name, 'aria-labelledby': this.ids + '-title' },
      el('h2', { id: this.ids + '-title' }, service.name),
      this.meta,
      this.bar,
      table,
      this.chartBox,
      this.rolloutBox,
      this.#weightsForm(service),
      this.#shiftForm(service),
      this.error,
      this.notice,
    );
    this.lastRolloutKey = '';
  }

  /** Builds the charts once the card is in the page (they read its width). */
  mount() {
    this.charts = new ServiceCharts(this.chartBox, this.name, this.versions);
  }

  /** True when `service` has other versions than this card was built for. */
  outdated(service) {
    return service.versions.map((v) => v.name).join('\u0000') !== this.versions.join('\u0000');
  }

  #weightsForm(service) {
    const form = el('form', { class: 'weights', 'data-role': 'weights', 'aria-labelledby': this.ids + '-weights' });
    const fields = el('div', { class: 'fields' });
    this.weightInputs = new Map();
    service.versions.forEach((v, i) => {
      const id = this.ids + '-w-' + i;
      const slider = el('input', { type: 'range', min: '0', max: '100', step: '1', id: id + '-range', 'aria-label': v.name + ' weight (slider)', 'data-version': v.name });
      const number = el('input', { type: 'number', min: '0', step: 'any', id, name: v.name, 'data-version': v.name, inputmode: 'decimal', required: true });
      const sync = (from, to) => {
        to.value = from.value;
        this.dirty = true;
        // Two versions: the other one takes the rest of 100, as the slider moves.
        if (service.versions.length === 2) {
          const other = this.weightInputs.get(service.versions[1 - i].name);
          const rest = Math.max(0, 100 - Number(from.value));
          if (Number.isFinite(rest) && Number(from.value) <= 100) {
            other.number.value = String(rest);
            other.slider.value = String(rest);
          }
        }
      };
      slider.addEventListener('input', () => sync(slider, number));
      number.addEventListener('input', () => sync(number, slider));
      this.weightInputs.set(v.name, { slider, number });
      fields.append(el('div', { class: 'field' }, el('label', { for: id }, el('span', { class: 'swatch', style: 'background:' + colorOf(i), 'aria-hidden': 'true' }), v.name), slider, number));
    });
    const apply = el('button', { type: 'submit', class: 'primary', 'data-action': 'apply-weights' }, 'Apply weights');
    const reset = el('button', { type: 'button', 'data-action': 'reset-weights' }, 'Reset to config');
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const weights = {};
      for (const [name, { number }] of this.weightInputs) weights[name] = Number(number.value);
      this.#run(apply, () => call('PUT', this.base + '/weights', { weights }), 'weights applied: ' + Object.entries(weights).map(([k, w]) => k + ' ' + w).join(' · '));
    });
    reset.addEventListener('click', () => this.#run(reset, () => call('DELETE', this.base + '/weights'), 'weights reset to the config'));
    form.addEventListener('reset', () => (this.dirty = false));
    append(form, [el('h3', { id: this.ids + '-weights' }, 'Weights'), fields, el('div', { class: 'buttons' }, apply, reset)]);
    return form;
  }

  #shiftForm(service) {
    const id = this.ids + '-shift';
    const to = el('select', { id: id + '-to', name: 'to' }, ...service.versions.map((v) => el('option', { value: v.name }, v.name)));
    if (service.versions.length > 1) to.value = service.versions[service.versions.length - 1].name;
    const step = el('input', { id: id + '-step', type: 'number', min: '0.01', max: '100', step: 'any', value: '10', required: true });
    const every = el('input', { id: id + '-every', type: 'text', value: '30s', size: '5', pattern: '[0-9]+(ms|s|m|h)', required: true });
    const until = el('input', { id: id + '-until', type: 'number', min: '0', max: '100', step: 'any', value: '100', required: true });
    const start = el('button', { type: 'submit', 'data-action': 'start-shift' }, 'Start shift');
    this.stopShift = el('button', { type: 'button', 'data-action': 'stop-shift', hidden: true }, 'Stop shift');
    const form = el(
      'form',
      { class: 'shift', 'data-role': 'shift', 'aria-labelledby': id + '-title' },
      el('h3', { id: id + '-title' }, 'Shift gradually'),
      el('div', { class: 'fields' }, el('label', { for: to.id }, 'to'), to, el('label', { for: step.id }, 'step %'), step, el('label', { for: every.id }, 'every'), every, el('label', { for: until.id }, 'until %'), until),
      el('div', { class: 'buttons' }, start, this.stopShift),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const body = { to: to.value, step: Number(step.value), every: every.value, until: Number(until.value) };
      this.#run(start, () => call('POST', this.base + '/shift', body), 'shift to ' + body.to + ' started');
    });
    this.stopShift.addEventListener('click', () => this.#run(this.stopShift, () => call('DELETE', this.base + '/shift'), 'shift stopped'));
    return form;
  }

  /** Runs one change: the button is busy meanwhile; the API's message shows when it refuses. */
  async #run(button, action, done) {
    setText(this.error, '');
    setText(this.notice, '');
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    try {
      await action();
      this.dirty = false;
      setText(this.notice, done);
    } catch (err) {
      setText(this.error, (err.code ? err.code + ': ' : '') + err.message);
      if (err.status === 401) document.dispatchEvent(new CustomEvent('veer:token-needed', { detail: err.message }));
    } finally {
      button.disabled = false;
      button.removeAttribute('aria-busy');
      this.refresh();
    }
  }

  /** Runs a rollout verb; promote, abort and rollback (abort of a promoted rollout) are confirmed first. */
  async #act(verb, button) {
    const confirmations = {
      promote: ['Promote canary', 'Promote the canary of ' + this.name + '? It gets 100% of the traffic now.', 'Promote'],
      abort: ['Abort rollout', 'Abort the rollout of ' + this.name + '? All traffic goes back to the stable version at once.', 'Abort'],
      rollback: ['Roll back rollout', 'Roll back the rollout of ' + this.name + '? The version it replaced gets 100% of the traffic again, at once.', 'Roll back'],
    };
    const ask = confirmations[verb];
    if (ask && !(await confirmAction(...ask))) return;
    const apiVerb = verb === 'rollback' ? 'abort' : verb;
    const done = verb === 'rollback' ? 'rolled back' : verb + (verb.endsWith('e') ? 'd' : 'ed');
    await this.#run(button, () => call('POST', this.base + '/rollout/' + apiVerb, {}), 'rollout ' + done);
  }

  /** Shows the service as GET /api/v1/services answers it, with its last-10-seconds numbers. */
  update(service, stats) {
    const hosts = service.hosts ? service.hosts.join(', ') : 'any host';
    const sticky = service.sticky ? ' · sticky by ' + service.sticky.kind + ' ' + service.sticky.name : '';
    const shift = service.shift ? ' · shifting to ' + service.shift.to + ' by ' + service.shift.step + '% until ' + service.shift.until + '%' : '';
    setText(this.meta, hosts + ' ' + service.pathPrefix + sticky + ' · weights from ' + service.weightsSource + shift);
    this.stopShift.hidden = !service.shift;

    this.bar.replaceChildren();
    this.bar.setAttribute('aria-label', 'split: ' + service.versions.map((v) => v.name + ' ' + v.percent + '%').join(', '));
    service.versions.forEach((v, i) => {
      if (v.percent > 0) this.bar.append(el('span', { title: v.name + ' ' + v.percent + '%', style: 'width:' + v.percent + '%;background:' + colorOf(i) }));
    });

    const editing = this.dirty || this.element.querySelector('form.weights')?.contains(document.activeElement);
    for (const v of service.versions) {
      const cells = this.rows.get(v.name);
      const s = (stats && stats.versions && stats.versions[v.name]) || { rps: 0, errorRatio: 0, p50Ms: null, p99Ms: null };
      const labels = Object.entries(v.labels || {});
      const labelText = labels.map(([k, val]) => k + '=' + val).join(' ');
      if (cells.labels.dataset.text !== labelText) {
        cells.labels.dataset.text = labelText;
        cells.labels.replaceChildren(...labels.map(([k, val]) => el('span', { class: 'label' }, k + '=' + val)));
      }
      setText(cells.weight, v.percent + '%');
      setText(cells.rps, fmt.rate(s.rps));
      setText(cells.errors, fmt.pct(s.errorRatio));
      cells.errors.className = s.errorRatio > 0.01 ? 'bad' : '';
      setText(cells.p50, fmt.ms(s.p50Ms));
      setText(cells.p99, fmt.ms(s.p99Ms));
      if (!editing) {
        const inputs = this.weightInputs.get(v.name);
        inputs.number.value = String(v.weight);
        inputs.slider.value = String(Math.min(100, v.weight));
      }
    }

    this.#updateRollout(service);
  }

  #updateRollout(service) {
    const rollout = service.rollout;
    // Rebuilt only when something in it changed (keeps focus on its buttons otherwise).
    const key = JSON.stringify([rollout, service.rolloutPlan]);
    if (key === this.lastRolloutKey) {
      // Only the countdown moves.
      const progress = this.rolloutBox.querySelector('[data-role="progress"]');
      if (progress && rollout) setText(progress, progressLine(rollout));
      return;
    }
    this.lastRolloutKey = key;
    const focused = this.rolloutBox.contains(document.activeElement) ? document.activeElement.getAttribute('data-verb') : null;
    const parts = [];
    if (rollout) parts.push(renderRollout(rollout, 'Rollout of ' + rollout.canary, (verb, button) => this.#act(verb, button)));
    if (!isRunning(rollout) && service.rolloutPlan) {
      const start = el('button', { type: 'button', 'data-action': 'start-rollout', class: 'primary' }, rollout ? 'Start a new rollout' : 'Start rollout');
      start.addEventListener('click', () => this.#run(start, () => call('POST', this.base + '/rollout', {}), 'rollout started'));
      parts.push(el('div', { class: 'buttons' }, start));
    }
    this.rolloutBox.replaceChildren(...parts);
    if (focused) this.rolloutBox.querySelector('[data-verb="' + focused + '"]')?.focus();
  }

  /** Feeds the charts this service's curves. */
  updateSeries(times, curves) {
    this.charts?.update(times, curves);
  }

  /** Removes the card and its charts. */
  destroy() {
    this.charts?.destroy();
    this.element.remove();
  }
}
