// The planner's web app: a Leaflet map and its panels (account, plans, map layers,
// conditions), all state in the URL. Served on the same origin as the API and tiles.
import 'leaflet/dist/leaflet.css';
// Leaflet-Geoman's CSS comes with the first load (esbuild does not load a lazy chunk's CSS).
import '@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.css';
import './styles.css';
import L from 'leaflet';
import { activity, api, type User } from './api';
import { AuthPanel } from './auth';
import { BasemapSwitch } from './basemap';
import { ConditionsPanel } from './conditions';
import { BoundaryLayers, tileErrors } from './layers';
import { PlansPanel } from './plans';
import { UrlState, type View } from './url-state';

const DEFAULT_VIEW: View = { zoom: 7, lat: 37.8, lng: -119.6 }; // the Sierra Nevada

const $ = (sel: string) => document.querySelector(sel) as HTMLElement;
const body = (id: string) => $(`#${id} > .body`);

const url = new UrlState();
const view = url.state.view ?? DEFAULT_VIEW;
const map = L.map('map', { zoomControl: true, keyboard: true, minZoom: 3, maxZoom: 18 })
  .setView([view.lat, view.lng], view.zoom);

// Busy state: requests in flight.
const busy = $('#busy');
let busyTimer = 0;
activity.addEventListener('busy', (e) => {
  const n = (e as CustomEvent<number>).detail;
  clearTimeout(busyTimer);
  document.body.toggleAttribute('aria-busy', n > 0);
  // Shown after 150 ms, so quick answers do not flash it.
  if (n > 0) busyTimer = window.setTimeout(() => { busy.textContent = 'Working…'; busy.classList.add('on'); }, 150);
  else { busy.textContent = ''; busy.classList.remove('on'); }
});

const basemap = new BasemapSwitch(map, body('layers-panel'), url);
const boundaries = new BoundaryLayers(map, body('layers-panel'), url);
const conditions = new ConditionsPanel(map, body('conditions-panel'), url);
const auth = new AuthPanel(body('auth-panel'), $('#whoami'));
const plans = new PlansPanel(map, body('plans-panel'), url, conditions);

// Map moves replace the current history entry (back/forward step through choices).
map.on('moveend', () => {
  const c = map.getCenter();
  url.update({ view: { zoom: map.getZoom(), lat: c.lat, lng: c.lng } }, false);
});

// Back and forward: every panel re-reads the URL.
url.addEventListener('change', () => {
  const v = url.state.view ?? DEFAULT_VIEW;
  const c = map.getCenter();
  if (v.zoom !== map.getZoom() || Math.abs(v.lat - c.lat) > 1e-5 || Math.abs(v.lng - c.lng) > 1e-5) {
    map.setView([v.lat, v.lng], v.zoom, { animate: false });
  }
  basemap.apply();
  boundaries.apply();
  conditions.apply();
  void plans.apply();
});

// The analytics dashboard: administrators only (the server refuses everyone else),
// loaded on first use, over the map and panels while `?dashboard=1`.
const dashboardLink = $('#dashboard-link') as HTMLAnchorElement;
let user: User | null = null;
let dashboard: { root: HTMLElement; dispose(): void } | null = null;
let opening = 0;
async function applyDashboard() {
  const wanted = Boolean(url.state.dashboard && user?.is_admin);
  dashboardLink.hidden = !user?.is_admin;
  if (wanted && !dashboard) {
    const seq = ++opening;
    const { Dashboard } = await import('./dashboard');
    if (seq !== opening || dashboard) return;
    const d = new Dashboard(() => {
      url.update({ dashboard: undefined });
      void applyDashboard();
    });
    dashboard = d;
    document.body.append(d.root);
    document.body.classList.add('dashboard-open');
    api.pageView('dashboard');
    await d.load();
  } else if (!wanted && dashboard) {
    opening += 1;
    dashboard.dispose();
    dashboard.root.remove();
    dashboard = null;
    document.body.classList.remove('dashboard-open');
    map.invalidateSize();
  }
}
dashboardLink.addEventListener('click', (e) => {
  e.preventDefault();
  url.update({ dashboard: true });
  void applyDashboard();
});
// Back and forward open and close it too.
url.addEventListener('change', () => void applyDashboard());

auth.addEventListener('user', (e) => {
  user = (e as CustomEvent<User | null>).detail;
  void plans.setUser(user);
  void applyDashboard();
});

async function start() {
  await Promise.all([basemap.start(), boundaries.start(), conditions.start()]);
  await auth.start();
  document.body.dataset.ready = 'true';
  api.pageView(url.state.plan ? 'plan' : 'app');
}
void start();

// For the end-to-end tests and for debugging: the map and the layer tile failures.
Object.assign(window, { planscape: { map, tileErrors } });
