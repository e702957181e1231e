// The administrators' analytics dashboard (`?dashboard=1`, loaded on first use): daily
// active users, sign-ups, plans and scenarios over a date range, the condition layers
// looked at most, tile requests by zoom and layer, a heat map of where plans are drawn
// and p50/p95 latency per route. Every chart offers its data as CSV (the API's own
// `format=csv`). The server answers these reports to administrators only.
import L from 'leaflet';
import {
  ApiError, api, type ActivityDay, type ConditionViews, type PlanDay, type Report, type RouteLatency,
  type ScenarioDay, type SignupDay, type TileRequests,
} from './api';
import { barList, columnChart, formatNumber, timeChart } from './charts';
import { defaultRange } from './day-range';
import { h, replace, uid } from './dom';

interface Card { root: HTMLElement; body: HTMLElement; csv: HTMLAnchorElement }

export class Dashboard {
  readonly root: HTMLElement;
  private range = defaultRange();
  private grid = h('div', { class: 'dash-grid' });
  private error = h('p', { class: 'form-error', role: 'alert' });
  private heat: L.Map | null = null;
  private heatLayer: L.GeoJSON | null = null;
  private seq = 0;

  constructor(onClose: () => void) {
    const fromId = uid('from');
    const toId = uid('to');
    const from = h('input', { id: fromId, type: 'date', name: 'from', value: this.range.from, required: true });
    const to = h('input', { id: toId, type: 'date', name: 'to', value: this.range.to, required: true });
    const form = h('form', {
      class: 'dash-range', 'aria-label': 'Date range',
      onsubmit: (e: Event) => {
        e.preventDefault();
        this.range = { from: from.value, to: to.value };
        void this.load();
      },
    },
    h('label', { for: fromId }, 'From'), from,
    h('label', { for: toId }, 'To'), to,
    h('button', { type: 'submit' }, 'Show'));
    this.root = h('section', { id: 'dashboard', 'aria-label': 'Analytics dashboard' },
      h('div', { class: 'dash-head' },
        h('h2', {}, 'Analytics'),
        form,
        h('button', { type: 'button', class: 'dash-close', onclick: onClose }, 'Back to the map')),
      h('p', { class: 'note' }, 'UTC days. Counts come from this server’s own records: no third-party tracker, no IP addresses.'),
      this.error,
      this.grid);
  }

  private card(title: string, chart: string, extra = ''): Card {
    const body = h('div', { class: 'card-body' }, h('p', { class: 'loading' }, 'Loading…'));
    const csv = h('a', { class: 'csv', href: '#', download: '' }, 'Download CSV');
    csv.setAttribute('aria-label', `Download CSV: ${title}`);
    const root = h('article', { class: 'card', 'data-chart': chart }, h('h3', {}, title), extra ? h('p', { class: 'note' }, extra) : null, body, csv);
    return { root, body, csv };
  }

  private csvUrl(chart: string, ranged = true): string {
    return api.analyticsUrl(chart, ranged ? this.range : null, 'csv');
  }

  /** Loads every report of the range and draws the charts. */
  async load(): Promise<void> {
    const seq = ++this.seq;
    this.error.textContent = '';
    const cards = {
      activity: this.card('Daily active users', 'activity', 'Signed-in users who did anything, and distinct visitors of the app (a hash that changes daily).'),
      signups: this.card('Sign-ups', 'signups'),
      plans: this.card('Plans', 'plans'),
      scenarios: this.card('Scenarios', 'scenarios'),
      conditions: this.card('Most viewed condition layers', 'conditions', 'Tile requests, all zooms.'),
      zooms: this.card('Tile requests by zoom', 'tiles-zoom'),
      layers: this.card('Tile requests by layer', 'tiles-layer'),
      heat: this.card('Where plans are drawn', 'plan-cells', 'Plans created per hexagon of 10 km side.'),
      latency: this.card('Latency per route', 'latency', 'p50 and p95 since this server started.'),
    };
    this.heat?.remove();
    this.heat = null;
    replace(this.grid, ...Object.values(cards).map((c) => c.root));
    cards.activity.csv.href = this.csvUrl('activity');
    cards.signups.csv.href = this.csvUrl('signups');
    cards.plans.csv.href = this.csvUrl('plans');
    cards.scenarios.csv.href = this.csvUrl('scenarios');
    cards.conditions.csv.href = this.csvUrl('conditions');
    cards.zooms.csv.href = this.csvUrl('tiles');
    cards.layers.csv.href = this.csvUrl('tiles');
    cards.heat.csv.href = this.csvUrl('plan-cells');
    cards.latency.csv.href = this.csvUrl('latency', false);
    const r = this.range;
    try {
      const [activity, signups, plans, scenarios, conditions, tiles, cells, latency] = await Promise.all([
        api.analytics<Report<ActivityDay>>('activity', r),
        api.analytics<Report<SignupDay>>('signups', r),
        api.analytics<Report<PlanDay>>('plans', r),
        api.analytics<Report<ScenarioDay>>('scenarios', r),
        api.analytics<Report<ConditionViews>>('conditions', r),
        api.analytics<Report<TileRequests>>('tiles', r),
        api.analytics<GeoJSON.FeatureCollection<GeoJSON.Polygon, { plans: number }>>('plan-cells', r),
        api.analytics<Report<RouteLatency>>('latency', null),
      ]);
      if (seq !== this.seq) return;
      const days = activity.rows.map((d) => d.day);
      replace(cards.activity.body, timeChart('Daily active users and visitors', days, [
        { name: 'active users', values: activity.rows.map((d) => d.active_users) },
        { name: 'visitors', values: activity.rows.map((d) => d.visitors) },
      ]));
      replace(cards.signups.body, timeChart('Sign-ups per day', signups.rows.map((d) => d.day),
        [{ name: 'sign-ups', values: signups.rows.map((d) => d.signups) }], true),
      h('p', { class: 'total' }, `${formatNumber(signups.rows.reduce((a, d) => a + d.signups, 0))} in the range`));
      replace(cards.plans.body, timeChart('Plans per day', plans.rows.map((d) => d.day), [
        { name: 'created', values: plans.rows.map((d) => d.created) },
        { name: 'changed', values: plans.rows.map((d) => d.changed) },
        { name: 'shared', values: plans.rows.map((d) => d.shared) },
        { name: 'scores read', values: plans.rows.map((d) => d.scores_read) },
      ]));
      const runs = scenarios.rows.filter((d) => d.mean_seconds != null);
      const mean = runs.length
        ? runs.reduce((a, d) => a + (d.mean_seconds ?? 0) * (d.done + d.failed), 0) / runs.reduce((a, d) => a + d.done + d.failed, 0)
        : null;
      replace(cards.scenarios.body, timeChart('Scenario runs per day', scenarios.rows.map((d) => d.day), [
        { name: 'done', values: scenarios.rows.map((d) => d.done) },
        { name: 'failed', values: scenarios.rows.map((d) => d.failed) },
        { name: 'exports', values: scenarios.rows.map((d) => d.exports) },
      ], true), h('p', { class: 'total' }, mean == null ? 'No runs in the range.' : `Mean run time ${mean.toFixed(1)} s`));
      replace(cards.conditions.body, barList('Most viewed condition layers', conditions.rows.slice(0, 10).map((c) => ({
        name: c.display_name, value: c.requests, note: `${c.region}${c.values === 'raw' ? ', raw values' : ''}`,
      }))));
      const byZoom = new Map<number, number>();
      const byLayer = new Map<string, number>();
      for (const t of tiles.rows) {
        byZoom.set(t.zoom, (byZoom.get(t.zoom) ?? 0) + t.requests);
        byLayer.set(t.layer, (byLayer.get(t.layer) ?? 0) + t.requests);
      }
      const zooms = [...byZoom.keys()].sort((a, b) => a - b);
      replace(cards.zooms.body, zooms.length
        ? columnChart('Tile requests by zoom', zooms.map(String), zooms.map((z) => byZoom.get(z) ?? 0))
        : h('p', { class: 'note' }, 'No tile requests in this range.'));
      replace(cards.layers.body, barList('Tile requests by layer',
        [...byLayer.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([name, value]) => ({ name, value }))));
      this.drawHeat(cards.heat.body, cells);
      replace(cards.latency.body, latencyTable(latency.rows));
    } catch (e) {
      if (seq !== this.seq) return;
      this.error.textContent = e instanceof ApiError ? e.describe() : String(e);
    }
  }

  private drawHeat(body: HTMLElement, cells: GeoJSON.FeatureCollection<GeoJSON.Polygon, { plans: number }>) {
    const mapEl = h('div', { class: 'heat-map', role: 'region', 'aria-label': 'Map of plans created per hexagon' });
    const max = Math.max(1, ...cells.features.map((f) => f.properties.plans));
    const total = cells.features.reduce((a, f) => a + f.properties.plans, 0);
    replace(body, mapEl, h('p', { class: 'total' },
      `${formatNumber(total)} plans in ${formatNumber(cells.features.length)} hexagons`));
    const map = L.map(mapEl, { zoomControl: true, scrollWheelZoom: false })
      .setView([37.2, -119.5], 5);
    map.attributionControl.setPrefix(false);
    this.heat = map;
    // The main map's first basemap, for a sense of place (offline, the hexagons stay on
    // the plain background).
    api.basemaps().then((list) => {
      const b = list[0];
      if (b && this.heat === map) {
        L.tileLayer(b.url, { attribution: b.attribution, maxZoom: b.max_zoom }).addTo(map).bringToBack();
      }
    }).catch(() => undefined);
    this.heatLayer = L.geoJSON(cells, {
      style: (f) => {
        const t = Math.sqrt((f?.properties?.plans ?? 0) / max);
        return { color: '#7a1f00', weight: 1, fillColor: heatColor(t), fillOpacity: 0.35 + 0.5 * t };
      },
      onEachFeature: (f, layer) => layer.bindTooltip(`${f.properties.plans} plan${f.properties.plans === 1 ? '' : 's'}`),
    }).addTo(map);
    // Without animation: a redraw (a new range) or closing the dashboard removes this map,
    // and a zoom animation still running then ends on a map without panes.
    if (cells.features.length) {
      map.fitBounds(this.heatLayer.getBounds(), { maxZoom: 8, padding: [10, 10], animate: false });
    }
    // The card is laid out now: Leaflet measures it, unless the map was removed meanwhile
    // (a removed map keeps `_loaded` but not its panes: invalidateSize would throw).
    requestAnimationFrame(() => {
      if (this.heat === map) map.invalidateSize();
    });
  }

  /** Takes the maps down (the dashboard is closed). */
  dispose(): void {
    this.heat?.remove();
    this.heat = null;
    this.seq += 1;
  }
}

/** Light yellow to dark red. */
function heatColor(t: number): string {
  const stops = [[255, 237, 160], [254, 178, 76], [240, 59, 32], [140, 0, 20]];
  const x = Math.min(0.999, Math.max(0, t)) * (stops.length - 1);
  const i = Math.floor(x);
  const f = x - i;
  const c = stops[i].map((v, k) => Math.round(v + (stops[i + 1][k] - v) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function latencyTable(rows: RouteLatency[]): HTMLElement {
  if (!rows.length) return h('p', { class: 'note' }, 'No requests yet.');
  const max = Math.max(1, ...rows.map((r) => r.p95_ms));
  return h('table', { class: 'latency-table' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'route'), h('th', { scope: 'col' }, 'requests'),
      h('th', { scope: 'col' }, 'p50 ms'), h('th', { scope: 'col' }, 'p95 ms'))),
    h('tbody', {}, ...rows.slice(0, 15).map((r) => h('tr', {},
      h('td', { class: 'route' }, r.route),
      h('td', {}, formatNumber(r.requests)),
      h('td', {}, r.p50_ms.toFixed(1)),
      h('td', {}, h('span', { class: 'bar-line small' },
        h('span', { class: 'bar-fill', style: `width:${((r.p95_ms / max) * 100).toFixed(1)}%` }),
        h('span', { class: 'bar-value' }, r.p95_ms.toFixed(1))))))));
}
