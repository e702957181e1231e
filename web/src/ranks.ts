// Colours and labels of ranked project areas (pure: unit-tested without a browser).

/** Best to worst: ColorBrewer YlOrRd, dark red first. */
export const RANK_RAMP = ['#800026', '#bd0026', '#e31a1c', '#fc4e2a', '#fd8d3c', '#feb24c', '#fed976'];

/** The colour of rank `rank` (1 = best) of `count`: the ramp spread over the ranks,
 *  the best always the darkest and (from two areas) the last always the lightest. */
export function rankColor(rank: number, count: number): string {
  if (!(count > 1) || !(rank > 1)) return RANK_RAMP[0];
  const t = Math.min(1, (rank - 1) / (count - 1)) * (RANK_RAMP.length - 1);
  const i = Math.floor(t);
  if (i >= RANK_RAMP.length - 1) return RANK_RAMP[RANK_RAMP.length - 1];
  return mix(RANK_RAMP[i], RANK_RAMP[i + 1], t - i);
}

function mix(a: string, b: string, t: number): string {
  const c = (hex: string, k: number) => parseInt(hex.slice(1 + 2 * k, 3 + 2 * k), 16);
  const part = (k: number) => Math.round(c(a, k) + (c(b, k) - c(a, k)) * t).toString(16).padStart(2, '0');
  return `#${part(0)}${part(1)}${part(2)}`;
}

/** A share in (0, 1] as a percentage, e.g. 0.25 -> "25 %". */
export function formatShare(share: number | undefined): string {
  if (share === undefined || !Number.isFinite(share)) return '–';
  const p = share * 100;
  return `${Number.isInteger(p) ? p : p.toFixed(1)} %`;
}

/** A percentage typed by the user as the API's share: "25" -> 0.25 (NaN when not a number). */
export function parseShare(percent: string): number {
  const text = percent.trim();
  if (!text) return NaN;
  const p = Number(text);
  return Number.isFinite(p) ? p / 100 : NaN;
}

/** The API's field names (`priorities[2].weight`) split into the list and the index. */
export function priorityField(field: string): { index: number; part: 'condition' | 'weight' } | null {
  const m = /^priorities\[(\d+)\]\.(condition|weight)$/.exec(field);
  return m ? { index: Number(m[1]), part: m[2] as 'condition' | 'weight' } : null;
}
