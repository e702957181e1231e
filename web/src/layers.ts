// Boundary layers: every vector layer of the tile catalog (`GET /tiles`) as a Leaflet
// vector-tile layer (Leaflet.VectorGrid), with a hover highlight and a click popup
// listing the feature's properties. The region outline (`regions`) is on by default.
import L from 'leaflet';
import 'leaflet.vectorgrid';
import { api, type TileJson } from './api';
import { h, replace } from './dom';
import type { UrlState } from './url-state';

export const DEFAULT_LAYERS = ['regions'];
export const BOUNDARY_PANE = 'boundaries';

interface Boundary { id: string; tj: TileJson; layer?: L.Layer; input: HTMLInputElement }

const STYLE: L.PathOptions = { color: '#2f5d8a', weight: 0.8, fill: true, fillColor: '#2f5d8a', fillOpacity: 0.06 };
const OUTLINE: L.PathOptions = { color: '#1b1b1b', weight: 2.5, fill: true, fillColor: '#000', fillOpacity: 0.01 };
const HOVER: L.PathOptions = { color: '#e0661b', weight: 3, fill: true, fillColor: '#e0661b', fillOpacity: 0.2 };

/** Tile failures of server layers (not the basemap): the tests expect none. */
export const tileErrors: string[] = [];

export class BoundaryLayers {
  private layers: Boundary[] = [];
  private list = h('div', { class: 'checks' });
  private error = h('p', { class: 'form-error', role: 'alert' });

  constructor(private map: L.Map, container: HTMLElement, private url: UrlState) {
    map.createPane(BOUNDARY_PANE).style.zIndex = '420';
    container.append(h('fieldset', {}, h('legend', {}, 'Boundaries'), this.list, this.error));
  }

  async start(): Promise<void> {
    try {
      const catalog = (await api.catalog()) as { layers: { id: string; type?: string; error?: unknown }[] };
      const vector = catalog.layers.filter((l) => l.type === 'vector' && !l.error);
      const docs = await Promise.all(vector.map((l) => api.tileJson(l.id)));
      this.layers = vector.map((l, i) => {
        const tj = docs[i];
        const id = `boundary-${l.id}`;
        const input = h('input', {
          type: 'checkbox', id, value: l.id,
          onchange: () => { this.sync(); this.url.update({ layers: this.shown() }); },
        });
        this.list.append(h('div', { class: 'check' }, input,
          h('label', { for: id, title: tj.description ?? '' }, label(l.id, tj))));
        return { id: l.id, tj, input };
      });
      if (!this.layers.length) replace(this.list, h('p', {}, 'No boundary layers are served.'));
    } catch (e) {
      this.error.textContent = `The layer catalog could not be read: ${String((e as Error).message ?? e)}`;
    }
    this.apply();
  }

  /** Shows the layers of the URL state. */
  apply(): void {
    const wanted = this.url.state.layers ?? DEFAULT_LAYERS;
    for (const b of this.layers) b.input.checked = wanted.includes(b.id);
    this.sync();
  }

  private shown(): string[] {
    return this.layers.filter((b) => b.input.checked).map((b) => b.id);
  }

  private sync() {
    for (const b of this.layers) {
      if (b.input.checked && !b.layer) b.layer = this.create(b).addTo(this.map);
      if (!b.input.checked && b.layer) {
        b.layer.remove();
        b.layer = undefined;
      }
    }
  }

  private create(b: Boundary): L.Layer {
    const style = b.id === 'regions' ? OUTLINE : STYLE;
    const styles: Record<string, L.PathOptions> = {};
    for (const v of b.tj.vector_layers ?? [{ id: b.id }]) styles[v.id] = style;
    const layer = L.vectorGrid.protobuf(b.tj.tiles[0], {
      pane: BOUNDARY_PANE,
      // SVG tiles: features are DOM targets, so clicks between them still reach the map.
      rendererFactory: L.svg.tile,
      vectorTileLayerStyles: styles,
      interactive: true,
      getFeatureId: tagFeatureId,
      minZoom: b.tj.minzoom,
      maxNativeZoom: b.tj.maxzoom,
      maxZoom: 22,
      attribution: b.tj.attribution,
    });
    let hovered: number | undefined;
    layer.on('mouseover', (e: L.LeafletEvent) => {
      const fid = featureId((e as unknown as { layer: { properties?: object } }).layer.properties);
      if (fid === undefined) return;
      if (hovered !== undefined && hovered !== fid) layer.resetFeatureStyle(hovered);
      hovered = fid;
      layer.setFeatureStyle(fid, HOVER);
    });
    layer.on('mouseout', () => {
      if (hovered !== undefined) layer.resetFeatureStyle(hovered);
      hovered = undefined;
    });
    layer.on('click', (e: L.LeafletMouseEvent) => {
      const props = ((e as unknown as { layer: { properties?: Record<string, unknown> } }).layer.properties) ?? {};
      L.popup({ maxWidth: 280 }).setLatLng(e.latlng).setContent(popup(label(b.id, b.tj), props)).openOn(this.map);
    });
    layer.on('tileerror', (e: { coords?: L.Coords }) => {
      tileErrors.push(`${b.id} ${e.coords ? `${e.coords.z}/${e.coords.x}/${e.coords.y}` : ''}`);
    });
    return layer;
  }
}

// VectorGrid asks each MVT feature for its id, but its symbolizers (the event targets)
// keep only the properties: the id goes along with them, hidden from the popup.
const FID = Symbol('feature id');
function tagFeatureId(f: { id?: number; properties: object }): number | undefined {
  Object.defineProperty(f.properties, FID, { value: f.id, enumerable: false, configurable: true });
  return f.id;
}

function featureId(properties: object | undefined): number | undefined {
  return properties ? (properties as Record<symbol, number | undefined>)[FID] : undefined;
}

function label(id: string, tj: TileJson): string {
  const text = id.replace(/_/g, ' ');
  return tj.name && tj.name !== id ? tj.name : text.charAt(0).toUpperCase() + text.slice(1);
}

function popup(title: string, props: Record<string, unknown>): HTMLElement {
  const rows = Object.entries(props).map(([k, v]) =>
    h('tr', {}, h('th', { scope: 'row' }, k.replace(/_/g, ' ')), h('td', {}, formatValue(v))));
  return h('div', { class: 'feature-popup' }, h('strong', {}, title), h('table', {}, h('tbody', {}, ...rows)));
}

function formatValue(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toFixed(3);
  return String(v);
}
