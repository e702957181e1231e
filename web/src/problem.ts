// Where an outline is invalid: PostGIS names the place in its reason, e.g.
// `geometry: is not valid: Self-intersection[-119.53 37.86]` (longitude, latitude). Pure.

/** The [latitude, longitude] an error message names, or null. */
export function problemAt(message: string): [number, number] | null {
  const m = /\[(-?\d+(?:\.\d+)?(?:e-?\d+)?) (-?\d+(?:\.\d+)?(?:e-?\d+)?)\]/i.exec(message);
  if (!m) return null;
  const lng = Number(m[1]);
  const lat = Number(m[2]);
  if (!Number.isFinite(lat) || !Number.isFinite(lng) || Math.abs(lat) > 90 || Math.abs(lng) > 180) return null;
  return [lat, lng];
}
