// The basemap switch: the configured basemaps (`GET /planscape-backend/basemaps`,
// OpenStreetMap by default) and a plain background. When basemap tiles cannot be loaded
// (offline, blocked), the map falls back to the plain background and says so: everything
// else on the map comes from this server and keeps working.
import L from 'leaflet';
import { api, type BasemapInfo } from './api';
import { h, replace } from './dom';
import type { UrlState } from './url-state';

/** The app's own background: no tiles, no network. */
const PLAIN = 'plain';

/** Used when the server's list cannot be read. */
const FALLBACK: BasemapInfo[] = [
  {
    id: 'osm',
    name: 'OpenStreetMap',
    url: 'https://tile.openstreetmap.org/{z}/{x}/{y}.png',
    attribution: '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
    max_zoom: 19,
  },
];

export class BasemapSwitch {
  private basemaps: BasemapInfo[] = [];
  private layer: L.TileLayer | null = null;
  private current = '';
  private note = h('p', { class: 'note', role: 'status' });
  private fieldset: HTMLFieldSetElement;

  constructor(private map: L.Map, container: HTMLElement, private url: UrlState) {
    this.fieldset = h('fieldset', {}, h('legend', {}, 'Basemap'));
    container.append(this.fieldset, this.note);
  }

  /** Reads the configured basemaps and builds the switch. */
  async start(): Promise<void> {
    try {
      this.basemaps = await api.basemaps();
    } catch {
      this.basemaps = FALLBACK;
    }
    const choices = [...this.basemaps.map((b) => ({ id: b.id, name: b.name })), { id: PLAIN, name: 'Plain background' }];
    for (const b of choices) {
      const id = `basemap-${b.id}`;
      this.fieldset.append(h('div', { class: 'radio' },
        h('input', {
          type: 'radio', name: 'basemap', id, value: b.id,
          onchange: () => { this.show(b.id); this.url.update({ basemap: b.id === this.defaultId() ? undefined : b.id }); },
        }),
        h('label', { for: id }, b.name)));
    }
    this.apply();
  }

  private defaultId(): string {
    return this.basemaps[0]?.id ?? PLAIN;
  }

  /** Shows the basemap of the URL state (the default when unknown). */
  apply(): void {
    if (!this.fieldset.querySelector('input')) return; // not started yet
    const id = this.url.state.basemap ?? this.defaultId();
    const known = id === PLAIN || this.basemaps.some((b) => b.id === id);
    this.show(known ? id : this.defaultId());
  }

  private show(id: string) {
    if (id === this.current) return;
    this.current = id;
    const input = this.fieldset.querySelector<HTMLInputElement>(`input[value="${CSS.escape(id)}"]`);
    if (input) input.checked = true;
    replace(this.note);
    if (this.layer) {
      this.layer.remove();
      this.layer = null;
    }
    const b = this.basemaps.find((x) => x.id === id);
    if (!b) return;
    const layer = L.tileLayer(b.url, { attribution: b.attribution, maxZoom: 18, maxNativeZoom: b.max_zoom });
    let loaded = 0;
    layer.on('tileload', () => { loaded += 1; });
    layer.on('tileerror', () => {
      // Nothing loaded and tiles fail: offline or blocked. Fall back to the plain background.
      if (loaded === 0 && this.layer === layer) {
        layer.remove();
        this.layer = null;
        this.note.textContent = `${b.name} tiles cannot be loaded (offline?): showing a plain background.`;
      }
    });
    this.layer = layer.addTo(this.map);
    this.layer.bringToBack();
  }
}
