// The dashboard's pure parts: round axis bounds, the default date range, and the
// `dashboard=1` URL state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { niceMax } from '../src/charts';
import { defaultRange } from '../src/day-range';
import { parse, serialize } from '../src/url-state';

test('axis bounds are 1, 2 or 5 times a power of ten, at least the largest value', () => {
  const cases: [number, number][] = [[0, 1], [1, 1], [3, 5], [7, 10], [12, 20], [49, 50], [51, 100], [0.3, 0.5], [2500, 5000]];
  for (const [max, expected] of cases) assert.equal(niceMax(max), expected, `niceMax(${max})`);
});

test('the default range is the 30 UTC days up to today', () => {
  assert.deepEqual(defaultRange(new Date('2026-03-01T23:30:00Z')), { from: '2026-01-31', to: '2026-03-01' });
  assert.deepEqual(defaultRange(new Date('2024-03-01T00:00:00Z')), { from: '2024-02-01', to: '2024-03-01' });
});

test('the dashboard is a URL state of its own', () => {
  const state = parse('?map=7/37.80000/-119.60000&dashboard=1');
  assert.equal(state.dashboard, true);
  assert.match(serialize(state), /dashboard=1/);
  assert.equal(parse('?dashboard=yes').dashboard, undefined);
  assert.doesNotMatch(serialize({ ...state, dashboard: undefined }), /dashboard/);
});
