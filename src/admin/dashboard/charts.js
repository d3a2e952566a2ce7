// A service's three charts (uPlot): request rate, error ratio, and p99/p50
// latency, one line per version on the same axes, over the samples of
// GET /api/v1/stats/series (the last 15 minutes, 5 s apart, plus a live point).
// Charts are built once per service and fed with setData on every poll; they
// follow their box's width (ResizeObserver), so a phone gets narrow charts.

import uPlot from '/dashboard/vendor/uplot.js';
import { colorOf, el, fmt } from './dom.js';

const HEIGHT = 170;

/** The charts of one service: what each shows and how its series are read from the API's curves. */
const KINDS = [
  { key: 'rps', title: 'Requests per second', unit: (v) => fmt.rate(v), lines: [{ field: 'rps', suffix: '', dash: null }] },
  { key: 'errors', title: 'Error ratio', unit: (v) => (v === null ? '–' : fmt.pct(v / 100)), scale: 100, lines: [{ field: 'errorRatio', suffix: '', dash: null }] },
  {
    key: 'latency',
    title: 'Latency p99 and p50 (ms)',
    unit: (v) => fmt.ms(v),
    lines: [
      { field: 'p99Ms', suffix: ' p99', dash: null },
      { field: 'p50Ms', suffix: ' p50', dash: [4, 4] },
    ],
  },
];

/** Time-of-day tick labels: hours and minutes, with seconds while the chart spans under 5 minutes. */
function timeLabels(u, ticks) {
  const span = ticks.length > 1 ? ticks[ticks.length - 1] - ticks[0] : 0;
  const style = span < 300 ? { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' } : { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  return ticks.map((t) => new Date(t * 1000).toLocaleTimeString([], style));
}

/** Builds one chart's options for `versions`. */
function optionsOf(kind, versions, width) {
  const series = [{ label: 'time', value: (_u, v) => (v === null ? '–' : new Date(v * 1000).toLocaleTimeString()) }];
  versions.forEach((version, i) => {
    for (const line of kind.lines) {
      series.push({ label: version + line.suffix, stroke: colorOf(i), width: 2, dash: line.dash ?? undefined, spanGaps: false, points: { show: false }, value: (_u, v) => kind.unit(v) });
    }
  });
  return {
    width,
    height: HEIGHT,
    series,
    // From zero, and at least 0..1 (req/s, %, ms) so a quiet version is a flat line at the bottom.
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(max ?? 0, 1) * 1.1] } },
    axes: [{ stroke: '#6b7385', grid: { stroke: '#eceef4' }, ticks: { stroke: '#eceef4' }, values: timeLabels, space: 70 }, { stroke: '#6b7385', grid: { stroke: '#eceef4' }, ticks: { stroke: '#eceef4' }, size: 52, values: (_u, ticks) => ticks.map((v) => kind.unit(v)) }],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
}

/** The three charts of one service, built into `box`. */
export class ServiceCharts {
  constructor(box, service, versions) {
    this.service = service;
    this.versions = versions;
    this.box = box;
    this.charts = [];
    this.figures = [];
    const plots = KINDS.map((kind) => {
      const figure = el('figure', { class: 'chart', 'data-chart': kind.key, 'data-points': '0' });
      const plot = el('div', { class: 'plot', role: 'img', 'aria-label': kind.title + ' of ' + service + ' by version' });
      figure.append(el('figcaption', {}, kind.title), plot);
      box.append(figure);
      this.figures.push(figure);
      return plot;
    });
    // The grid sizes the figures (the CSS: three abreast, two, or one on a phone); each chart takes its figure's width.
    KINDS.forEach((kind, k) => {
      const empty = [[], ...versions.flatMap(() => kind.lines.map(() => []))];
      this.charts.push(new uPlot(optionsOf(kind, versions, this.#width(k)), empty, plots[k]));
    });
    this.observer = new ResizeObserver(() => this.#resize());
    this.observer.observe(box);
  }

  #width(k) {
    return Math.max(160, Math.floor(this.figures[k].clientWidth));
  }

  #resize() {
    this.charts.forEach((chart, k) => {
      const width = this.#width(k);
      if (chart.width !== width) chart.setSize({ width, height: HEIGHT });
    });
  }

  /** Feeds the API's curves of this service ({times, versions: {v: {rps, errorRatio, p50Ms, p99Ms}}}). */
  update(times, curves) {
    const xs = times.map((t) => t / 1000);
    KINDS.forEach((kind, k) => {
      const data = [xs];
      let points = 0;
      for (const version of this.versions) {
        for (const line of kind.lines) {
          const values = (curves && curves[version] && curves[version][line.field]) || xs.map(() => null);
          const scaled = kind.scale ? values.map((v) => (v === null ? null : v * kind.scale)) : values;
          for (const v of scaled) if (v !== null) points++;
          data.push(scaled);
        }
      }
      this.charts[k].setData(data);
      this.figures[k].setAttribute('data-points', String(points));
    });
  }

  /** Frees the charts (the service left or changed its versions). */
  destroy() {
    this.observer.disconnect();
    for (const chart of this.charts) chart.destroy();
    this.box.replaceChildren();
  }
}
