// The one client of the REST API (/planscape-backend/) and the tile catalog (/tiles),
// both on the app's own origin. Browsers authenticate with the session cookie; every
// change carries the anti-CSRF header the API requires of cookie-authenticated requests.

export const API = '/planscape-backend';
export const TILES = '/tiles';
const CSRF_HEADER = 'X-Planscape-CSRF';

/** An API error: the status, the error code and the request field it names. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    /** Seconds to wait (429 and 503 with `Retry-After`). */
    readonly retryAfter?: number,
  ) {
    super(message);
  }

  /** What to tell the user. */
  describe(): string {
    if (this.status === 429) {
      return `Too many attempts. Try again in ${waitText(this.retryAfter ?? 60)}.`;
    }
    if (this.status === 0) return 'The server cannot be reached. Check your connection and try again.';
    return this.message;
  }
}

export function waitText(seconds: number): string {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} seconds`;
  const minutes = Math.ceil(seconds / 60);
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}

// Busy state: how many requests are in flight (the top bar shows it).
let inFlight = 0;
export const activity = new EventTarget();
function setBusy(delta: number) {
  inFlight += delta;
  activity.dispatchEvent(new CustomEvent('busy', { detail: inFlight }));
}

async function request<T>(method: string, url: string, body?: unknown): Promise<T> {
  return send<T>(method, url, body === undefined ? undefined : JSON.stringify(body), 'application/json');
}

/** A multipart/form-data request: no Content-Type of ours, so that the browser sets it
 *  with the multipart boundary. */
function requestForm<T>(method: string, url: string, form: FormData): Promise<T> {
  return send<T>(method, url, form);
}

async function send<T>(method: string, url: string, body?: BodyInit, contentType?: string): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined && contentType) headers['Content-Type'] = contentType;
  if (method !== 'GET' && method !== 'HEAD') headers[CSRF_HEADER] = '1';
  setBusy(1);
  try {
    let response: Response;
    try {
      response = await fetch(url, { method, headers, credentials: 'same-origin', body });
    } catch {
      throw new ApiError(0, 'network', 'network error');
    }
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: handled below */
    }
    if (!response.ok) {
      const e = (json as { error?: { code?: string; message?: string; field?: string } } | undefined)?.error;
      const retry = Number(response.headers.get('Retry-After'));
      throw new ApiError(
        response.status,
        e?.code ?? 'http_' + response.status,
        e?.message ?? `${response.status} ${response.statusText}`,
        e?.field,
        Number.isFinite(retry) && retry > 0 ? retry : undefined,
      );
    }
    return json as T;
  } finally {
    setBusy(-1);
  }
}

// ---- types (as in the OpenAPI document) ----
export interface User { id: number; email: string; name: string; is_admin: boolean }
export interface Session { user: User; token: string; expires_in: number }
export type Role = 'viewer' | 'collaborator' | 'owner';
export interface Region { slug: string; name: string }
/** A raster layer's value at a point (`GET /tiles/{layer}/point`). */
export interface PointValue {
  layer: string; lon: number; lat: number; value: number; units?: string | null; label?: string | null;
  band?: string | null; condition?: { region: string; name: string; display_name: string; values: 'normalized' | 'raw' } | null;
}
/** A basemap of the configuration (`GET /basemaps`). */
export interface BasemapInfo { id: string; name: string; url: string; attribution: string; max_zoom: number }
export interface Plan {
  id: number; name: string; region: string; area_acres: number; role: Role;
  owner_id: number; owner_name: string; created_at: string; updated_at: string;
  geometry?: GeoJSON.MultiPolygon | null;
}
/** A plan's member (`active`) or, for owners, an invitation not yet answered (`pending`:
 *  no user id or name until it is accepted). */
export interface Member {
  user_id: number | null; email: string; name: string | null; role: Role;
  status: 'active' | 'pending'; invitation_id?: number;
}
/** An invitation as sent (the same whether or not the email has an account). */
export interface SentInvitation { id: number; plan_id: number; email: string; role: Role; status: 'pending'; created_at: string }
/** An invitation waiting for the signed-in user's answer. */
export interface ReceivedInvitation {
  id: number; plan_id: number; plan_name: string; region: string; inviter_name: string; role: Role; created_at: string;
}
export interface ConditionStats {
  condition: string; level: string; count: number; nodata: number; sum: number;
  min?: number | null; max?: number | null; mean?: number | null; band?: string | null;
}
export interface Scores { plan_id: number; region: string; computed_at: string; scores: ConditionStats[] }
export interface MetricInfo {
  name: string; display_name: string; data_units?: string | null; min_value: number; max_value: number;
  invert_raw?: boolean; source?: string | null; source_link?: string | null; data_provider?: string | null;
  data_year?: string | null; reference_link?: string | null; layer?: string | null; raw_layer?: string | null;
}
export interface ElementInfo { name: string; display_name: string; operation?: string; layer?: string | null; metrics: MetricInfo[] }
export interface PillarInfo { name: string; display_name: string; operation?: string; display?: boolean; layer?: string | null; elements: ElementInfo[] }
export interface RegionTree { name: string; display_name: string; pillars: PillarInfo[] }
export interface CatalogLayer { name: string; type?: string; kind?: string; description?: string; [k: string]: unknown }
export interface TileJson {
  tilejson: string; name?: string; description?: string; tiles: string[]; minzoom: number; maxzoom: number;
  bounds?: [number, number, number, number]; center?: [number, number, number];
  vector_layers?: { id: string; fields?: Record<string, string> }[]; attribution?: string;
}
export interface LegendEntry { color: string; value?: number | null; label?: string | null; units?: string | null }
export interface Priority { condition: string; weight: number }
export interface ScenarioConfig {
  name: string; priorities: Priority[]; stand_size_acres: number; max_treatment_share: number;
  max_project_areas: number; exclude?: GeoJSON.Polygon | GeoJSON.MultiPolygon | null;
}
export type ScenarioStatus = 'pending' | 'running' | 'done' | 'failed';
export interface ScenarioSummary {
  stands?: number; scored_stands?: number; budget_acres?: number; treated_acres?: number;
  project_areas?: number; seconds?: number; compute_seconds?: number;
}
export interface ProjectAreaProps { rank: number; score: number; area_acres: number; stand_count: number }
export type ProjectAreas = GeoJSON.FeatureCollection<GeoJSON.MultiPolygon | GeoJSON.Polygon, ProjectAreaProps>;
export interface Scenario {
  id: number; plan_id: number; name: string; status: ScenarioStatus; reason?: string | null;
  config: Partial<ScenarioConfig>; summary?: ScenarioSummary | null; created_at: string;
  finished_at?: string | null; project_areas?: ProjectAreas | null;
}
export type ExportFormat = 'geojson' | 'shapefile' | 'csv';
/** An analytics report (`GET /admin/analytics/...`): a date range and its rows. */
export interface Report<T> { from: string; to: string; rows: T[] }
export interface ActivityDay { day: string; active_users: number; visitors: number; page_views: number; signins: number }
export interface SignupDay { day: string; signups: number }
export interface PlanDay { day: string; created: number; changed: number; shared: number; scores_read: number }
export interface ScenarioDay { day: string; done: number; failed: number; mean_seconds?: number | null; exports: number }
export interface ConditionViews { layer: string; region: string; condition: string; display_name: string; values: string; requests: number }
export interface TileRequests { layer: string; zoom: number; requests: number }
export interface RouteLatency { route: string; requests: number; p50_ms: number; p95_ms: number }
export type Page = 'app' | 'plan' | 'scenario' | 'dashboard';
export interface DayRange { from: string; to: string }

/** Whether the browser asks not to be tracked (Do-Not-Track, Global Privacy Control). */
export function optedOut(): boolean {
  const nav = navigator as Navigator & { globalPrivacyControl?: boolean };
  return nav.doNotTrack === '1' || nav.globalPrivacyControl === true;
}
export interface Legend { layer: string; style?: string; type: 'ramp' | 'classes'; units?: string | null; entries: LegendEntry[] }

const json = <T>(url: string) => request<T>('GET', url);
const tileJsonCache = new Map<string, Promise<TileJson>>();

export const api = {
  signup: (email: string, password: string, name: string) =>
    request<Session>('POST', `${API}/auth/signup`, { email, password, name }),
  login: (email: string, password: string) => request<Session>('POST', `${API}/auth/login`, { email, password }),
  logout: () => request<void>('POST', `${API}/auth/logout`),
  me: () => json<User>(`${API}/auth/me`),
  changePassword: (current_password: string, new_password: string) =>
    request<Session>('POST', `${API}/auth/password`, { current_password, new_password }),
  /** Asks for a reset link by mail; the answer is the same whether or not the account exists. */
  requestReset: (email: string) => request<{ message: string }>('POST', `${API}/auth/reset/request`, { email }),
  /** Sets a new password with a reset link's token (does not sign in). */
  resetPassword: (token: string, new_password: string) =>
    request<{ email: string }>('POST', `${API}/auth/reset`, { token, new_password }),
  deleteAccount: (password: string) => request<void>('DELETE', `${API}/auth/account`, { password }),

  regions: () => json<Region[]>(`${API}/regions`),
  conditions: () => json<{ regions: RegionTree[] }>(`${API}/conditions`),

  plans: () => json<Plan[]>(`${API}/plans`),
  plan: (id: number) => json<Plan>(`${API}/plans/${id}`),
  createPlan: (name: string, region: string, geometry: GeoJSON.Geometry) =>
    request<Plan>('POST', `${API}/plans`, { name, region, geometry }),
  /** A plan from a file: GeoJSON or a zipped Shapefile (`POST /plans/upload`). */
  uploadPlan: (name: string, region: string, file: File) => {
    const form = new FormData();
    form.append('name', name);
    form.append('region', region);
    form.append('file', file, file.name);
    return requestForm<Plan>('POST', `${API}/plans/upload`, form);
  },
  renamePlan: (id: number, name: string) => request<Plan>('PATCH', `${API}/plans/${id}`, { name }),
  redrawPlan: (id: number, geometry: GeoJSON.Geometry) =>
    request<Plan>('PATCH', `${API}/plans/${id}`, { geometry }),
  deletePlan: (id: number) => request<void>('DELETE', `${API}/plans/${id}`),
  scores: (id: number) => json<Scores>(`${API}/plans/${id}/scores`),
  members: (id: number) => json<Member[]>(`${API}/plans/${id}/members`),
  invite: (id: number, email: string, role: Role) =>
    request<SentInvitation>('POST', `${API}/plans/${id}/members`, { email, role }),
  revokeInvitation: (id: number, invitationId: number) =>
    request<void>('DELETE', `${API}/plans/${id}/invitations/${invitationId}`),
  invitations: () => json<ReceivedInvitation[]>(`${API}/invitations`),
  acceptInvitation: (id: number) => request<Plan>('POST', `${API}/invitations/${id}/accept`),
  declineInvitation: (id: number) => request<void>('POST', `${API}/invitations/${id}/decline`),
  changeRole: (id: number, userId: number, role: Role) =>
    request<void>('PATCH', `${API}/plans/${id}/members/${userId}`, { role }),
  removeMember: (id: number, userId: number) => request<void>('DELETE', `${API}/plans/${id}/members/${userId}`),

  basemaps: () => json<BasemapInfo[]>(`${API}/basemaps`),
  scenarios: (planId: number) => json<Scenario[]>(`${API}/plans/${planId}/scenarios`),
  scenario: (sid: number) => json<Scenario>(`${API}/scenarios/${sid}`),
  createScenario: (planId: number, config: ScenarioConfig) =>
    request<Scenario>('POST', `${API}/plans/${planId}/scenarios`, config),
  deleteScenario: (sid: number) => request<void>('DELETE', `${API}/scenarios/${sid}`),
  /** A done scenario's download (`GET /scenarios/{sid}/export?format=`). */
  exportUrl: (sid: number, format: ExportFormat) => `${API}/scenarios/${sid}/export?format=${format}`,
  /** The scenario's project areas as a private vector tile layer. */
  projectAreaTiles: (sid: number) => `${TILES}/scenarios/${sid}/project_areas/{z}/{x}/{y}.mvt`,

  /** The URL of an analytics report (administrators only). */
  analyticsUrl: (chart: string, range: DayRange | null, format: 'json' | 'csv' = 'json') => {
    const q = new URLSearchParams();
    if (range) { q.set('from', range.from); q.set('to', range.to); }
    if (format === 'csv') q.set('format', 'csv');
    const s = q.toString();
    return `${API}/admin/analytics/${chart}${s ? `?${s}` : ''}`;
  },
  analytics: <T>(chart: string, range: DayRange | null) => json<T>(api.analyticsUrl(chart, range)),
  /** Counts a page view (never under Do-Not-Track / GPC; never in the way: errors are ignored). */
  pageView: (page: Page) => {
    if (optedOut()) return;
    void fetch(`${API}/analytics/pageview`, {
      method: 'POST', keepalive: true, credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', [CSRF_HEADER]: '1' },
      body: JSON.stringify({ page }),
    }).catch(() => undefined);
  },

  catalog: () => json<unknown>(`${TILES}`),
  tileJson: (layer: string) => {
    let p = tileJsonCache.get(layer);
    if (!p) {
      p = json<TileJson>(`${TILES}/${encodeURIComponent(layer)}`);
      p.catch(() => tileJsonCache.delete(layer));
      tileJsonCache.set(layer, p);
    }
    return p;
  },
  legend: (layer: string) => json<Legend>(`${TILES}/${encodeURIComponent(layer)}/legend`),
  point: (layer: string, lon: number, lat: number) =>
    json<PointValue>(`${TILES}/${encodeURIComponent(layer)}/point?lon=${lon.toFixed(6)}&lat=${lat.toFixed(6)}`),
};
