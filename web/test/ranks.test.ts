// Project-area colours by rank, shares as percentages, the API's priority field names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RANK_RAMP, formatShare, parseShare, priorityField, rankColor } from '../src/ranks';

test('the best rank is the darkest and the last the lightest, whatever the count', () => {
  for (const n of [2, 3, 5, 7, 12, 100]) {
    assert.equal(rankColor(1, n), RANK_RAMP[0]);
    assert.equal(rankColor(n, n), RANK_RAMP[RANK_RAMP.length - 1]);
  }
  assert.equal(rankColor(1, 1), RANK_RAMP[0]);
  assert.equal(rankColor(4, 7), RANK_RAMP[3]);
});

test('colours go from dark to light, rank by rank', () => {
  const lightness = (c: string) => [1, 3, 5].reduce((a, i) => a + parseInt(c.slice(i, i + 2), 16), 0);
  const colours = Array.from({ length: 20 }, (_, i) => rankColor(i + 1, 20));
  for (const c of colours) assert.match(c, /^#[0-9a-f]{6}$/);
  for (let i = 1; i < colours.length; i++) assert.ok(lightness(colours[i]) >= lightness(colours[i - 1]), colours.join());
});

test('shares: percentages in, shares out', () => {
  assert.equal(parseShare('25'), 0.25);
  assert.equal(parseShare(' 100 '), 1);
  assert.ok(Number.isNaN(parseShare('')));
  assert.ok(Number.isNaN(parseShare('a lot')));
  assert.equal(formatShare(0.25), '25 %');
  assert.equal(formatShare(0.125), '12.5 %');
  assert.equal(formatShare(undefined), '–');
});

test('priority field names', () => {
  assert.deepEqual(priorityField('priorities[3].weight'), { index: 3, part: 'weight' });
  assert.deepEqual(priorityField('priorities[0].condition'), { index: 0, part: 'condition' });
  assert.equal(priorityField('priorities'), null);
  assert.equal(priorityField('name'), null);
});
