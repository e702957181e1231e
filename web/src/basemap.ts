// The basemap switch: OpenStreetMap by default, or a plain background. When basemap tiles
// cannot be loaded (offline, blocked), the map falls back to the plain background and says
// so: everything else on the map comes from this server and keeps working.
import L from 'leaflet';
import { h, replace } from './dom';
import type { UrlState } from './url-state';

export interface Basemap {
  id: string;
  name: string;
  /** URL template; none for the plain background. */
  url?: string;
  attribution?: string;
  maxZoom?: number;
}

/** The basemaps offered. A provider needing a key (e.g. Stadia) adds `?api_key=...` to `url`. */
export const BASEMAPS: Basemap[] = [
  {
    id: 'osm',
    name: 'OpenStreetMap',
    url: 'https://tile.openstreetmap.org/{z}/{x}/{y}.png',
    attribution: '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
    maxZoom: 19,
  },
  { id: 'plain', name: 'Plain background' },
];

export class BasemapSwitch {
  private layer: L.TileLayer | null = null;
  private current = '';
  private note = h('p', { class: 'note', role: 'status' });
  private fieldset: HTMLFieldSetElement;

  constructor(private map: L.Map, container: HTMLElement, private url: UrlState) {
    this.fieldset = h('fieldset', {}, h('legend', {}, 'Basemap'));
    for (const b of BASEMAPS) {
      const id = `basemap-${b.id}`;
      this.fieldset.append(h('div', { class: 'radio' },
        h('input', {
          type: 'radio', name: 'basemap', id, value: b.id,
          onchange: () => { this.show(b.id); this.url.update({ basemap: b.id === BASEMAPS[0].id ? undefined : b.id }); },
        }),
        h('label', { for: id }, b.name)));
    }
    container.append(this.fieldset, this.note);
  }

  /** Shows the basemap of the URL state (the default when unknown). */
  apply(): void {
    const id = this.url.state.basemap ?? BASEMAPS[0].id;
    this.show(BASEMAPS.some((b) => b.id === id) ? id : BASEMAPS[0].id);
  }

  private show(id: string) {
    if (id === this.current) return;
    this.current = id;
    const input = this.fieldset.querySelector<HTMLInputElement>(`input[value="${id}"]`);
    if (input) input.checked = true;
    replace(this.note);
    if (this.layer) {
      this.layer.remove();
      this.layer = null;
    }
    const b = BASEMAPS.find((x) => x.id === id);
    if (!b?.url) return;
    const layer = L.tileLayer(b.url, { attribution: b.attribution, maxZoom: b.maxZoom ?? 19 });
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
