// A plan's scores: every condition of its region over the plan, read in five bands,
// as a table in tree order (or sorted by score or name) with a bar per row.
import type { ConditionStats } from './api';
import { h, replace } from './dom';

export const BANDS = ['Poor', 'Fair', 'Ok', 'Good', 'Excellent'] as const;
export type Band = (typeof BANDS)[number];

/** The band of a normalized value: Poor [-1,-0.6), Fair [-0.6,-0.2), Ok [-0.2,0.2],
 *  Good (0.2,0.6], Excellent (0.6,1]. */
export function band(mean: number): Band {
  if (mean < -0.6) return 'Poor';
  if (mean < -0.2) return 'Fair';
  if (mean <= 0.2) return 'Ok';
  if (mean <= 0.6) return 'Good';
  return 'Excellent';
}

type Sort = 'tree' | 'score-desc' | 'score-asc' | 'name';

export interface ScoreRow { stats: ConditionStats; name: string; depth: number; order: number }

export class ScoresTable {
  readonly element = h('div', { class: 'scores' });
  private sort: Sort = 'tree';
  private rows: ScoreRow[] = [];

  set(rows: ScoreRow[]): void {
    this.rows = rows;
    this.render();
  }

  private render() {
    const rows = [...this.rows];
    const mean = (r: ScoreRow) => r.stats.mean ?? -Infinity;
    if (this.sort === 'score-desc') rows.sort((a, b) => mean(b) - mean(a));
    if (this.sort === 'score-asc') rows.sort((a, b) => mean(a) - mean(b));
    if (this.sort === 'name') rows.sort((a, b) => a.name.localeCompare(b.name));
    if (this.sort === 'tree') rows.sort((a, b) => a.order - b.order);
    const select = h('select', {
      'aria-label': 'Sort scores',
      onchange: () => { this.sort = select.value as Sort; this.render(); },
    },
    ...([['tree', 'In tree order'], ['score-desc', 'Best first'], ['score-asc', 'Worst first'], ['name', 'By name']] as const)
      .map(([v, t]) => h('option', { value: v }, t)));
    select.value = this.sort;
    const counts = new Map<string, number>();
    for (const r of this.rows) {
      if (r.stats.mean === null || r.stats.mean === undefined) continue;
      const b = r.stats.band ?? band(r.stats.mean);
      counts.set(b, (counts.get(b) ?? 0) + 1);
    }
    replace(this.element,
      h('div', { class: 'scores-head' }, select,
        h('ul', { class: 'band-key', 'aria-label': 'Bands' }, ...BANDS.map((b) =>
          h('li', { class: `band band-${b.toLowerCase()}` }, `${b} ${counts.get(b) ?? 0}`)))),
      h('table', { class: 'score-table' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Condition'), h('th', { scope: 'col' }, 'Score'),
          h('th', { scope: 'col' }, 'Band'))),
        h('tbody', {}, ...rows.map((r) => this.row(r, this.sort === 'tree')))));
  }

  private row(r: ScoreRow, indent: boolean): HTMLTableRowElement {
    const m = r.stats.mean;
    if (m === null || m === undefined) {
      return h('tr', { class: 'no-data', 'data-condition': r.stats.condition },
        h('th', { scope: 'row', style: indent ? `padding-left: ${r.depth}em` : undefined }, r.name),
        h('td', {}, '–'), h('td', {}, 'no data'));
    }
    const b = r.stats.band ?? band(m);
    // The bar grows from the middle: left for negative scores, right for positive.
    const width = Math.min(50, Math.abs(m) * 50);
    const bar = h('span', {
      class: `bar band-${b.toLowerCase()}`,
      style: `left: ${m < 0 ? 50 - width : 50}%; width: ${width}%`,
    });
    return h('tr', { class: `band-row-${b.toLowerCase()}`, 'data-condition': r.stats.condition, 'data-band': b, 'data-mean': m },
      h('th', { scope: 'row', style: indent ? `padding-left: ${r.depth}em` : undefined }, r.name),
      h('td', { class: 'score', title: String(m) }, h('span', { class: 'bar-track', 'aria-hidden': 'true' }, bar), m.toFixed(2)),
      h('td', {}, h('span', { class: `band band-${b.toLowerCase()}` }, b)));
  }
}
