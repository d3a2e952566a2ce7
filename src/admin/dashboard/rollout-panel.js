// A service's rollout as the page shows it: phase, a step bar with the
// current step and the time to the next, the last analysis with each check's
// value against its threshold, and the buttons that drive it. Also used for
// releases, whose status has the same fields.

import { el, fmt, formatDuration, formatTime } from './dom.js';

const RUNNING = new Set(['progressing', 'paused']);

/** True while a promoted rollout (or release) may still be rolled back: `abort` until its rollbackUntil. */
export function canRollBack(rollout, now = Date.now()) {
  return rollout.phase === 'promoted' && typeof rollout.rollbackUntil === 'string' && Date.parse(rollout.rollbackUntil) > now;
}

/** Which verbs a rollout (or release) allows now, in button order; `rollback` is the API's abort on a promoted one. */
export function verbsOf(rollout) {
  if (rollout.phase === 'progressing') return ['pause', 'promote', 'abort'];
  if (rollout.phase === 'paused') return ['resume', 'promote', 'abort'];
  if (canRollBack(rollout)) return ['rollback'];
  return [];
}

const VERB_LABELS = { pause: 'Pause', resume: 'Resume', promote: 'Promote', abort: 'Abort', rollback: 'Roll back' };

/** True while a rollout holds the weights. */
export function isRunning(rollout) {
  return rollout !== null && rollout !== undefined && RUNNING.has(rollout.phase);
}

/** The step bar: one segment per step, done ones filled, the current one marked. */
function stepBar(rollout) {
  const list = el('ol', { class: 'steps', 'aria-label': 'rollout steps' });
  const running = isRunning(rollout);
  rollout.steps.forEach((step, i) => {
    const state = rollout.phase === 'promoted' || i < rollout.step ? 'done' : i === rollout.step && running ? 'current' : rollout.phase === 'aborted' && i === rollout.step ? 'failed' : 'todo';
    const pause = step.pause === undefined ? '' : step.pause === 'forever' ? ' · waits' : ' · ' + step.pause;
    list.append(el('li', { class: 'step ' + state, 'aria-current': state === 'current' ? 'step' : false, 'data-step': i }, el('span', { class: 'step-weight' }, step.weight + '%'), el('span', { class: 'step-pause' }, pause)));
  });
  return list;
}

/** One line of the analysis table. */
function checkRow(name, value, threshold, verdict) {
  return el('tr', { 'data-check': name }, el('th', { scope: 'row' }, name), el('td', {}, value), el('td', {}, threshold), el('td', { class: 'verdict ' + (verdict ?? '') }, verdict ?? '–'));
}

/** The last analysis: every check's value against its threshold. */
function analysisTable(rollout) {
  const last = rollout.lastAnalysis;
  const spec = rollout.currentAnalysis ?? rollout.analysis;
  if (last === null || last === undefined) {
    return el('p', { class: 'muted', 'data-role': 'analysis' }, spec ? 'No analysis yet' + (rollout.nextCheckAt ? ' · first check in ' + formatDuration(Date.parse(rollout.nextCheckAt) - Date.now()) : '') : 'This rollout runs no analysis.');
  }
  // A check failed when its reason is among the analysis's (over the threshold, or worse than stable).
  // Too few requests: nothing was judged.
  const tooFew = spec !== null && spec !== undefined && last.canary.requests < spec.minRequests;
  const verdictOf = (prefix) => (tooFew ? 'inconclusive' : last.verdict !== 'pass' && last.reasons.some((r) => r.startsWith(prefix)) ? 'fail' : 'pass');
  const body = el('tbody');
  if (spec) {
    body.append(checkRow('requests', String(last.canary.requests), '≥ ' + spec.minRequests, last.canary.requests >= spec.minRequests ? 'pass' : 'inconclusive'));
    if (spec.maxErrorRate !== null) body.append(checkRow('error rate', fmt.pct(last.canary.errorRatio) + ' (stable ' + fmt.pct(last.stable.errorRatio) + ')', '≤ ' + fmt.pct(spec.maxErrorRate), verdictOf('canary error ratio')));
    if (spec.maxP99Ms !== null) body.append(checkRow('p99', fmt.ms(last.canary.p99Ms) + ' ms (stable ' + fmt.ms(last.stable.p99Ms) + ' ms)', '≤ ' + spec.maxP99Ms + ' ms', verdictOf('canary p99')));
  }
  for (const metric of last.metrics ?? []) {
    const check = spec && spec.metrics ? spec.metrics.find((m) => m.name === metric.name) : undefined;
    const bounds = check ? [check.min !== null ? '≥ ' + check.min : null, check.max !== null ? '≤ ' + check.max : null].filter(Boolean).join(', ') : '';
    body.append(checkRow(metric.name, metric.value === null ? 'no data' : String(Math.round(metric.value * 1e4) / 1e4), bounds, metric.verdict));
  }
  for (const hook of last.hooks ?? []) body.append(checkRow('hook ' + hook.url, hook.status === null ? hook.error ?? 'no answer' : 'HTTP ' + hook.status, '2xx', hook.ok ? 'pass' : 'fail'));
  return el(
    'div',
    { 'data-role': 'analysis', 'data-verdict': last.verdict },
    el('p', {}, 'Last analysis ', el('span', { class: 'verdict ' + last.verdict }, last.verdict), ' at ' + formatTime(last.at) + ' over ' + formatDuration(last.windowMs) + (last.reasons.length ? ': ' + last.reasons.join('; ') : '')),
    el('table', { class: 'analysis' }, el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'check'), el('th', { scope: 'col' }, 'canary'), el('th', { scope: 'col' }, 'threshold'), el('th', { scope: 'col' }, 'verdict'))), body),
  );
}

/** The sentence under the step bar: where the rollout is and what it waits for. */
export function progressLine(rollout) {
  const parts = ['step ' + Math.min(rollout.step + 1, rollout.stepCount) + ' of ' + rollout.stepCount, 'canary ' + rollout.canaryWeight + '%'];
  if (rollout.phase === 'progressing' && rollout.nextStepAt) parts.push('next step in ' + formatDuration(Date.parse(rollout.nextStepAt) - Date.now()));
  if (rollout.phase === 'paused') parts.push('paused' + (rollout.pausedBy ? ' by ' + rollout.pausedBy : ''));
  if (canRollBack(rollout)) parts.push('can be rolled back until ' + formatTime(rollout.rollbackUntil));
  if (rollout.reason) parts.push(rollout.reason);
  return parts.join(' · ');
}

/**
 * Renders a rollout (or a release, same fields) with its buttons; `act(verb)`
 * runs a verb (the caller confirms promote, abort and rollback, and shows errors).
 */
export function renderRollout(rollout, title, act) {
  const phase = el('span', { class: 'phase ' + rollout.phase, 'data-phase': rollout.phase }, rollout.phase);
  const buttons = el('div', { class: 'buttons' });
  for (const verb of verbsOf(rollout)) {
    const button = el('button', { type: 'button', 'data-verb': verb, class: verb === 'abort' || verb === 'rollback' ? 'danger' : verb === 'promote' ? 'primary' : '' }, VERB_LABELS[verb]);
    button.addEventListener('click', () => act(verb, button));
    buttons.append(button);
  }
  return el(
    'div',
    { class: 'rollout', 'data-role': 'rollout', 'data-phase': rollout.phase },
    el('h3', {}, title, ' ', phase),
    rollout.steps ? stepBar(rollout) : null,
    el('p', { class: 'muted', 'data-role': 'progress' }, progressLine(rollout)),
    analysisTable(rollout),
    buttons,
  );
}
