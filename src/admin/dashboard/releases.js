// Releases (several services moving as one), shown when this veer's admin
// API has GET /api/v1/releases: each release as a step bar with its members,
// its last analysis and the same buttons as a rollout.

import { call } from './api.js';
import { confirmAction, el, setText } from './dom.js';
import { renderRollout } from './rollout-panel.js';

/** The releases section; hidden while the API has no releases endpoint. */
export class ReleasesPanel {
  constructor(refresh) {
    this.section = document.getElementById('releases');
    this.list = document.getElementById('release-list');
    this.refresh = refresh;
    this.lastKey = '';
  }

  /** Shows `answer` (the body of GET /api/v1/releases), or hides the section when it is null. */
  render(answer) {
    const releases = answer && Array.isArray(answer.releases) ? answer.releases : null;
    this.section.hidden = releases === null || releases.length === 0;
    if (releases === null) return;
    const key = JSON.stringify(releases);
    if (key === this.lastKey) return;
    this.lastKey = key;
    this.list.replaceChildren(...releases.map((release) => this.#card(release)));
  }

  #card(release) {
    const name = release.name ?? release.release ?? '?';
    const error = el('p', { class: 'error', role: 'alert' });
    const members = release.services ?? release.members ?? {};
    const memberText = Array.isArray(members) ? members.map((m) => (typeof m === 'string' ? m : m.service + ' → ' + (m.canary ?? m.version ?? ''))).join(', ') : Object.entries(members).map(([s, v]) => s + ' → ' + (typeof v === 'string' ? v : JSON.stringify(v))).join(', ');
    const confirmations = {
      promote: ['Promote release', 'Promote release ' + name + '? Every member service moves at once.', 'Promote'],
      abort: ['Abort release', 'Abort release ' + name + '? Every member service moves at once.', 'Abort'],
      rollback: ['Roll back release', 'Roll back release ' + name + '? Every member service gets its weights from before the release back, at once.', 'Roll back'],
    };
    const act = async (verb, button) => {
      const ask = confirmations[verb];
      if (ask && !(await confirmAction(...ask))) return;
      button.disabled = true;
      setText(error, '');
      try {
        // Rolling back is the API's abort of a promoted release.
        await call('POST', '/api/v1/releases/' + encodeURIComponent(name) + '/' + (verb === 'rollback' ? 'abort' : verb), {});
      } catch (err) {
        setText(error, (err.code ? err.code + ': ' : '') + err.message);
      } finally {
        button.disabled = false;
        this.refresh();
      }
    };
    const status = { steps: null, step: 0, stepCount: 0, canaryWeight: 0, lastAnalysis: null, analysis: null, ...release, phase: release.phase ?? 'idle' };
    return el('section', { class: 'card release', 'data-release': name }, el('p', { class: 'meta' }, memberText), renderRollout(status, 'Release ' + name, act), error);
  }
}
