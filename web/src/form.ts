// Form fields with their error line, and API errors put beside the field they name.
import { ApiError } from './api';
import { h, uid } from './dom';

export interface Field { wrap: HTMLElement; input: HTMLInputElement; error: HTMLElement }

export function field(label: string, name: string, type = 'text', autocomplete?: string): Field {
  const id = uid(name);
  const error = h('p', { class: 'field-error', id: `${id}-error`, 'aria-live': 'polite' });
  const input = h('input', {
    id, name, type, autocomplete, required: true, 'aria-describedby': `${id}-error`,
  });
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, label), input, error);
  return { wrap, input, error };
}

/** A form's error display: one line per field, one for the whole form. */
export class FormErrors {
  readonly formError = h('p', { class: 'form-error', role: 'alert' });

  constructor(private fields: Field[]) {}

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
