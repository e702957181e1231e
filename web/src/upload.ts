// "Upload a plan": a plan from a file, GeoJSON or a zipped Shapefile, sent as
// multipart/form-data (`POST /plans/upload`). The API's 422 goes beside the field it
// names (file, name, region); a 413 beside the file input with the limit.
import { ApiError, api, type Plan, type Region } from './api';
import { h } from './dom';
import { FormErrors, field, regionField, withHint } from './form';

export const ACCEPT = '.geojson,.json,.zip';
export const FILE_HINT = 'GeoJSON or a zipped Shapefile (.zip with .shp, .shx, .dbf, .prj)';
/** The server's upload limit: `accounts.max_upload_kb` by default (10 MiB), which the
 *  deployment's nginx allows too (`client_max_body_size 10m`). The API does not publish it. */
export const UPLOAD_LIMIT_BYTES = 10 * 1024 * 1024;

const MB = 1024 * 1024;

function megabytes(bytes: number): string {
  const mb = bytes / MB;
  return mb >= 10 ? String(Math.round(mb)) : String(Math.round(mb * 10) / 10);
}

/** The 413 message, with the limit and (when known) the file's size. */
export function tooLargeMessage(fileBytes?: number): string {
  const size = fileBytes ? `; this one is ${megabytes(fileBytes)} MB` : '';
  return `The file is larger than the server accepts (${megabytes(UPLOAD_LIMIT_BYTES)} MB${size}).`;
}

// The verbs the API's file refusals start with ("file: is empty", "file: holds no polygons").
const FILE_VERBS = /^(is|has|holds|unzips|mixes|covers|must|cannot)\b/;

/** An API refusal of the file as a sentence: "file: is empty" → "The file is empty". */
export function fileMessage(message: string): string {
  const text = message.replace(/^file: /, '');
  if (FILE_VERBS.test(text)) return `The file ${text}`;
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The file name without its extension: the plan's name when none is given. */
export function nameFromFile(fileName: string): string {
  return fileName.replace(/\.(geo)?json$|\.zip$/i, '').replace(/[_]+/g, ' ').trim();
}

export interface UploadOptions {
  regions: Region[];
  hasConditions: (region: string) => boolean;
  /** The plan was created. */
  created: (plan: Plan) => Promise<void> | void;
  /** The form was closed without a plan. */
  closed: () => void;
  /** Marks on the map the place an error names (if it names one); clears it with null. */
  mark: (message: string | null) => void;
}

/** The upload form; `focus()` puts the focus on its first field. */
export function uploadForm(o: UploadOptions): { element: HTMLFormElement; focus: () => void } {
  const name = field('Plan name', 'name');
  const region = regionField(o.regions, o.hasConditions);
  const file = withHint(field('Plan file', 'file', 'file'), FILE_HINT);
  file.input.accept = ACCEPT;
  const errors = new FormErrors([file, name, region]);
  const submit = h('button', { type: 'submit' }, 'Upload plan');
  const cancel = h('button', { type: 'button', onclick: () => { o.mark(null); o.closed(); } }, 'Cancel');
  const form = h('form', { 'aria-label': 'Upload a plan', class: 'upload-form', novalidate: true },
    h('h3', {}, 'Upload a plan'), name.wrap, region.wrap, file.wrap, errors.formError, submit, cancel);

  file.input.addEventListener('change', () => {
    const chosen = file.input.files?.[0];
    errors.clear();
    if (chosen && !name.input.value.trim()) name.input.value = nameFromFile(chosen.name);
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (submit.disabled) return;
    errors.clear();
    o.mark(null);
    const chosen = file.input.files?.[0];
    if (!chosen) {
      errors.show(new ApiError(422, 'invalid_field', 'Choose a GeoJSON file or a zipped Shapefile.', 'file'));
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Uploading…';
    form.setAttribute('aria-busy', 'true');
    try {
      const plan = await api.uploadPlan(name.input.value.trim(), region.input.value, chosen);
      await o.created(plan);
    } catch (e) {
      errors.show(uploadError(e, chosen.size));
      if (e instanceof ApiError && e.status === 422) o.mark(e.message);
    } finally {
      submit.disabled = false;
      submit.textContent = 'Upload plan';
      form.removeAttribute('aria-busy');
    }
  });
  return { element: form, focus: () => name.input.focus() };
}

/** What to show for a failed upload, and beside which field. */
export function uploadError(e: unknown, fileBytes: number): unknown {
  if (!(e instanceof ApiError)) return e;
  // A body over the limit: 413 from the server or nginx, or (when the connection is
  // closed while the body is still sent) no answer at all.
  if (e.status === 413 || (e.status === 0 && fileBytes > UPLOAD_LIMIT_BYTES)) {
    return new ApiError(413, 'body_too_large', tooLargeMessage(fileBytes), 'file');
  }
  if (e.field === 'file') return new ApiError(e.status, e.code, fileMessage(e.message), 'file', e.retryAfter);
  return e;
}
