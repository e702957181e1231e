// The upload form's messages and the place an invalid outline's error names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../src/api';
import { problemAt } from '../src/problem';
import { fileMessage, nameFromFile, tooLargeMessage, uploadError } from '../src/upload';

test('the place PostGIS names in an invalid outline, as [lat, lng]', () => {
  assert.deepEqual(problemAt('geometry: is not valid: Self-intersection[-119.53 37.86]'), [37.86, -119.53]);
  assert.deepEqual(problemAt('file: is not valid: Ring Self-intersection[-120 38]'), [38, -120]);
  assert.equal(problemAt('file: feature 1 has an invalid polygon (self-intersecting or badly nested rings)'), null);
  assert.equal(problemAt('geometry: is not valid: Self-intersection[500 37]'), null);
});

test('file refusals read as sentences', () => {
  assert.equal(fileMessage('file: is not a readable zip file'), 'The file is not a readable zip file');
  assert.equal(fileMessage('file: holds no polygons'), 'The file holds no polygons');
  assert.equal(fileMessage('file: feature 1 is a POINT; only polygons make a planning area'),
    'Feature 1 is a POINT; only polygons make a planning area');
  assert.equal(fileMessage('file: the zip has no .prj beside a.shp'), 'The zip has no .prj beside a.shp');
});

test('a plan name from the file name', () => {
  assert.equal(nameFromFile('yosemite_west.zip'), 'yosemite west');
  assert.equal(nameFromFile('Area.GeoJSON'), 'Area');
  assert.equal(nameFromFile('a.json'), 'a');
});

test('a body over the limit goes beside the file with the limit', () => {
  assert.equal(tooLargeMessage(), 'The file is larger than the server accepts (10 MB).');
  const e = uploadError(new ApiError(413, 'http_413', '413 Request Entity Too Large'), 12.3 * 1024 * 1024) as ApiError;
  assert.equal(e.field, 'file');
  assert.equal(e.describe(), 'The file is larger than the server accepts (10 MB; this one is 12 MB).');
  // The connection closed while a too large body was still being sent.
  assert.equal((uploadError(new ApiError(0, 'network', 'network error'), 11 * 1024 * 1024) as ApiError).field, 'file');
  assert.equal((uploadError(new ApiError(0, 'network', 'network error'), 1000) as ApiError).field, undefined);
  const name = new ApiError(422, 'invalid_field', 'name: is required', 'name');
  assert.equal(uploadError(name, 10), name);
});
