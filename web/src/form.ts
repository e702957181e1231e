// Form fields with their error line, and API errors put beside the field they name.
import { ApiError, type Region } from './api';
import { h, uid } from './dom';

type Control = HTMLInputElement | HTMLSelectElement;
export interface Field<C extends Control = HTMLInputElement> { wrap: HTMLElement; input: C; error: HTMLElement }

export function field(label: string, name: string, type = 'text', autocomplete?: string): Field {
  const id = uid(name);
  const error = h('p', { class: 'field-error', id: `${id}-error`, 'aria-live': 'polite' });
  const input = h('input', {
    id, name, type, autocomplete, required: true, 'aria-describedby': `${id}-error`,
  });
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, label), input, error);
  return { wrap, input, error };
}

/** A hint under a field's input, read out with it. */
export function withHint<C extends Control>(f: Field<C>, text: string): Field<C> {
  const hint = h('p', { class: 'hint field-hint', id: `${f.input.id}-hint` }, text);
  f.input.after(hint);
  f.input.setAttribute('aria-describedby', `${hint.id} ${f.error.id}`);
  return f;
}

/** The region select of the plan forms: the first region with conditions chosen. */
export function regionField(regions: Region[], hasConditions: (slug: string) => boolean): Field<HTMLSelectElement> {
  const id = uid('region');
  const error = h('p', { class: 'field-error', id: `${id}-error`, 'aria-live': 'polite' });
  const input = h('select', { id, name: 'region', 'aria-describedby': `${id}-error` },
    ...regions.map((r) => h('option', { value: r.slug }, r.name)));
  const preferred = regions.find((r) => hasConditions(r.slug));
  if (preferred) input.value = preferred.slug;
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, 'Region'), input, error);
  return { wrap, input, error };
}

/** A form's error display: one line per field, one for the whole form. */
export class FormErrors {
  readonly formError = h('p', { class: 'form-error', role: 'alert' });

  constructor(private fields: Field<Control>[]) {}

  clear(): void {
    this.formError.textContent = '';
    for (const f of this.fields) {
      f.error.textContent = '';
      f.input.removeAttribute('aria-invalid');
    }
  }

  /** Shows an error beside the field the API names, else for the whole form. */
  show(e: unknown): void {
    this.clear();
    const message = e instanceof ApiError ? e.describe() : String(e);
    const name = e instanceof ApiError ? e.field : undefined;
    const f = name ? this.fields.find((x) => x.input.name === name) : undefined;
    if (f) {
      f.error.textContent = message;
      f.input.setAttribute('aria-invalid', 'true');
      f.input.focus();
    } else {
      this.formError.textContent = message;
    }
  }
}
