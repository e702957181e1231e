// The app's state lives in the URL query, so that every view is a permalink:
//   ?map=ZOOM/LAT/LNG&layers=regions,watersheds&condition=REGION/NODE&raw=1&opacity=0.7
//    &basemap=plain&plan=ID&scenario=ID&dashboard=1
// Panels read it on start and on back/forward (`change` events), and write it with
// `update`: a new history entry for what a user chose, a replaced one for map moves.

export interface View { zoom: number; lat: number; lng: number }
export interface AppState {
  view?: View;
  /** Boundary (vector) layers shown; undefined: the default set. */
  layers?: string[];
  /** Condition node shown, as `region/name`. */
  condition?: string;
  raw: boolean;
  opacity: number;
  basemap?: string;
  plan?: number;
  /** Scenario shown on the plan page (meaningful with `plan`). */
  scenario?: number;
  /** The analytics dashboard is open (administrators). */
  dashboard?: boolean;
}

export function parse(search: string): AppState {
  const q = new URLSearchParams(search);
  const state: AppState = { raw: q.get('raw') === '1', opacity: 0.75 };
  const m = (q.get('map') ?? '').split('/').map(Number);
  if (m.length === 3 && m.every(Number.isFinite) && Math.abs(m[1]) <= 90 && Math.abs(m[2]) <= 180) {
    state.view = { zoom: m[0], lat: m[1], lng: m[2] };
  }
  if (q.has('layers')) state.layers = (q.get('layers') ?? '').split(',').filter(Boolean);
  const condition = q.get('condition');
  if (condition && condition.includes('/')) state.condition = condition;
  const opacity = Number(q.get('opacity'));
  if (q.has('opacity') && opacity >= 0 && opacity <= 1) state.opacity = opacity;
  const basemap = q.get('basemap');
  if (basemap) state.basemap = basemap;
  const plan = Number(q.get('plan'));
  if (Number.isInteger(plan) && plan > 0) state.plan = plan;
  const scenario = Number(q.get('scenario'));
  if (state.plan && Number.isInteger(scenario) && scenario > 0) state.scenario = scenario;
  if (q.get('dashboard') === '1') state.dashboard = true;
  return state;
}

export function serialize(state: AppState): string {
  const q = new URLSearchParams();
  if (state.view) {
    const { zoom, lat, lng } = state.view;
    // 5 decimals: about a metre.
    q.set('map', `${zoom}/${lat.toFixed(5)}/${lng.toFixed(5)}`);
  }
  if (state.layers) q.set('layers', state.layers.join(','));
  if (state.condition) q.set('condition', state.condition);
  if (state.raw) q.set('raw', '1');
  if (state.opacity !== 0.75) q.set('opacity', String(state.opacity));
  if (state.basemap) q.set('basemap', state.basemap);
  if (state.plan) q.set('plan', String(state.plan));
  if (state.plan && state.scenario) q.set('scenario', String(state.scenario));
  if (state.dashboard) q.set('dashboard', '1');
  const s = q.toString().replace(/%2F/g, '/').replace(/%2C/g, ',');
  return s ? `?${s}` : '';
}

export class UrlState extends EventTarget {
  state: AppState;

  constructor() {
    super();
    this.state = parse(location.search);
    window.addEventListener('popstate', () => {
      this.state = parse(location.search);
      this.dispatchEvent(new Event('change'));
    });
  }

  /** Merges `patch` into the state and writes the URL (`push`: a new history entry). */
  update(patch: Partial<AppState>, push = true): void {
    this.state = { ...this.state, ...patch };
    const url = `${location.pathname}${serialize(this.state)}${location.hash}`;
    if (url === `${location.pathname}${location.search}${location.hash}`) return;
    if (push) history.pushState(null, '', url);
    else history.replaceState(null, '', url);
  }

  /** A permalink to the current view with `patch` applied. */
  link(patch: Partial<AppState>): string {
    return `${location.pathname}${serialize({ ...this.state, ...patch })}`;
  }
}
