// "Redraw" on a plan's page (owners, as the API allows `PATCH /plans/{id}` geometry): a
// new outline drawn with the plan-drawing tool, then "Save outline" or "Discard". The
// API's refusal goes beside the outline, the place it names marked on the map.
import type L from 'leaflet';
import { ApiError, api, type Plan } from './api';
import { h, replace } from './dom';

export interface RedrawOptions {
  map: L.Map;
  plan: Plan;
  /** Where the steps are shown (the plan page's tools). */
  container: HTMLElement;
  /** Puts the plan page's tools back. */
  restore: () => void;
  /** The outline was saved: the plan as the API returns it. */
  saved: (plan: Plan) => Promise<void>;
  /** Marks the place an error names (if any); clears it with null. */
  mark: (message: string | null) => void;
  /** Called with what ends the redraw (cancel the drawing, take the new outline off). */
  track: (end: (() => void) | null) => void;
}

export async function redraw(o: RedrawOptions): Promise<void> {
  const { map, container } = o;
  const draw = await import('./draw');
  const cancel = h('button', { type: 'button', onclick: () => draw.cancelDrawing(map) }, 'Cancel drawing');
  replace(container, h('p', { class: 'hint', role: 'status' },
    'Draw the new outline: click on the map to place the corners; click the first corner to finish.'), cancel);
  cancel.focus();
  o.track(() => draw.cancelDrawing(map));
  let drawn: Awaited<ReturnType<typeof draw.drawPolygon>> = null;
  try {
    drawn = await draw.drawPolygon(map);
  } catch (e) {
    replace(container, h('p', { class: 'form-error', role: 'alert' }, `Drawing is not available: ${String(e)}`));
  }
  o.track(null);
  if (!drawn) {
    o.restore();
    return;
  }
  const { geometry, layer } = drawn;
  const end = () => {
    layer.remove();
    o.mark(null);
    o.track(null);
  };
  o.track(end);
  const error = h('p', { class: 'field-error', id: `redraw-error-${o.plan.id}`, 'aria-live': 'polite' });
  const save = h('button', { type: 'submit' }, 'Save outline');
  const form = h('form', { 'aria-label': 'New outline', class: 'inline-form', 'aria-describedby': error.id },
    h('p', {}, 'New outline: drawn on the map'), error, save,
    h('button', { type: 'button', onclick: () => { end(); o.restore(); } }, 'Discard'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (save.disabled) return;
    error.textContent = '';
    o.mark(null);
    save.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      const plan = await api.redrawPlan(o.plan.id, geometry);
      end();
      await o.saved(plan);
    } catch (e) {
      error.textContent = e instanceof ApiError ? e.describe() : String(e);
      if (e instanceof ApiError && e.field === 'geometry') o.mark(e.message);
      save.focus();
    } finally {
      save.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });
  replace(container, form);
  save.focus();
}
