// The plans panel: the user's plans (own and shared, with the role), drawing or
// uploading a new one, renaming, redrawing and deleting; and the plan page of the selected plan (in the URL): its
// outline on the map, acres, sharing, its scenarios and its scores by band.
import L from 'leaflet';
import { ApiError, api, type Plan, type Region, type User } from './api';
import type { ConditionsPanel } from './conditions';
import { formatAcres, h, replace } from './dom';
import { FormErrors, field, regionField } from './form';
import { InvitationsList } from './invitations';
import { problemAt } from './problem';
import { redraw } from './redraw';
import { ScenariosPanel } from './scenarios';
import { ScoresTable, type ScoreRow } from './scores';
import { SharingPanel } from './sharing';
import { uploadForm } from './upload';
import type { UrlState } from './url-state';

export const PLAN_PANE = 'plans';

export class PlansPanel {
  private user: User | null = null;
  private plans: Plan[] = [];
  private regions: Region[] = [];
  private list = h('ul', { class: 'plan-list', 'aria-label': 'Your plans' });
  private actions = h('div', { class: 'actions' });
  private draft = h('div', { class: 'draft' });
  private page = h('section', { class: 'plan-page', 'aria-label': 'Selected plan' });
  private message = h('p', { class: 'form-error', role: 'alert' });
  /** Invitations waiting for this user's answer (above the list). */
  private invitations: InvitationsList;
  private outline: L.GeoJSON | null = null;
  private marker: L.CircleMarker | null = null;
  private shownPlan = 0;
  private seq = 0;
  private scenarios: ScenariosPanel | null = null;
  /** Fit the map to the next plan shown (a new plan, or one just accepted). */
  private fitNext = false;
  /** Ends a redraw in progress (the drawing, the new outline on the map). */
  private endRedraw: (() => void) | null = null;
  /** Closes the open new-plan form (and takes a drawn outline off the map). */
  private closeDraft: (() => void) | null = null;

  constructor(
    private map: L.Map,
    private body: HTMLElement,
    private url: UrlState,
    private conditions: ConditionsPanel,
  ) {
    map.createPane(PLAN_PANE).style.zIndex = '450';
    // The count of waiting invitations, on the panel's heading.
    const badge = h('span', { class: 'badge', hidden: true });
    body.parentElement?.querySelector('summary')?.append(' ', badge);
    this.invitations = new InvitationsList(badge, (plan) => {
      this.plans = [plan, ...this.plans.filter((p) => p.id !== plan.id)];
      this.fitNext = true;
      this.url.update({ plan: plan.id, scenario: undefined });
      void this.apply();
    });
    this.render();
  }

  async setUser(user: User | null): Promise<void> {
    this.user = user;
    if (!user) await this.invitations.load(false);
    this.plans = [];
    this.shownPlan = 0;
    if (user) {
      try {
        [this.plans, this.regions] = await Promise.all([api.plans(), this.regions.length ? this.regions : api.regions(),
          this.invitations.load(true)]);
      } catch (e) {
        this.message.textContent = describe(e);
      }
    }
    this.render();
    await this.apply();
  }

  private render() {
    if (!this.user) {
      this.showDraft(null);
      replace(this.body, h('p', {}, 'Sign in to draw plans and read their scores.'), this.message);
      this.closeScenarios();
      this.clearMap();
      return;
    }
    this.renderActions();
    this.renderList();
    replace(this.body, this.actions, this.draft, this.message, this.invitations.element, this.list, this.page);
  }

  private renderActions() {
    replace(this.actions,
      h('button', { type: 'button', onclick: () => this.draw() }, 'Draw a plan'),
      h('button', { type: 'button', onclick: () => this.upload() }, 'Upload a plan'));
  }

  private renderList() {
    if (!this.plans.length) {
      replace(this.list, h('li', { class: 'empty' }, 'No plans yet: draw one on the map or upload a file.'));
      return;
    }
    replace(this.list, ...this.plans.map((p) => {
      const selected = this.url.state.plan === p.id;
      const a = h('a', {
        href: this.url.link({ plan: p.id, scenario: undefined }), class: 'plan-link', 'aria-current': selected ? 'true' : undefined,
        onclick: (ev: MouseEvent) => {
          if (ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
          ev.preventDefault();
          this.url.update({ plan: p.id, scenario: undefined });
          void this.apply();
        },
      }, p.name);
      return h('li', { class: selected ? 'selected' : '' }, a,
        h('span', { class: `role role-${p.role}` }, p.role),
        h('span', { class: 'acres' }, formatAcres(p.area_acres)),
        p.role !== 'owner' ? h('span', { class: 'owner' }, `shared by ${p.owner_name}`) : null);
    }));
  }

  /** Shows the plan of the URL state (or none). */
  async apply(): Promise<void> {
    const id = this.user ? this.url.state.plan : undefined;
    this.renderList();
    if (!id) {
      this.shownPlan = 0;
      this.closeScenarios();
      replace(this.page);
      this.clearMap();
      return;
    }
    if (id === this.shownPlan) {
      this.scenarios?.apply();
      return;
    }
    this.shownPlan = id;
    this.closeScenarios();
    const seq = ++this.seq;
    replace(this.page, h('p', { class: 'loading' }, 'Loading the plan…'));
    try {
      const plan = await api.plan(id);
      if (seq !== this.seq) return;
      this.showOutline(plan);
      const table = new ScoresTable();
      const scoresStatus = h('p', { class: 'loading', role: 'status' }, 'Computing scores…');
      const sharing = new SharingPanel(plan, this.user!, () => {
        this.plans = this.plans.filter((p) => p.id !== plan.id);
        this.url.update({ plan: undefined, scenario: undefined });
        void this.apply();
      });
      const scenarios = new ScenariosPanel(this.map, plan, this.url, this.conditions);
      this.scenarios = scenarios;
      replace(this.page, ...this.header(plan), sharing.element, scenarios.element,
        h('h3', {}, 'Scores'), scoresStatus, table.element);
      void sharing.load();
      void scenarios.load();
      const scores = await api.scores(id);
      if (seq !== this.seq) return;
      scoresStatus.remove();
      table.set(this.scoreRows(plan.region, scores.scores));
      this.page.dataset.scores = 'ready';
    } catch (e) {
      if (seq !== this.seq) return;
      replace(this.page, h('p', { class: 'form-error', role: 'alert' },
        e instanceof ApiError && e.status === 404 ? 'This plan does not exist or is not shared with you.' : describe(e)));
    }
  }

  private header(plan: Plan): HTMLElement[] {
    const region = this.regions.find((r) => r.slug === plan.region)?.name ?? plan.region;
    const title = h('h2', { tabindex: '-1' }, plan.name);
    const manage = h('div', { class: 'manage' });
    // Owners only: the API lets no other role change the plan (accounts::access, Edit).
    if (plan.role === 'owner') manage.append(...this.ownerTools(plan, manage));
    return [
      title,
      h('dl', { class: 'facts' },
        h('dt', {}, 'Area'), h('dd', { class: 'plan-acres' }, formatAcres(plan.area_acres)),
        h('dt', {}, 'Region'), h('dd', {}, region),
        h('dt', {}, 'Owner'), h('dd', {}, plan.owner_name),
        h('dt', {}, 'Your role'), h('dd', {}, plan.role)),
      h('p', {}, h('a', { href: this.url.link({ plan: plan.id }), class: 'permalink' }, 'Permalink to this plan')),
      manage,
    ];
  }

  private ownerTools(plan: Plan, manage: HTMLElement): HTMLElement[] {
    const rename = () => {
      const name = field('New name', 'name');
      name.input.value = plan.name;
      const errors = new FormErrors([name]);
      const form = h('form', { 'aria-label': 'Rename plan', class: 'inline-form' }, name.wrap, errors.formError,
        h('button', { type: 'submit' }, 'Save name'),
        h('button', { type: 'button', onclick: () => replace(manage, ...this.ownerTools(plan, manage)) }, 'Cancel'));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        try {
          const updated = await api.renamePlan(plan.id, name.input.value.trim());
          this.plans = this.plans.map((p) => (p.id === plan.id ? { ...p, name: updated.name } : p));
          this.shownPlan = 0;
          await this.apply();
        } catch (e) {
          errors.show(e);
        }
      });
      replace(manage, form);
      name.input.focus();
    };
    const remove = () => {
      const error = h('p', { class: 'form-error', role: 'alert' });
      const yes = h('button', {
        type: 'button', class: 'danger',
        onclick: async () => {
          try {
            await api.deletePlan(plan.id);
            this.plans = this.plans.filter((p) => p.id !== plan.id);
            this.url.update({ plan: undefined, scenario: undefined });
            await this.apply();
          } catch (e) {
            error.textContent = describe(e);
          }
        },
      }, 'Delete for good');
      replace(manage, h('div', { role: 'alertdialog', 'aria-label': 'Confirm deletion', class: 'confirm' },
        h('p', {}, `Delete “${plan.name}” and its scores? This cannot be undone.`), yes,
        h('button', { type: 'button', onclick: () => replace(manage, ...this.ownerTools(plan, manage)) }, 'Keep it'),
        error));
      yes.focus();
    };
    const restore = () => replace(manage, ...this.ownerTools(plan, manage));
    const redrawOutline = () => void redraw({
      map: this.map, plan, container: manage, restore,
      saved: async (updated) => {
        this.plans = this.plans.map((p) => (p.id === plan.id ? { ...p, area_acres: updated.area_acres } : p));
        this.shownPlan = 0;
        this.fitNext = true;
        await this.apply();
        this.page.querySelector<HTMLElement>('h2')?.focus();
      },
      mark: (message) => this.markLocation(message),
      track: (end) => { this.endRedraw = end; },
    });
    return [
      h('button', { type: 'button', onclick: rename }, 'Rename'),
      h('button', { type: 'button', onclick: redrawOutline }, 'Redraw'),
      h('button', { type: 'button', class: 'danger', onclick: remove }, 'Delete'),
    ];
  }

  private scoreRows(region: string, stats: { condition: string; level: string }[]): ScoreRow[] {
    // Tree order: the position of each condition in the catalog.
    const order = [...this.conditions.nodes.keys()];
    const depth: Record<string, number> = { pillar: 0.4, element: 1.4, metric: 2.4 };
    return (stats as ScoreRow['stats'][]).map((s) => {
      const i = order.indexOf(`${region}/${s.condition}`);
      return {
        stats: s,
        name: this.conditions.displayName(region, s.condition),
        depth: depth[s.level] ?? 0,
        order: i < 0 ? Number.MAX_SAFE_INTEGER : i,
      };
    });
  }

  private showOutline(plan: Plan) {
    this.clearMap();
    if (!plan.geometry) return;
    this.outline = L.geoJSON(plan.geometry, {
      pane: PLAN_PANE,
      style: { color: '#7a1fa2', weight: 3, fillColor: '#7a1fa2', fillOpacity: 0.08 },
      interactive: false,
    }).addTo(this.map);
    const bounds = this.outline.getBounds();
    const fit = this.fitNext;
    this.fitNext = false;
    if (bounds.isValid() && (fit || !this.map.getBounds().contains(bounds))) this.map.fitBounds(bounds, { padding: [24, 24] });
  }

  private closeScenarios() {
    this.scenarios?.dispose();
    this.scenarios = null;
  }

  private clearMap() {
    const end = this.endRedraw;
    this.endRedraw = null;
    end?.();
    this.outline?.remove();
    this.outline = null;
    this.clearMarker();
  }

  private clearMarker() {
    if (!this.marker) return;
    this.marker.unbindTooltip();
    this.marker.remove();
    this.marker = null;
  }

  private async draw() {
    this.message.textContent = '';
    const cancel = h('button', { type: 'button', onclick: async () => (await import('./draw')).cancelDrawing(this.map) }, 'Cancel drawing');
    replace(this.actions, h('p', { class: 'hint', role: 'status' },
      'Click on the map to place the corners; click the first corner to finish.'), cancel);
    let drawn: Awaited<ReturnType<typeof import('./draw')['drawPolygon']>> = null;
    try {
      const { drawPolygon } = await import('./draw');
      drawn = await drawPolygon(this.map);
    } catch (e) {
      this.message.textContent = `Drawing is not available: ${String(e)}`;
    }
    this.renderActions();
    if (drawn) this.saveDraft(drawn.geometry, drawn.layer);
  }

  private upload() {
    this.message.textContent = '';
    const { element, focus } = uploadForm({
      regions: this.regions,
      hasConditions: (slug) => this.conditions.hasRegion(slug),
      created: async (plan) => {
        this.showDraft(null);
        this.plans = [plan, ...this.plans];
        this.url.update({ plan: plan.id, scenario: undefined });
        this.fitNext = true;
        await this.apply();
        this.page.querySelector<HTMLElement>('h2')?.focus();
      },
      closed: () => this.showDraft(null),
      mark: (message) => this.markLocation(message),
    });
    this.showDraft(element, () => this.clearMarker());
    focus();
  }

  /** Shows a new-plan form (closing the one open), or none. */
  private showDraft(form: HTMLElement | null, close?: () => void) {
    const previous = this.closeDraft;
    this.closeDraft = null;
    previous?.();
    replace(this.draft, form);
    this.closeDraft = close ?? null;
  }

  private saveDraft(geometry: GeoJSON.Polygon, layer: L.Layer) {
    const name = field('Plan name', 'name');
    const region = regionField(this.regions, (slug) => this.conditions.hasRegion(slug));
    const geometryError = h('p', { class: 'field-error', 'aria-live': 'polite' });
    const errors = new FormErrors([name, region]);
    const close = () => this.showDraft(null);
    const form = h('form', { 'aria-label': 'New plan', novalidate: true },
      h('h3', {}, 'New plan'), name.wrap,
      region.wrap,
      h('p', {}, 'Outline: drawn on the map'), geometryError, errors.formError,
      h('button', { type: 'submit' }, 'Save plan'), h('button', { type: 'button', onclick: close }, 'Discard'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      errors.clear();
      geometryError.textContent = '';
      this.clearMarker();
      try {
        const plan = await api.createPlan(name.input.value.trim(), region.input.value, geometry);
        close();
        this.plans = [plan, ...this.plans];
        this.url.update({ plan: plan.id, scenario: undefined });
        await this.apply();
      } catch (e) {
        if (e instanceof ApiError && e.field === 'geometry') {
          geometryError.textContent = e.describe();
          this.markLocation(e.message);
        } else errors.show(e);
      }
    });
    this.showDraft(form, () => {
      layer.remove();
      this.clearMarker();
    });
    name.input.focus();
  }

  /** Marks the location PostGIS reports for an invalid geometry (`Self-intersection[x y]`);
   *  null (or a message naming no place) takes the mark off. */
  private markLocation(message: string | null) {
    this.clearMarker();
    const at = message ? problemAt(message) : null;
    if (!at) return;
    this.marker = L.circleMarker(at, {
      pane: PLAN_PANE, radius: 9, color: '#c00', weight: 3, fillOpacity: 0.3,
    }).bindTooltip('The problem is here', { permanent: true, direction: 'right' }).addTo(this.map);
  }
}

function describe(e: unknown): string {
  return e instanceof ApiError ? e.describe() : String(e);
}
