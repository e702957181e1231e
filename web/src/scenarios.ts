// The scenarios of a plan, on its page: the list with each run's status; a form for a new
// one (weighted priorities from the conditions tree, stand size, treatment share, number
// of project areas, areas to leave out drawn on the map); the selected scenario (in the
// URL) polled while it runs, then its ranked project areas as a private vector tile layer
// coloured by rank, with a table whose rows highlight them; comparing two scenarios;
// downloads; deleting. Controls show only what the role allows (the server enforces it).
import L from 'leaflet';
import 'leaflet.vectorgrid';
import {
  ApiError, api, type ExportFormat, type Plan, type ProjectAreaProps, type Scenario, type ScenarioConfig,
} from './api';
import type { ConditionNode, ConditionsPanel } from './conditions';
import { formatAcres, h, replace, uid } from './dom';
import { field } from './form';
import { tileErrors } from './layers';
import { RANK_RAMP, formatShare, parseShare, priorityField, rankColor } from './ranks';
import type { UrlState } from './url-state';

export const SCENARIO_PANE = 'scenarios';
const POLL_MS = 1000;
const STAND_SIZES = [10, 100, 500];
const EXPORTS: [ExportFormat, string][] = [['geojson', 'GeoJSON'], ['shapefile', 'Shapefile'], ['csv', 'CSV']];
const STATUS_TEXT: Record<string, string> = {
  pending: 'Waiting to start', running: 'Running', done: 'Done', failed: 'Failed',
};
const SELECTED: L.PathOptions = { color: '#0b3d91', weight: 4, fill: true, fillOpacity: 0.85 };
const EXCLUDED: L.PathOptions = { color: '#333', weight: 2, dashArray: '5 4', fillColor: '#777', fillOpacity: 0.35 };

type Area = GeoJSON.Feature<GeoJSON.Geometry, ProjectAreaProps>;

export class ScenariosPanel {
  readonly element = h('section', { class: 'scenarios', 'aria-label': 'Scenarios' });
  private list = h('ul', { class: 'scenario-list', 'aria-label': 'Scenarios of this plan' });
  private actions = h('div', { class: 'actions' });
  private formBox = h('div', { class: 'scenario-form' });
  private detail = h('section', { class: 'scenario-detail', 'aria-label': 'Selected scenario' });
  private message = h('p', { class: 'form-error', role: 'alert' });
  private scenarios: Scenario[] = [];
  private shown: number | undefined = undefined;
  private current: Scenario | null = null;
  private seq = 0;
  private timer = 0;
  private disposed = false;
  private layer: L.VectorGrid | null = null;
  private excluded: L.GeoJSON | null = null;
  private selectedArea: number | undefined;
  private rows = new Map<number, { tr: HTMLTableRowElement; button: HTMLButtonElement }>();
  private compareWith: number | undefined;
  private drafts: L.Layer[] = [];
  private form: ScenarioForm | null = null;
  private statusLine = h('p');
  private focusTitle = false;

  constructor(
    private map: L.Map,
    private plan: Plan,
    private url: UrlState,
    private conditions: ConditionsPanel,
  ) {
    if (!map.getPane(SCENARIO_PANE)) map.createPane(SCENARIO_PANE).style.zIndex = '460';
    const canAdd = plan.role !== 'viewer';
    if (canAdd) replace(this.actions, h('button', { type: 'button', 'aria-expanded': 'false', onclick: () => this.openForm() }, 'New scenario'));
    else replace(this.actions, h('p', { class: 'note' }, 'Viewers see the scenarios; collaborators and owners run them.'));
    replace(this.element, h('h3', {}, 'Scenarios'), this.message, this.list, this.actions, this.formBox, this.detail);
  }

  /** Reads the plan's scenarios, then shows the one of the URL state. */
  async load(): Promise<void> {
    replace(this.list, h('li', { class: 'loading' }, 'Loading the scenarios…'));
    try {
      const scenarios = await api.scenarios(this.plan.id);
      if (this.disposed) return;
      this.scenarios = scenarios;
    } catch (e) {
      if (this.disposed) return;
      this.message.textContent = describe(e);
    }
    this.apply();
  }

  /** Shows the scenario of the URL state (back/forward, links). */
  apply(): void {
    if (this.disposed) return;
    this.renderList();
    const sid = this.url.state.scenario;
    if (sid === this.shown) return;
    void this.show(sid);
  }

  /** Stops polling and takes the scenario's layers off the map (the plan page is left). */
  dispose(): void {
    this.disposed = true;
    this.seq += 1;
    clearTimeout(this.timer);
    this.clearMap();
    this.form?.stop();
    this.form = null;
    this.clearDrafts();
  }

  // ---- the list ----

  private renderList() {
    if (!this.scenarios.length) {
      replace(this.list, h('li', { class: 'empty' }, 'No scenarios yet.'));
      return;
    }
    replace(this.list, ...this.scenarios.map((s) => {
      const selected = this.url.state.scenario === s.id;
      const a = h('a', {
        href: this.url.link({ scenario: s.id }), 'aria-current': selected ? 'true' : undefined,
        onclick: (ev: MouseEvent) => {
          if (ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
          ev.preventDefault();
          this.url.update({ scenario: s.id });
          this.apply();
        },
      }, s.name);
      const n = s.summary?.project_areas;
      return h('li', { class: selected ? 'selected' : '', 'data-scenario': s.id, 'data-status': s.status }, a,
        statusBadge(s.status),
        s.status === 'done' && n !== undefined ? h('span', { class: 'acres' }, `${n} project area${n === 1 ? '' : 's'}`) : null);
    }));
  }

  private remember(s: Scenario) {
    const { project_areas: _, ...brief } = s;
    const i = this.scenarios.findIndex((x) => x.id === s.id);
    if (i >= 0) this.scenarios[i] = brief;
    else this.scenarios.unshift(brief);
    this.renderList();
  }

  // ---- the selected scenario ----

  private async show(sid: number | undefined) {
    const seq = ++this.seq;
    this.shown = sid;
    this.current = null;
    clearTimeout(this.timer);
    this.clearMap();
    delete this.detail.dataset.status;
    delete this.detail.dataset.tiles;
    if (!sid) {
      replace(this.detail);
      return;
    }
    replace(this.detail, h('p', { class: 'loading' }, 'Loading the scenario…'));
    try {
      const s = await api.scenario(sid);
      if (seq !== this.seq) return;
      if (s.plan_id !== this.plan.id) throw new ApiError(404, 'not_found', 'no such scenario');
      this.remember(s);
      this.render(s, seq, Date.now());
    } catch (e) {
      if (seq !== this.seq) return;
      replace(this.detail, h('p', { class: 'form-error', role: 'alert' },
        e instanceof ApiError && e.status === 404 ? 'This scenario does not exist, or not in this plan.' : describe(e)));
    }
  }

  /** Renders a scenario; while it runs, polls it every second (until done or failed, or
   *  until another scenario or plan is shown). */
  private render(s: Scenario, seq: number, since: number) {
    this.current = s;
    this.detail.dataset.status = s.status;
    const title = h('h4', { tabindex: '-1' }, s.name);
    const running = s.status === 'pending' || s.status === 'running';
    this.statusLine = h('p', { class: 'run-status', role: 'status' });
    this.renderStatus(s, since);
    const parts: (HTMLElement | null)[] = [title, this.statusLine, this.configFacts(s)];
    if (s.status === 'done') parts.push(...this.results(s));
    parts.push(this.deleteTools(s));
    replace(this.detail, ...parts);
    if (this.focusTitle) title.focus();
    this.focusTitle = false;
    if (running) {
      this.timer = window.setTimeout(() => void this.poll(s.id, seq, since), POLL_MS);
    }
  }

  /** The status line: while running, a spinner and the seconds since it was shown. */
  private renderStatus(s: Scenario, since: number) {
    const status = this.statusLine;
    status.className = `run-status status-${s.status}`;
    if (s.status === 'pending' || s.status === 'running') {
      const seconds = Math.round((Date.now() - since) / 1000);
      replace(status, h('span', { class: 'spinner', 'aria-hidden': 'true' }), `${STATUS_TEXT[s.status]}…`,
        h('span', { class: 'elapsed', 'aria-hidden': 'true' }, ` ${seconds} s`));
    } else if (s.status === 'done') {
      const secs = s.summary?.seconds;
      const took = secs === undefined ? '' : secs < 0.1 ? ' in under 0.1 s' : ` in ${secs.toFixed(1)} s`;
      replace(status, `Done${took}.`);
    } else {
      replace(status, `Failed: ${s.reason ?? 'no reason given'}.`);
    }
  }

  private async poll(sid: number, seq: number, since: number) {
    if (seq !== this.seq) return;
    try {
      const s = await api.scenario(sid);
      if (seq !== this.seq) return;
      this.remember(s);
      if (s.status === this.current?.status) {
        // Still running: only the status line changes (the focus stays where it is).
        this.current = s;
        this.renderStatus(s, since);
        this.timer = window.setTimeout(() => void this.poll(sid, seq, since), POLL_MS);
        return;
      }
      this.render(s, seq, since);
    } catch (e) {
      if (seq !== this.seq) return;
      if (e instanceof ApiError && (e.status === 0 || e.status === 503)) {
        // Offline or the database away: try again, more slowly.
        this.timer = window.setTimeout(() => void this.poll(sid, seq, since), (e.retryAfter ?? 5) * 1000);
        return;
      }
      replace(this.detail, h('p', { class: 'form-error', role: 'alert' }, describe(e)));
    }
  }

  private configFacts(s: Scenario): HTMLElement {
    const c = s.config;
    const priorities = (c.priorities ?? []).map((p) => `${this.conditions.displayName(this.plan.region, p.condition)} (${p.weight})`);
    return h('dl', { class: 'facts' },
      h('dt', {}, 'Priorities'), h('dd', {}, priorities.join(', ') || '–'),
      h('dt', {}, 'Stand size'), h('dd', {}, c.stand_size_acres ? formatAcres(c.stand_size_acres) : '–'),
      h('dt', {}, 'Treatment share'), h('dd', {}, formatShare(c.max_treatment_share)),
      h('dt', {}, 'Project areas'), h('dd', {}, `at most ${c.max_project_areas ?? '–'}`),
      h('dt', {}, 'Left out'), h('dd', {}, c.exclude ? 'areas drawn on the map' : 'nothing'));
  }

  private results(s: Scenario): HTMLElement[] {
    const areas = (s.project_areas?.features ?? []) as Area[];
    const sum = s.summary ?? {};
    const facts = h('dl', { class: 'facts' },
      h('dt', {}, 'Stands'), h('dd', {}, `${num(sum.stands)} (${num(sum.scored_stands)} with data)`),
      h('dt', {}, 'Budget'), h('dd', {}, sum.budget_acres !== undefined ? formatAcres(sum.budget_acres) : '–'),
      h('dt', {}, 'Treated'), h('dd', {}, sum.treated_acres !== undefined ? formatAcres(sum.treated_acres) : '–'));
    this.showExcluded(s);
    if (!areas.length) {
      return [facts, h('p', { class: 'note' }, 'No project area: no stand has data for these priorities.')];
    }
    this.showAreas(s.id, areas);
    this.rows.clear();
    const body = h('tbody', {}, ...areas.map((f) => {
      const p = f.properties;
      const id = Number(f.id);
      const button = h('button', {
        type: 'button', class: 'rank', 'aria-pressed': 'false', 'aria-label': `Project area ${p.rank}: show on the map`,
        onclick: () => this.select(id, true),
      }, h('span', { class: 'swatch', style: `background: ${rankColor(p.rank, areas.length)}`, 'aria-hidden': 'true' }), String(p.rank));
      const tr = h('tr', { 'data-area': id, 'data-rank': p.rank },
        h('th', { scope: 'row' }, button),
        h('td', {}, p.score.toFixed(3)),
        h('td', {}, Math.round(p.area_acres).toLocaleString('en-US')),
        h('td', {}, p.stand_count.toLocaleString('en-US')));
      this.rows.set(id, { tr, button });
      return tr;
    }));
    const table = h('table', { class: 'area-table' },
      h('caption', {}, 'Project areas, best first'),
      h('thead', {}, h('tr', {}, ...['Rank', 'Score', 'Acres', 'Stands'].map((t) => h('th', { scope: 'col' }, t)))),
      body);
    if (this.selectedArea !== undefined && this.rows.has(this.selectedArea)) this.select(this.selectedArea, false);
    const downloads = h('p', { class: 'downloads' }, 'Download: ',
      ...EXPORTS.flatMap(([format, label], i) => [i ? ' · ' : '',
        h('a', { href: api.exportUrl(s.id, format), download: '', 'data-format': format }, label)]));
    return [facts, rampLegend(areas.length), table, downloads, this.compareBox(s)];
  }

  /** The project areas as vector tiles, coloured by rank; a click selects one. */
  private showAreas(sid: number, areas: Area[]) {
    const count = areas.length;
    const byId = new Map(areas.map((f) => [Number(f.id), f]));
    const style = (props: object): L.PathOptions => {
      const rank = Number((props as Partial<ProjectAreaProps>).rank ?? count);
      const color = rankColor(rank, count);
      return { color: '#3b0a0a', weight: 1, fill: true, fillColor: color, fillOpacity: 0.7 };
    };
    const layer = L.vectorGrid.protobuf(api.projectAreaTiles(sid), {
      pane: SCENARIO_PANE,
      rendererFactory: L.svg.tile,
      vectorTileLayerStyles: { project_areas: style },
      interactive: true,
      getFeatureId: (f) => f.id,
      maxNativeZoom: 18,
      maxZoom: 22,
    });
    const styleOf = new Map(areas.map((f) => [Number(f.id), style(f.properties)]));
    this.restyle = (id, on) => {
      if (on) layer.setFeatureStyle(id, { ...styleOf.get(id), ...SELECTED });
      else layer.resetFeatureStyle(id);
    };
    layer.on('click', (e: L.LeafletMouseEvent) => {
      const props = (e as unknown as { layer: { properties?: ProjectAreaProps } }).layer.properties;
      const f = areas.find((a) => a.properties.rank === props?.rank);
      if (!f) return;
      this.select(Number(f.id), false);
      this.rows.get(Number(f.id))?.tr.scrollIntoView({ block: 'nearest' });
      L.popup({ maxWidth: 240 }).setLatLng(e.latlng).setContent(areaPopup(f.properties)).openOn(this.map);
    });
    layer.on('load', () => { this.detail.dataset.tiles = 'loaded'; });
    layer.on('tileerror', (e: { coords?: L.Coords }) => {
      tileErrors.push(`scenario ${sid} ${e.coords ? `${e.coords.z}/${e.coords.x}/${e.coords.y}` : ''}`);
    });
    this.layer = layer.addTo(this.map);
    this.areaBounds = (id) => {
      const f = byId.get(id);
      return f ? L.geoJSON(f).getBounds() : null;
    };
  }

  private restyle: (id: number, on: boolean) => void = () => {};
  private areaBounds: (id: number) => L.LatLngBounds | null = () => null;

  /** Highlights a project area on the map and its row in the table. */
  private select(id: number, fromTable: boolean) {
    if (this.selectedArea !== undefined && this.selectedArea !== id) {
      this.restyle(this.selectedArea, false);
      const old = this.rows.get(this.selectedArea);
      old?.tr.classList.remove('selected');
      old?.button.setAttribute('aria-pressed', 'false');
    }
    this.selectedArea = id;
    this.restyle(id, true);
    const row = this.rows.get(id);
    row?.tr.classList.add('selected');
    row?.button.setAttribute('aria-pressed', 'true');
    if (fromTable) {
      const b = this.areaBounds(id);
      if (b?.isValid() && !this.map.getBounds().contains(b)) this.map.fitBounds(b, { padding: [24, 24], maxZoom: 15 });
    }
  }

  private showExcluded(s: Scenario) {
    this.excluded?.remove();
    this.excluded = null;
    if (!s.config.exclude) return;
    this.excluded = L.geoJSON(s.config.exclude, { pane: SCENARIO_PANE, style: EXCLUDED, interactive: false }).addTo(this.map);
  }

  private clearMap() {
    this.layer?.remove();
    this.layer = null;
    this.excluded?.remove();
    this.excluded = null;
    this.selectedArea = undefined;
    this.rows.clear();
    this.restyle = () => {};
    this.areaBounds = () => null;
    this.map.closePopup();
  }

  // ---- comparing ----

  private compareBox(s: Scenario): HTMLElement {
    const others = this.scenarios.filter((o) => o.id !== s.id && o.status === 'done');
    const box = h('section', { class: 'compare', 'aria-label': 'Compare scenarios' }, h('h5', {}, 'Compare'));
    if (!others.length) {
      box.append(h('p', { class: 'note' }, 'Run another scenario of this plan to compare it with this one.'));
      return box;
    }
    const id = uid('compare');
    const out = h('div', { class: 'compare-out', 'aria-live': 'polite' });
    const select = h('select', {
      id,
      onchange: () => { this.compareWith = Number(select.value) || undefined; void this.compare(s, out); },
    }, h('option', { value: '' }, 'Choose a scenario…'), ...others.map((o) => h('option', { value: String(o.id) }, o.name)));
    if (this.compareWith && others.some((o) => o.id === this.compareWith)) select.value = String(this.compareWith);
    box.append(h('div', { class: 'field' }, h('label', { for: id }, 'Compare with'), select), out);
    if (select.value) void this.compare(s, out);
    return box;
  }

  private async compare(s: Scenario, out: HTMLElement) {
    const other = this.compareWith;
    if (!other) {
      replace(out);
      return;
    }
    try {
      const o = await api.scenario(other);
      if (this.current?.id !== s.id || this.compareWith !== other) return;
      replace(out, compareTable(s, o, (c) => this.conditions.displayName(this.plan.region, c)));
    } catch (e) {
      replace(out, h('p', { class: 'form-error' }, describe(e)));
    }
  }

  // ---- deleting ----

  private deleteTools(s: Scenario): HTMLElement | null {
    if (this.plan.role !== 'owner') return null;
    const box = h('div', { class: 'manage' });
    const ask = () => {
      const error = h('p', { class: 'form-error', role: 'alert' });
      const yes = h('button', {
        type: 'button', class: 'danger',
        onclick: async () => {
          try {
            await api.deleteScenario(s.id);
            this.scenarios = this.scenarios.filter((x) => x.id !== s.id);
            if (this.compareWith === s.id) this.compareWith = undefined;
            this.url.update({ scenario: undefined });
            this.apply();
          } catch (e) {
            error.textContent = describe(e);
          }
        },
      }, 'Delete for good');
      replace(box, h('div', { role: 'alertdialog', 'aria-label': 'Confirm deletion of the scenario', class: 'confirm' },
        h('p', {}, `Delete the scenario “${s.name}” and its project areas? This cannot be undone.`), yes,
        h('button', { type: 'button', onclick: () => { replace(box, button); button.focus(); } }, 'Keep it'),
        error));
      yes.focus();
    };
    const button = h('button', { type: 'button', class: 'danger', onclick: ask }, 'Delete scenario');
    box.append(button);
    return box;
  }

  // ---- a new scenario ----

  private openForm() {
    const toggle = this.actions.querySelector('button');
    if (this.formBox.firstChild) {
      this.formBox.querySelector<HTMLElement>('input, select')?.focus();
      return;
    }
    toggle?.setAttribute('aria-expanded', 'true');
    const form = new ScenarioForm(this.map, this.plan, this.conditions, `Scenario ${this.scenarios.length + 1}`, {
      drafts: this.drafts,
      created: (s) => {
        this.closeForm();
        this.remember(s);
        this.url.update({ scenario: s.id });
        this.focusTitle = true;
        this.apply();
      },
      cancelled: () => {
        this.closeForm();
        toggle?.focus();
      },
    });
    this.form = form;
    replace(this.formBox, form.element);
    form.focus();
  }

  private closeForm() {
    this.form?.stop();
    this.form = null;
    this.clearDrafts();
    replace(this.formBox);
    this.actions.querySelector('button')?.setAttribute('aria-expanded', 'false');
  }

  private clearDrafts() {
    for (const l of this.drafts) l.remove();
    this.drafts.length = 0;
  }
}

interface FormHooks { drafts: L.Layer[]; created: (s: Scenario) => void; cancelled: () => void }
interface PriorityRow { node: ConditionNode; li: HTMLLIElement; weight: HTMLInputElement; error: HTMLElement }

/** The "New scenario" form; API errors go beside the field they name. */
class ScenarioForm {
  readonly element: HTMLFormElement;
  private name = field('Scenario name', 'name');
  private priorities: PriorityRow[] = [];
  private priorityList = h('ul', { class: 'priorities', 'aria-label': 'Chosen priorities' });
  private pick: HTMLSelectElement;
  private errors = new Map<string, { error: HTMLElement; control?: HTMLElement }>();
  private formError = h('p', { class: 'form-error', role: 'alert' });
  private exclusions: { geometry: GeoJSON.Polygon; layer: L.Layer }[] = [];
  private drawing = false;
  private exclusionList = h('ul', { class: 'exclusions', 'aria-label': 'Areas left out' });

  constructor(private map: L.Map, private plan: Plan, private conditions: ConditionsPanel, name: string, private hooks: FormHooks) {
    this.name.input.value = name;
    this.errors.set('name', { error: this.name.error, control: this.name.input });

    // Priorities: conditions of the plan's region, pillars, elements and metrics.
    const tree = conditions.regionTree(plan.region);
    const pickId = uid('priority-pick');
    this.pick = h('select', { id: pickId, disabled: !tree },
      h('option', { value: '' }, tree ? 'Choose a condition…' : 'No conditions for this region'),
      ...(tree?.children ?? []).map((pillar) => h('optgroup', { label: pillar.display_name },
        h('option', { value: pillar.key }, `${pillar.display_name} (whole pillar)`),
        ...pillar.children.flatMap((el) => [
          h('option', { value: el.key }, el.display_name),
          ...el.children.map((m) => h('option', { value: m.key }, `\u2003${m.display_name}`)),
        ]))));
    const prioritiesError = errorLine();
    this.errors.set('priorities', { error: prioritiesError, control: this.pick });
    const priorities = h('fieldset', { class: 'priority-set' }, h('legend', {}, 'Priorities'),
      h('div', { class: 'field' }, h('label', { for: pickId }, 'Condition'), this.pick),
      h('button', { type: 'button', onclick: () => this.addPriority() }, 'Add priority'),
      this.priorityList, prioritiesError);
    this.pick.setAttribute('aria-describedby', prioritiesError.id);

    const standId = uid('stand-size');
    const standError = errorLine();
    const stand = h('select', { id: standId, name: 'stand_size_acres', 'aria-describedby': standError.id },
      ...STAND_SIZES.map((a) => h('option', { value: String(a) }, `${a} acres`)));
    stand.value = '100';
    this.errors.set('stand_size_acres', { error: standError, control: stand });

    const share = field('Treatment share (% of the plan area, up to 100)', 'max_treatment_share', 'number');
    Object.assign(share.input, { min: '1', max: '100', step: '1', value: '20', inputMode: 'decimal' });
    this.errors.set('max_treatment_share', { error: share.error, control: share.input });

    const count = field('Number of project areas (1 to 1,000)', 'max_project_areas', 'number');
    Object.assign(count.input, { min: '1', max: '1000', step: '1', value: '5', inputMode: 'numeric' });
    this.errors.set('max_project_areas', { error: count.error, control: count.input });

    const excludeError = errorLine();
    const drawButton = h('button', { type: 'button', onclick: () => void this.drawExclusion(drawButton, excludeHint) }, 'Draw an area to leave out');
    const excludeHint = h('div', { class: 'hint' });
    this.errors.set('exclude', { error: excludeError, control: drawButton });
    const exclusions = h('fieldset', {}, h('legend', {}, 'Areas to leave out (optional)'),
      this.exclusionList, excludeHint, drawButton, excludeError);
    this.renderExclusions();

    this.element = h('form', { 'aria-label': 'New scenario', novalidate: true },
      h('h4', {}, 'New scenario'), this.name.wrap, priorities,
      h('div', { class: 'field' }, h('label', { for: standId }, 'Stand size'), stand, standError),
      share.wrap, count.wrap, exclusions, this.formError,
      h('button', { type: 'submit' }, 'Run scenario'),
      h('button', { type: 'button', onclick: () => hooks.cancelled() }, 'Cancel'));

    this.element.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      this.clearErrors();
      const config: ScenarioConfig = {
        name: this.name.input.value.trim(),
        priorities: this.priorities.map((p) => ({ condition: p.node.name, weight: Number(p.weight.value) })),
        stand_size_acres: Number(stand.value),
        max_treatment_share: parseShare(share.input.value),
        max_project_areas: Number(count.input.value),
      };
      // Obvious mistakes are caught here; the API checks everything again.
      if (!Number.isFinite(config.max_treatment_share)) {
        this.showError('max_treatment_share', 'Enter a percentage, e.g. 20.');
        return;
      }
      if (!Number.isInteger(config.max_project_areas)) {
        this.showError('max_project_areas', 'Enter a whole number, e.g. 5.');
        return;
      }
      if (this.exclusions.length === 1) config.exclude = this.exclusions[0].geometry;
      else if (this.exclusions.length > 1) {
        config.exclude = { type: 'MultiPolygon', coordinates: this.exclusions.map((x) => x.geometry.coordinates) };
      }
      try {
        hooks.created(await api.createScenario(plan.id, config));
      } catch (e) {
        if (e instanceof ApiError && e.field) this.showError(e.field, e.describe());
        else this.formError.textContent = describe(e);
      }
    });
  }

  focus(): void {
    this.name.input.focus();
  }

  /** Ends a drawing in progress (the form is closing). */
  stop(): void {
    if (this.drawing) void import('./draw').then((d) => d.cancelDrawing(this.map));
  }

  private addPriority(node?: ConditionNode) {
    const n = node ?? this.conditions.nodes.get(this.pick.value);
    if (!n || this.priorities.some((p) => p.node.key === n.key)) {
      this.pick.focus();
      return;
    }
    const id = uid('weight');
    const error = errorLine();
    const output = h('output', { for: id, class: 'weight-value' }, '5');
    const weight = h('input', {
      type: 'range', id, name: 'weight', min: '0', max: '10', step: '1', value: '5', 'aria-describedby': error.id,
      oninput: () => { output.textContent = weight.value; },
    });
    const row: PriorityRow = { node: n, weight, error, li: h('li') };
    const remove = h('button', {
      type: 'button', class: 'link', 'aria-label': `Remove ${n.display_name}`,
      onclick: () => {
        this.priorities = this.priorities.filter((p) => p !== row);
        row.li.remove();
        this.syncPick();
        this.pick.focus();
      },
    }, 'Remove');
    replace(row.li, h('label', { for: id }, h('span', { class: 'visually-hidden' }, 'Weight of '), n.display_name),
      h('div', { class: 'weight' }, weight, output, remove), error);
    this.priorities.push(row);
    this.priorityList.append(row.li);
    this.pick.value = '';
    this.syncPick();
    weight.focus();
  }

  /** Conditions already chosen cannot be chosen twice. */
  private syncPick() {
    const chosen = new Set(this.priorities.map((p) => p.node.key));
    for (const o of this.pick.options) if (o.value) o.disabled = chosen.has(o.value);
  }

  private async drawExclusion(button: HTMLButtonElement, hint: HTMLElement) {
    button.disabled = true;
    const cancel = h('button', { type: 'button', onclick: async () => (await import('./draw')).cancelDrawing(this.map) }, 'Cancel drawing');
    replace(hint, h('p', { role: 'status' }, 'Click on the map to place the corners; click the first corner to finish.'), cancel);
    this.drawing = true;
    try {
      const { drawPolygon } = await import('./draw');
      const drawn = await drawPolygon(this.map);
      this.drawing = false;
      if (drawn) {
        drawn.layer.setStyle(EXCLUDED);
        this.hooks.drafts.push(drawn.layer);
        this.exclusions.push({ geometry: drawn.geometry, layer: drawn.layer });
        this.renderExclusions();
      }
      replace(hint);
    } catch (e) {
      replace(hint, h('p', { role: 'status' }, `Drawing is not available: ${String(e)}`));
    }
    this.drawing = false;
    button.disabled = false;
    button.focus();
  }

  private renderExclusions() {
    if (!this.exclusions.length) {
      replace(this.exclusionList, h('li', { class: 'empty' }, 'None: the whole plan is considered.'));
      return;
    }
    replace(this.exclusionList, ...this.exclusions.map((x, i) => h('li', {}, `Area ${i + 1} (drawn on the map) `,
      h('button', {
        type: 'button', class: 'link', 'aria-label': `Remove left-out area ${i + 1}`,
        onclick: () => {
          x.layer.remove();
          this.exclusions = this.exclusions.filter((y) => y !== x);
          this.renderExclusions();
        },
      }, 'Remove'))));
  }

  private clearErrors() {
    this.formError.textContent = '';
    for (const { error, control } of this.errors.values()) {
      error.textContent = '';
      control?.removeAttribute('aria-invalid');
    }
    for (const p of this.priorities) {
      p.error.textContent = '';
      p.weight.removeAttribute('aria-invalid');
    }
  }

  /** Puts a message beside the field the API names (`priorities[1].weight` is the
   *  second priority's slider), else under the form. */
  private showError(name: string, message: string) {
    const pf = priorityField(name);
    const row = pf ? this.priorities[pf.index] : undefined;
    const target = row ? { error: row.error, control: row.weight } : this.errors.get(name);
    if (!target) {
      this.formError.textContent = `${name}: ${message}`;
      return;
    }
    // The API's message may start with the field's name, which the place already says.
    const text = message.startsWith(`${name}: `) ? message.slice(name.length + 2) : message;
    target.error.textContent = name === 'max_treatment_share' && text.includes('(0, 1]')
      ? 'Must be more than 0 and at most 100 %.' : text.charAt(0).toUpperCase() + text.slice(1);
    target.control?.setAttribute('aria-invalid', 'true');
    target.control?.focus();
  }
}

function errorLine(): HTMLElement {
  return h('p', { class: 'field-error', id: uid('error'), 'aria-live': 'polite' });
}

function statusBadge(status: string): HTMLElement {
  return h('span', { class: `status status-${status}` }, STATUS_TEXT[status] ?? status);
}

function rampLegend(count: number): HTMLElement {
  const stops = RANK_RAMP.map((c, i) => `${c} ${(100 * i) / (RANK_RAMP.length - 1)}%`).join(', ');
  return h('div', { class: 'rank-legend', 'aria-label': 'Map colours' },
    h('span', {}, 'Rank 1 (best)'),
    h('span', { class: 'rank-ramp', style: `background: linear-gradient(to right, ${count > 1 ? stops : RANK_RAMP[0]})`, 'aria-hidden': 'true' }),
    h('span', {}, count > 1 ? `rank ${count}` : ''));
}

function areaPopup(p: ProjectAreaProps): HTMLElement {
  const rows: [string, string][] = [
    ['Rank', String(p.rank)], ['Score', p.score.toFixed(3)],
    ['Acres', Math.round(p.area_acres).toLocaleString('en-US')], ['Stands', p.stand_count.toLocaleString('en-US')],
  ];
  return h('div', { class: 'feature-popup area-popup' }, h('strong', {}, `Project area ${p.rank}`),
    h('table', {}, h('tbody', {}, ...rows.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v))))));
}

/** Two scenarios side by side: what they asked, their totals, their areas rank by rank. */
function compareTable(a: Scenario, b: Scenario, name: (condition: string) => string): HTMLElement {
  const areas = (s: Scenario) => (s.project_areas?.features ?? []) as Area[];
  const priorities = (s: Scenario) => (s.config.priorities ?? []).map((p) => `${name(p.condition)} (${p.weight})`).join(', ');
  const meanScore = (s: Scenario) => {
    const f = areas(s);
    return f.length ? (f.reduce((t, x) => t + x.properties.score, 0) / f.length).toFixed(3) : '–';
  };
  const acres = (v: number | undefined) => (v === undefined ? '–' : formatAcres(v));
  const rows: [string, (s: Scenario) => string][] = [
    ['Status', (s) => STATUS_TEXT[s.status] ?? s.status],
    ['Priorities', priorities],
    ['Stand size', (s) => acres(s.config.stand_size_acres)],
    ['Treatment share', (s) => formatShare(s.config.max_treatment_share)],
    ['Project areas', (s) => `${areas(s).length} of at most ${s.config.max_project_areas ?? '–'}`],
    ['Stands', (s) => num(s.summary?.stands)],
    ['Budget', (s) => acres(s.summary?.budget_acres)],
    ['Treated', (s) => acres(s.summary?.treated_acres)],
    ['Mean area score', meanScore],
  ];
  const n = Math.max(areas(a).length, areas(b).length);
  for (let i = 0; i < n; i++) {
    rows.push([`Area ${i + 1}`, (s) => {
      const f = areas(s)[i];
      return f ? `${f.properties.score.toFixed(3)} · ${Math.round(f.properties.area_acres).toLocaleString('en-US')} ac` : '–';
    }]);
  }
  return h('table', { class: 'compare-table' },
    h('caption', {}, `${a.name} and ${b.name}`),
    h('thead', {}, h('tr', {}, h('td', {}), h('th', { scope: 'col' }, a.name), h('th', { scope: 'col' }, b.name))),
    h('tbody', {}, ...rows.map(([label, value]) =>
      h('tr', {}, h('th', { scope: 'row' }, label), h('td', {}, value(a)), h('td', {}, value(b))))));
}

function num(v: number | undefined): string {
  return v === undefined ? '–' : v.toLocaleString('en-US');
}

function describe(e: unknown): string {
  return e instanceof ApiError ? e.describe() : String(e);
}
