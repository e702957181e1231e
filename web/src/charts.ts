// Small SVG charts for the analytics dashboard, no library: lines over days, vertical
// bars, horizontal bars. Each chart is an `<svg role="img">` named by its label, with the
// numbers also in a visually hidden table for screen readers.
import { h } from './dom';

const SVG = 'http://www.w3.org/2000/svg';
/** Series colours (distinguishable, and dark enough on white). */
export const COLORS = ['#1f5f8b', '#c0392b', '#1e7e34', '#8e44ad', '#b9770e'];

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function text(x: number, y: number, content: string, attrs: Record<string, string | number> = {}): SVGTextElement {
  const t = svg('text', { x, y, 'font-size': 11, fill: '#3c4850', ...attrs });
  t.textContent = content;
  return t;
}

/** A round upper bound for an axis (1, 2 or 5 times a power of ten). */
export function niceMax(max: number): number {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

export function formatNumber(n: number): string {
  return Number.isInteger(n) ? n.toLocaleString('en-US') : n.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

/** A hidden table of the chart's numbers (header row, then rows). */
function dataTable(caption: string, header: string[], rows: (string | number)[][]): HTMLTableElement {
  return h('table', { class: 'visually-hidden' },
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, ...header.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, typeof c === 'number' ? formatNumber(c) : c))))));
}

function legend(names: string[]): HTMLElement {
  return h('ul', { class: 'chart-legend' },
    ...names.map((n, i) => h('li', {}, h('span', { class: 'swatch', style: `background:${COLORS[i % COLORS.length]}` }), n)));
}

export interface Series { name: string; values: number[] }

const W = 520;
const H = 180;
const PAD = { left: 44, right: 10, top: 10, bottom: 24 };

/** Lines (or, with `bars`, grouped bars) over labelled x positions (days). */
export function timeChart(label: string, xs: string[], series: Series[], bars = false): HTMLElement {
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = xs.length > 1 ? plotW / (xs.length - 1) : plotW;
  const x = (i: number) => PAD.left + (bars ? (i + 0.5) * (plotW / Math.max(1, xs.length)) : (xs.length > 1 ? i * step : plotW / 2));
  const y = (v: number) => PAD.top + plotH - (v / max) * plotH;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, class: 'chart' });
  for (const f of [0, 0.5, 1]) {
    root.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(max * f), y2: y(max * f), stroke: '#e3e8ec' }));
    root.append(text(PAD.left - 4, y(max * f) + 4, formatNumber(max * f), { 'text-anchor': 'end' }));
  }
  // A few day labels (first, middle, last).
  const marks = xs.length ? [...new Set([0, Math.floor((xs.length - 1) / 2), xs.length - 1])] : [];
  for (const i of marks) {
    const anchor = marks.length > 1 && i === 0 ? 'start' : marks.length > 1 && i === xs.length - 1 ? 'end' : 'middle';
    root.append(text(x(i), H - 6, xs[i].slice(5), { 'text-anchor': anchor }));
  }
  series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length];
    if (bars) {
      const slot = plotW / Math.max(1, xs.length);
      const bw = Math.max(1, (slot * 0.8) / series.length);
      s.values.forEach((v, i) => {
        const left = PAD.left + i * slot + slot * 0.1 + k * bw;
        root.append(svg('rect', { x: left, y: y(v), width: bw, height: Math.max(0, y(0) - y(v)), fill: color }));
      });
    } else {
      const points = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
      root.append(svg('polyline', { points, fill: 'none', stroke: color, 'stroke-width': 2 }));
      if (xs.length <= 45) s.values.forEach((v, i) => root.append(svg('circle', { cx: x(i), cy: y(v), r: 2.2, fill: color })));
    }
  });
  return h('div', { class: 'chart-box' },
    root,
    series.length > 1 ? legend(series.map((s) => s.name)) : null,
    dataTable(label, ['day', ...series.map((s) => s.name)], xs.map((d, i) => [d, ...series.map((s) => s.values[i] ?? 0)])));
}

/** Vertical bars over categories (e.g. zoom levels). */
export function columnChart(label: string, categories: string[], values: number[]): HTMLElement {
  const max = niceMax(Math.max(0, ...values));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / Math.max(1, categories.length);
  const y = (v: number) => PAD.top + plotH - (v / max) * plotH;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, class: 'chart' });
  for (const f of [0, 0.5, 1]) {
    root.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(max * f), y2: y(max * f), stroke: '#e3e8ec' }));
    root.append(text(PAD.left - 4, y(max * f) + 4, formatNumber(max * f), { 'text-anchor': 'end' }));
  }
  values.forEach((v, i) => {
    const left = PAD.left + i * slot + slot * 0.15;
    root.append(svg('rect', { x: left, y: y(v), width: slot * 0.7, height: Math.max(0, y(0) - y(v)), fill: COLORS[0] }));
    root.append(text(left + slot * 0.35, H - 6, categories[i], { 'text-anchor': 'middle' }));
  });
  return h('div', { class: 'chart-box' }, root,
    dataTable(label, ['', 'requests'], categories.map((c, i) => [c, values[i]])));
}

/** Horizontal bars: one labelled row each (a list, so long names wrap). */
export function barList(label: string, rows: { name: string; value: number; note?: string }[]): HTMLElement {
  const max = Math.max(1, ...rows.map((r) => r.value));
  if (!rows.length) return h('p', { class: 'note' }, 'Nothing in this range.');
  return h('ol', { class: 'bar-list', 'aria-label': label },
    ...rows.map((r) => h('li', {},
      h('span', { class: 'bar-name' }, r.name, r.note ? h('span', { class: 'note' }, ` ${r.note}`) : null),
      h('span', { class: 'bar-line' },
        h('span', { class: 'bar-fill', style: `width:${((r.value / max) * 100).toFixed(1)}%` }),
        h('span', { class: 'bar-value' }, formatNumber(r.value))))));
}
