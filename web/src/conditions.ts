// The conditions panel: the tree of `GET /planscape-backend/conditions` (region ->
// pillars -> elements -> metrics) with search, one condition shown at a time as a raster
// tile layer, the raw/normalized switch, opacity, the legend and the metric's metadata.
import L from 'leaflet';
import { ApiError, api, type MetricInfo, type RegionTree } from './api';
import { h, replace, uid } from './dom';
import { LegendPanel } from './legend';
import { tileErrors } from './layers';
import type { UrlState } from './url-state';

export interface ConditionNode {
  key: string; // region/name
  region: string;
  name: string;
  display_name: string;
  level: 'region' | 'pillar' | 'element' | 'metric';
  layer?: string | null;
  raw_layer?: string | null;
  metric?: MetricInfo;
  operation?: string;
  children: ConditionNode[];
  parent?: ConditionNode;
}

export const CONDITION_PANE = 'conditions';

export class ConditionsPanel extends EventTarget {
  /** Every node by `region/name`, and display names by condition name (for scores). */
  readonly nodes = new Map<string, ConditionNode>();
  private roots: ConditionNode[] = [];
  private rows = new Map<string, { li: HTMLLIElement; radio: HTMLInputElement; toggle?: HTMLButtonElement }>();
  private tree = h('ul', { class: 'tree', 'aria-label': 'Conditions' });
  private search: HTMLInputElement;
  private raw: HTMLInputElement;
  private normalized: HTMLInputElement;
  private opacity: HTMLInputElement;
  private meta = h('div', { class: 'meta', 'aria-live': 'polite' });
  private legend = new LegendPanel();
  private error = h('p', { class: 'form-error', role: 'alert' });
  private layer: L.TileLayer | null = null;
  private layerName = '';
  private seq = 0;
  private pointSeq = 0;

  constructor(private map: L.Map, container: HTMLElement, private url: UrlState) {
    super();
    map.createPane(CONDITION_PANE).style.zIndex = '350';
    map.on('click', (e: L.LeafletMouseEvent) => void this.pointValue(e.latlng));
    const searchId = uid('condition-search');
    this.search = h('input', {
      id: searchId, type: 'search', placeholder: 'e.g. biomass, fire',
      oninput: () => this.filter(),
    });
    const valuesName = uid('values');
    this.normalized = h('input', { type: 'radio', name: valuesName, id: `${valuesName}-n`, checked: true,
      onchange: () => { this.url.update({ raw: false }); this.apply(); } });
    this.raw = h('input', { type: 'radio', name: valuesName, id: `${valuesName}-r`,
      onchange: () => { this.url.update({ raw: true }); this.apply(); } });
    const opacityId = uid('opacity');
    this.opacity = h('input', {
      id: opacityId, type: 'range', min: '0', max: '1', step: '0.05',
      oninput: () => this.layer?.setOpacity(Number(this.opacity.value)),
      onchange: () => this.url.update({ opacity: Number(this.opacity.value) }, false),
    });
    container.append(
      h('div', { class: 'field' }, h('label', { for: searchId }, 'Search conditions'), this.search),
      this.tree,
      h('fieldset', { class: 'inline' }, h('legend', {}, 'Values'),
        this.normalized, h('label', { for: this.normalized.id }, 'Normalized (−1 to 1)'),
        this.raw, h('label', { for: this.raw.id }, 'Raw')),
      h('div', { class: 'field' }, h('label', { for: opacityId }, 'Opacity'), this.opacity),
      this.error, this.legend.element, this.meta,
    );
  }

  async start(): Promise<void> {
    try {
      const { regions } = await api.conditions();
      this.build(regions);
    } catch (e) {
      this.error.textContent = `The conditions catalog could not be read: ${(e as Error).message}`;
    }
    this.apply();
  }

  /** Whether the catalog has conditions for a region. */
  hasRegion(region: string): boolean {
    return this.roots.some((r) => r.region === region);
  }

  /** A region's tree (its shown pillars, elements and metrics), for pickers. */
  regionTree(region: string): ConditionNode | undefined {
    return this.roots.find((r) => r.region === region);
  }

  /** Display name of a condition of a region (for score tables). */
  displayName(region: string, name: string): string {
    return this.nodes.get(`${region}/${name}`)?.display_name ?? name.replace(/_/g, ' ');
  }

  private build(regions: RegionTree[]) {
    const node = (region: string, level: ConditionNode['level'], x: {
      name: string; display_name: string; layer?: string | null; raw_layer?: string | null; operation?: string;
    }, parent?: ConditionNode): ConditionNode => {
      const n: ConditionNode = {
        key: `${region}/${x.name}`, region, name: x.name, display_name: x.display_name, level,
        layer: x.layer, raw_layer: x.raw_layer, operation: x.operation, children: [], parent,
      };
      if (level !== 'region') this.nodes.set(n.key, n);
      parent?.children.push(n);
      return n;
    };
    for (const r of regions) {
      const root = node(r.name, 'region', r);
      for (const p of r.pillars) {
        // Pillars the catalog hides stay out of the tree (their scores still get names).
        const pn = node(r.name, 'pillar', p, p.display === false ? undefined : root);
        for (const e of p.elements) {
          const en = node(r.name, 'element', e, pn);
          for (const m of e.metrics) node(r.name, 'metric', m, en).metric = m;
        }
      }
      this.roots.push(root);
    }
    const none = this.row(null);
    replace(this.tree, none.li, ...this.roots.map((r) => this.row(r).li));
  }

  private row(n: ConditionNode | null): { li: HTMLLIElement } {
    const id = uid('condition');
    const radio = h('input', {
      type: 'radio', name: 'condition', id, value: n?.key ?? '',
      disabled: n?.level === 'region',
      onchange: () => { this.url.update({ condition: n?.key }); this.apply(); },
    });
    const li = h('li', { class: `level-${n?.level ?? 'none'}` });
    if (!n) {
      li.append(h('div', { class: 'row' }, radio, h('label', { for: id }, 'None')));
      this.rows.set('', { li, radio });
      return { li };
    }
    const children = h('ul', {}, ...n.children.map((c) => this.row(c).li));
    let toggle: HTMLButtonElement | undefined;
    const row = h('div', { class: 'row' });
    if (n.children.length) {
      toggle = h('button', {
        type: 'button', class: 'toggle', 'aria-expanded': n.level === 'region' ? 'true' : 'false',
        'aria-label': `Show the parts of ${n.display_name}`,
        onclick: () => this.expand(n, toggle!.getAttribute('aria-expanded') !== 'true'),
      });
      children.hidden = n.level !== 'region';
      row.append(toggle);
    }
    if (n.level === 'region') row.append(h('strong', {}, n.display_name));
    else row.append(radio, h('label', { for: id }, n.display_name));
    li.append(row);
    if (n.children.length) li.append(children);
    this.rows.set(n.key + (n.level === 'region' ? '#region' : ''), { li, radio, toggle });
    return { li };
  }

  private expand(n: ConditionNode, open: boolean) {
    const r = this.rows.get(n.key + (n.level === 'region' ? '#region' : ''));
    if (!r?.toggle) return;
    r.toggle.setAttribute('aria-expanded', String(open));
    const ul = r.li.querySelector(':scope > ul') as HTMLElement | null;
    if (ul) ul.hidden = !open;
  }

  private filter() {
    const q = this.search.value.trim().toLowerCase();
    const visit = (n: ConditionNode): boolean => {
      const own = n.display_name.toLowerCase().includes(q) || n.name.toLowerCase().includes(q);
      const kids = n.children.map(visit).some(Boolean);
      const r = this.rows.get(n.key + (n.level === 'region' ? '#region' : ''));
      if (r) r.li.hidden = !!q && !own && !kids;
      if (q && kids) this.expand(n, true);
      return own || kids;
    };
    this.roots.forEach(visit);
  }

  /** Shows the condition of the URL state. */
  apply(): void {
    const s = this.url.state;
    const n = s.condition ? this.nodes.get(s.condition) : undefined;
    const r = this.rows.get(n?.key ?? '');
    if (r) r.radio.checked = true;
    for (let p = n?.parent; p; p = p.parent) this.expand(p, true);
    const rawAvailable = !!n?.raw_layer;
    this.raw.disabled = !rawAvailable;
    const raw = s.raw && rawAvailable;
    this.raw.checked = raw;
    this.normalized.checked = !raw;
    this.opacity.value = String(s.opacity);
    this.showLayer(n ? (raw ? n.raw_layer : n.layer) ?? undefined : undefined, n, raw);
  }

  private async showLayer(name: string | undefined, n: ConditionNode | undefined, raw: boolean) {
    this.layer?.setOpacity(this.url.state.opacity);
    if ((name ?? '') === this.layerName) return;
    const seq = ++this.seq;
    this.layerName = name ?? '';
    this.layer?.remove();
    this.layer = null;
    this.error.textContent = '';
    this.renderMeta(n, raw);
    void this.legend.show(name, n ? `${n.display_name}${raw ? ' (raw)' : ''}` : '');
    if (!name) return;
    try {
      const tj = await api.tileJson(name);
      if (seq !== this.seq) return;
      const b = tj.bounds;
      this.layer = L.tileLayer(tj.tiles[0], {
        pane: CONDITION_PANE,
        opacity: this.url.state.opacity,
        minZoom: tj.minzoom,
        maxNativeZoom: tj.maxzoom,
        maxZoom: 22,
        bounds: b ? L.latLngBounds([b[1], b[0]], [b[3], b[2]]) : undefined,
        attribution: tj.attribution,
      });
      this.layer.on('tileerror', (e: L.TileErrorEvent) => tileErrors.push(`${name} ${e.coords.z}/${e.coords.x}/${e.coords.y}`));
      this.layer.addTo(this.map);
      if (this.map.getZoom() < tj.minzoom) {
        this.error.textContent = `Zoom in to see this layer (from zoom ${tj.minzoom}).`;
      }
    } catch (e) {
      if (seq === this.seq) this.error.textContent = `This layer cannot be shown: ${(e as Error).message}`;
    }
  }

  /** Click on the map: the shown condition's value there, added to the popup a boundary
   *  opened for the same click, or in a popup of its own. */
  private async pointValue(at: L.LatLng) {
    const name = this.layerName;
    if (!name || this.map.getContainer().classList.contains('drawing')) return;
    const seq = ++this.pointSeq;
    const n = this.url.state.condition ? this.nodes.get(this.url.state.condition) : undefined;
    const title = n ? n.display_name : name;
    const line = h('p', { class: 'point-value', role: 'status' }, h('strong', {}, `${title}: `), 'reading…');
    // Let a boundary's click handler open its popup first.
    await new Promise((r) => setTimeout(r, 0));
    let popup: L.Popup | undefined;
    this.map.eachLayer((l) => {
      if (l instanceof L.Popup && l.getLatLng()?.equals(at)) popup = l;
    });
    const content = popup?.getContent();
    if (popup && content instanceof HTMLElement) {
      // Into the popup's own content node: Leaflet re-renders from it on update.
      content.append(line);
      popup.update();
    } else {
      L.popup({ maxWidth: 280 }).setLatLng(at).setContent(h('div', { class: 'feature-popup' }, line)).openOn(this.map);
    }
    let text: string;
    try {
      const p = await api.point(name, at.lng, at.lat);
      const value = Math.abs(p.value) >= 100 || Number.isInteger(p.value) ? p.value.toLocaleString('en-US', { maximumFractionDigits: 1 })
        : p.value.toFixed(3);
      text = `${value}${p.units ? ` ${p.units}` : ''}`;
      if (p.band) text += ` (${p.band})`;
      else if (p.label) text += ` (${p.label})`;
      if (p.condition?.values === 'normalized') text += ', normalized';
    } catch (e) {
      text = e instanceof ApiError && e.status === 422 ? 'no data here' : `cannot be read: ${(e as Error).message}`;
    }
    if (seq !== this.pointSeq) return;
    line.lastChild?.replaceWith(text);
    line.dataset.value = 'ready';
  }

  private renderMeta(n: ConditionNode | undefined, raw: boolean) {
    if (!n) {
      replace(this.meta);
      return;
    }
    const rows: [string, Node | string][] = [['Level', n.level]];
    const m = n.metric;
    if (m) {
      if (m.data_units) rows.push(['Units', m.data_units]);
      rows.push(['Raw range', `${m.min_value} to ${m.max_value}${m.data_units ? ` ${m.data_units}` : ''}`]);
      if (m.invert_raw) rows.push(['Note', 'High raw values are poor: the normalized layer is inverted.']);
      if (m.source) rows.push(['Source', m.source_link ? link(m.source_link, m.source) : m.source]);
      else if (m.source_link) rows.push(['Source', link(m.source_link, m.source_link)]);
      if (m.data_provider) rows.push(['Provider', m.data_provider]);
      if (m.data_year) rows.push(['Year', m.data_year]);
      if (m.reference_link) rows.push(['Reference', link(m.reference_link, 'Documentation')]);
    } else {
      const kids = n.children.length;
      rows.push(['Made of', `${n.operation ?? 'mean'} of ${kids} ${n.level === 'pillar' ? 'element' : 'metric'}${kids === 1 ? '' : 's'}`]);
    }
    rows.push(['Shown', raw ? 'raw values' : 'normalized values, −1 (poor) to 1 (excellent)']);
    replace(this.meta, h('h3', {}, n.display_name),
      h('dl', {}, ...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
  }
}

function link(href: string, text: string): HTMLAnchorElement {
  const safe = /^https?:\/\//i.test(href) ? href : '#';
  return h('a', { href: safe, target: '_blank', rel: 'noopener noreferrer' }, text);
}
