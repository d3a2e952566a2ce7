// Small DOM helpers shared by the dashboard's modules: element building
// (text only, never HTML strings: names and labels come from configs), the
// number formats, version colours and the confirmation dialog.

/** Colours of versions, by their index in the service (the same in tables, bars and charts). */
export const COLORS = ['#3866d6', '#e0801a', '#1f9e6e', '#b548c6', '#d64545', '#5a6b7d'];

/** The colour of the version at `index`. */
export function colorOf(index) {
  return COLORS[index % COLORS.length];
}

/** Builds an element: attributes (`class`, `data-*`, aria, ...; `hidden`/`disabled` as booleans) and children (nodes or text). */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key === 'style') node.style.cssText = value;
    else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

/** Appends nodes or text to `node`. */
export function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Sets a node's text only when it changed (no layout work for an unchanged number). */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** Number formats of the tables and charts. */
export const fmt = {
  pct: (x) => (x === null || x === undefined ? '–' : (x * 100).toFixed(x < 0.01 && x > 0 ? 2 : 1) + '%'),
  rate: (x) => (x === null || x === undefined ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(1)),
  ms: (x) => (x === null || x === undefined ? '–' : x < 10 ? x.toFixed(1) : x.toFixed(0)),
  weight: (x) => (Number.isInteger(x) ? String(x) : x.toFixed(2)),
};

/** "in 1m 05s" style duration of `ms` (>= 0). */
export function formatDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + 's';
  const m = Math.floor(s / 60);
  if (m < 60) return m + 'm ' + String(s % 60).padStart(2, '0') + 's';
  return Math.floor(m / 60) + 'h ' + String(m % 60).padStart(2, '0') + 'm';
}

/** A local time of day for an ISO time, with the date when it is not today. */
export function formatTime(iso) {
  const d = new Date(iso);
  const now = new Date();
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return d.toDateString() === now.toDateString() ? time : d.toLocaleDateString() + ' ' + time;
}

/** "v1 90 · v2 10" for a weight map. */
export function formatWeights(weights) {
  const entries = Object.entries(weights || {});
  return entries.length === 0 ? '–' : entries.map(([name, w]) => name + ' ' + fmt.weight(w)).join(' · ');
}

/** Asks "are you sure" in the page's modal dialog; resolves true when confirmed. */
export function confirmAction(title, text, yesLabel) {
  const dialog = document.getElementById('confirm-dialog');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-yes').textContent = yesLabel;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'yes'), { once: true });
    dialog.showModal();
  });
}
