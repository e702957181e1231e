// The URL state: what a permalink holds, and what a hand-edited URL cannot break.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, serialize } from '../src/url-state';

test('a full state survives the round trip through the query string', () => {
  const state = {
    view: { zoom: 10, lat: 37.8, lng: -119.6 }, layers: ['regions', 'watersheds'],
    condition: 'sierra_nevada/total_carbon', raw: true, opacity: 0.5, basemap: 'plain', plan: 42,
    scenario: 7,
  };
  const search = serialize(state);
  assert.equal(search,
    '?map=10/37.80000/-119.60000&layers=regions,watersheds&condition=sierra_nevada/total_carbon&raw=1&opacity=0.5&basemap=plain&plan=42&scenario=7');
  assert.deepEqual(parse(search), state);
});

test('defaults are left out of the URL', () => {
  assert.equal(serialize({ raw: false, opacity: 0.75 }), '');
  assert.deepEqual(parse(''), { raw: false, opacity: 0.75 });
});

test('an empty layer list is kept (all boundaries off), an absent one means the default', () => {
  assert.deepEqual(parse('?layers=').layers, []);
  assert.equal(parse('?map=5/1/2').layers, undefined);
});

test('bad values are ignored', () => {
  assert.deepEqual(parse('?map=5/100/2&plan=-3&opacity=7&condition=nope'), { raw: false, opacity: 0.75 });
  assert.equal(parse('?plan=1.5').plan, undefined);
  assert.equal(parse('?map=a/b/c').view, undefined);
});

test('a scenario belongs to a plan: without one it is dropped', () => {
  assert.equal(parse('?scenario=3').scenario, undefined);
  assert.equal(serialize({ raw: false, opacity: 0.75, scenario: 3 }), '');
  assert.equal(parse('?plan=2&scenario=3').scenario, 3);
  assert.equal(parse('?plan=2&scenario=0').scenario, undefined);
});
