// The legend of the shown condition layer (`/tiles/{layer}/legend`: colours, labels, units).
import { api, type Legend } from './api';
import { h, replace } from './dom';

export class LegendPanel {
  private seq = 0;
  readonly element = h('section', { class: 'legend', 'aria-label': 'Legend' });

  constructor() {
    this.element.hidden = true;
  }

  async show(layer: string | undefined, title: string): Promise<void> {
    const seq = ++this.seq;
    if (!layer) {
      this.element.hidden = true;
      replace(this.element);
      return;
    }
    try {
      const legend = await api.legend(layer);
      if (seq !== this.seq) return;
      replace(this.element, h('h3', {}, title), render(legend));
    } catch (e) {
      if (seq !== this.seq) return;
      replace(this.element, h('p', { class: 'form-error' }, `No legend: ${(e as Error).message}`));
    }
    this.element.hidden = false;
  }
}

function render(legend: Legend): HTMLElement {
  const units = legend.units ? ` ${legend.units}` : '';
  // Highest values first, as on the colour bar.
  const entries = [...legend.entries].reverse();
  if (legend.type === 'ramp' && entries.length > 1) {
    const stops = entries.map((e, i) => `${e.color} ${(100 * i) / (entries.length - 1)}%`).join(', ');
    const bar = h('div', { class: 'ramp', style: `background: linear-gradient(to bottom, ${stops})`, 'aria-hidden': 'true' });
    const labels = h('ul', { class: 'ramp-labels' }, ...entries.map((e) => h('li', {}, text(e.label, e.value, units))));
    return h('div', { class: 'legend-ramp' }, bar, labels);
  }
  return h('ul', { class: 'legend-classes' }, ...entries.map((e) =>
    h('li', {}, h('span', { class: 'swatch', style: `background: ${e.color}`, 'aria-hidden': 'true' }),
      text(e.label, e.value, units))));
}

function text(label: string | null | undefined, value: number | null | undefined, units: string): string {
  const v = value === null || value === undefined ? '' : `${Number.isInteger(value) ? value : value.toFixed(2)}${units}`;
  if (label && v && units) return `${v} (${label})`;
  return label || v;
}
