// The dashboard's date range: UTC days as `YYYY-MM-DD`, as the analytics API takes them.

/** `YYYY-MM-DD` of a date (UTC). */
export function isoDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** The default range: the last 30 days, today included (UTC), as the API's default. */
export function defaultRange(now = new Date()): { from: string; to: string } {
  return { from: isoDay(new Date(now.getTime() - 29 * 86_400_000)), to: isoDay(now) };
}
