// The five bands of a normalized score, at and around every boundary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { band } from '../src/scores';

test('bands: Poor [-1,-0.6), Fair [-0.6,-0.2), Ok [-0.2,0.2], Good (0.2,0.6], Excellent (0.6,1]', () => {
  const cases: [number, string][] = [
    [-1, 'Poor'], [-0.61, 'Poor'], [-0.6, 'Fair'], [-0.21, 'Fair'], [-0.2, 'Ok'], [0, 'Ok'],
    [0.2, 'Ok'], [0.2000001, 'Good'], [0.6, 'Good'], [0.6000001, 'Excellent'], [1, 'Excellent'],
  ];
  for (const [mean, expected] of cases) assert.equal(band(mean), expected, `band(${mean})`);
});
