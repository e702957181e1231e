// Plans from files and redrawn outlines, in real Chromium against a real server: a zipped
// Shapefile in California Albers (EPSG:3310, made at test time with ogr2ogr, so the
// server's reprojection is exercised) and a GeoJSON file become plans whose pages open
// with their acres and scores; bad files (not a zip, points, too large) are refused
// beside the file input; the owner redraws a plan's outline with mouse clicks (acres and
// scores change) and a self-crossing outline is refused with its place marked on the map.
// At desktop and phone sizes; no console error, no failed tile, no Leaflet tileerror.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BASE, accessibilityViolations, leafletTileErrors, open, settled, shot, uniqueEmail,
} from './browser.mjs';

const API = `${BASE}/planscape-backend`;
const CSRF = { 'X-Planscape-CSRF': '1' };

// West of Yosemite Valley: 0.2° by 0.15° at 37.8° N, about 72,000 acres.
const SIERRA = {
  type: 'FeatureCollection',
  features: [{
    type: 'Feature', properties: { name: 'west slope' },
    geometry: {
      type: 'Polygon',
      coordinates: [[[-119.9, 37.7], [-119.7, 37.7], [-119.7, 37.85], [-119.9, 37.85], [-119.9, 37.7]]],
    },
  }],
};
const SIERRA_ACRES = 72_400;
// Near Lake Tahoe, as plain GeoJSON (longitude, latitude).
const TAHOE = {
  type: 'Feature', properties: {},
  geometry: {
    type: 'Polygon',
    coordinates: [[[-120.2, 38.8], [-120.05, 38.8], [-120.05, 38.9], [-120.2, 38.9], [-120.2, 38.8]]],
  },
};
const POINTS = {
  type: 'FeatureCollection',
  features: [[-119.8, 37.75], [-119.7, 37.8]].map((c) => ({
    type: 'Feature', properties: {}, geometry: { type: 'Point', coordinates: c },
  })),
};

/** The test's files in a temporary folder: the Shapefile zipped, GeoJSON, bad files. */
function makeFiles(dir) {
  const src = join(dir, 'sierra-4326.geojson');
  writeFileSync(src, JSON.stringify(SIERRA));
  const shp = join(dir, 'shp');
  mkdirSync(shp);
  execFileSync('ogr2ogr', ['-f', 'ESRI Shapefile', '-s_srs', 'EPSG:4326', '-t_srs', 'EPSG:3310',
    join(shp, 'sierra_west.shp'), src]);
  const zip = join(dir, 'sierra_west.zip');
  execFileSync('/usr/bin/python3', ['-c', `
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:
    for ext in ('shp', 'shx', 'dbf', 'prj'):
        z.write(f'{sys.argv[2]}/sierra_west.{ext}', f'sierra_west.{ext}')
`, zip, shp]);
  const prj = execFileSync('/usr/bin/python3', ['-c',
    'import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).read("sierra_west.prj").decode())', zip]).toString();
  assert.match(prj, /California_(Teale_)?Albers/i, 'the Shapefile is in California Albers');
  const files = {
    zip,
    geojson: join(dir, 'tahoe.geojson'),
    notZip: join(dir, 'notes.zip'),
    points: join(dir, 'points.geojson'),
    large: join(dir, 'large.geojson'),
  };
  writeFileSync(files.geojson, JSON.stringify(TAHOE));
  writeFileSync(files.notZip, 'These are notes, not a zipped Shapefile.\n');
  writeFileSync(files.points, JSON.stringify(POINTS));
  writeFileSync(files.large, Buffer.alloc(11 * 1024 * 1024, 32));
  return files;
}

async function signUp(context, name) {
  const r = await context.request.post(`${API}/auth/signup`, {
    headers: CSRF, data: { email: uniqueEmail(name.toLowerCase()), password: 'a long enough password', name },
  });
  assert.equal(r.status(), 201, await r.text());
  await context.addInitScript(() => localStorage.setItem('planscape.signedIn', '1'));
}

const acresOf = async (page) => Number((await page.locator('.plan-page .plan-acres').innerText()).replace(/[^\d]/g, ''));

/** The error line of the form's file input (named by its aria-describedby). */
async function fileError(form) {
  const input = form.getByLabel('Plan file');
  const ids = (await input.getAttribute('aria-describedby')).split(' ');
  return { input, error: form.locator(`[id="${ids[ids.length - 1]}"]`) };
}

test('plans from a zipped Shapefile and a GeoJSON file, bad files refused, an outline redrawn', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'planscape-e2e-upload-'));
  const files = makeFiles(dir);
  const { context, page, problems, close } = await open();
  t.after(async () => { await close(); rmSync(dir, { recursive: true, force: true }); });
  await signUp(context, 'Uma');

  await page.goto(`${BASE}/?map=8/37.80000/-119.80000&layers=regions`);
  await settled(page);
  await page.getByText('Signed in as').waitFor();

  // The form: name, region, the file with its hint; keyboard reachable, labelled.
  const uploadButton = page.getByRole('button', { name: 'Upload a plan' });
  await uploadButton.focus();
  await page.keyboard.press('Enter');
  const form = page.getByRole('form', { name: 'Upload a plan' });
  await form.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'name', 'focus on the name');
  const { input: fileInput, error: fileErrorLine } = await fileError(form);
  assert.equal(await fileInput.getAttribute('accept'), '.geojson,.json,.zip');
  assert.match(await form.innerText(), /GeoJSON or a zipped Shapefile \(\.zip with \.shp, \.shx, \.dbf, \.prj\)/);
  assert.equal(await form.getByLabel('Region').inputValue(), 'sierra_nevada');
  assert.deepEqual(await accessibilityViolations(page), [], 'WCAG 2 A/AA rules (axe-core), upload form');
  await shot(page, 'upload-01-form');

  // No file chosen: said beside the file input, nothing sent.
  await form.getByLabel('Plan name').fill('Nothing yet');
  await form.getByRole('button', { name: 'Upload plan' }).click();
  await fileErrorLine.filter({ hasText: 'Choose a GeoJSON file or a zipped Shapefile' }).waitFor();

  // Bad files: each refusal beside the file input, which is marked invalid.
  const refused = async (path, text) => {
    await fileInput.setInputFiles(path);
    await form.getByRole('button', { name: 'Upload plan' }).click();
    await fileErrorLine.filter({ hasText: text }).waitFor();
    await settled(page);
    assert.equal(await fileInput.getAttribute('aria-invalid'), 'true');
    assert.equal(await form.locator('.form-error').innerText(), '', 'not under the form');
  };
  await refused(files.notZip, 'The file is not a readable zip file');
  await shot(page, 'upload-02-not-a-zip');
  await refused(files.points, /Feature 1 is a point; only polygons make a planning area/i);
  await refused(files.large, /The file is larger than the server accepts \(10 MB; this one is 11 MB\)/);
  await shot(page, 'upload-03-too-large');
  assert.equal(await page.locator('.plan-list li', { hasText: 'Nothing yet' }).count(), 0, 'no plan made');

  // The zipped Shapefile (EPSG:3310): the plan page opens, the map fitted to it.
  await form.getByLabel('Plan name').fill('');
  await fileInput.setInputFiles(files.zip);
  assert.equal(await form.getByLabel('Plan name').inputValue(), 'sierra west', 'name from the file');
  await form.getByLabel('Plan name').fill('Sierra west (Shapefile)');
  await form.getByRole('button', { name: 'Upload plan' }).click();
  await page.waitForSelector('.plan-page[data-scores=ready]', { timeout: 60_000 });
  assert.equal(await form.count(), 0, 'the form is closed');
  assert.equal(await page.locator('.plan-page h2').innerText(), 'Sierra west (Shapefile)');
  assert.match(page.url(), /[?&]plan=\d+/);
  const shpAcres = await acresOf(page);
  assert.ok(Math.abs(shpAcres - SIERRA_ACRES) / SIERRA_ACRES < 0.03, `about ${SIERRA_ACRES} acres: ${shpAcres}`);
  const scoreRows = () => page.locator('.score-table tbody tr[data-band]').evaluateAll((trs) =>
    trs.map((tr) => Number(tr.dataset.mean)));
  const shpScores = await scoreRows();
  assert.ok(shpScores.length >= 10 && shpScores.every((m) => m >= -1 && m <= 1), `scores: ${shpScores}`);
  const fitted = await page.evaluate(() => {
    const { map } = window.planscape;
    const b = map.getBounds();
    // Reprojected back from California Albers: the corners of the GeoJSON it was made from.
    return { zoom: map.getZoom(), inView: b.contains([[37.7, -119.9], [37.85, -119.7]]), w: b.getWest(), e: b.getEast() };
  });
  assert.ok(fitted.inView && fitted.zoom >= 10, `fitted to the plan: ${JSON.stringify(fitted)}`);
  assert.equal(await page.locator('.leaflet-plans-pane path').count(), 1, 'the outline is on the map');
  await shot(page, 'upload-04-shapefile-plan');

  // A GeoJSON file, on a phone: the form under the map, the map fitted to the new plan.
  await page.setViewportSize({ width: 390, height: 844 });
  await uploadButton.click();
  await form.waitFor();
  await form.scrollIntoViewIfNeeded();
  assert.deepEqual(await accessibilityViolations(page), [], 'WCAG 2 A/AA rules (axe-core), phone');
  await form.getByLabel('Plan name').fill('Tahoe basin (GeoJSON)');
  await fileInput.setInputFiles(files.geojson);
  await shot(page, 'upload-05-phone-form');
  await form.getByRole('button', { name: 'Upload plan' }).click();
  await page.locator('.plan-page h2', { hasText: 'Tahoe basin (GeoJSON)' }).waitFor();
  await page.waitForSelector('.plan-page[data-scores=ready]', { timeout: 60_000 });
  const tahoeAcres = await acresOf(page);
  assert.ok(tahoeAcres > 25_000 && tahoeAcres < 40_000, `plausible area: ${tahoeAcres} acres`);
  assert.ok(await page.evaluate(() => window.planscape.map.getBounds().contains([[38.8, -120.2], [38.9, -120.05]])),
    'the phone map is fitted to the plan');
  await page.locator('.plan-page h2').scrollIntoViewIfNeeded();
  await shot(page, 'upload-06-phone-plan');
  await page.setViewportSize({ width: 1280, height: 800 });

  // Back to the Shapefile plan, then redraw its outline: a smaller square in the middle.
  await page.locator('.plan-list a', { hasText: 'Sierra west (Shapefile)' }).click();
  await page.waitForSelector('.plan-page[data-scores=ready]', { timeout: 60_000 });
  const box = await page.locator('#map').boundingBox();
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  const redraw = async (corners) => {
    await page.getByRole('button', { name: 'Redraw' }).click();
    await page.locator('.drawing').waitFor();
    await page.getByRole('button', { name: 'Cancel drawing' }).waitFor();
    for (const [dx, dy] of corners) {
      await page.mouse.click(cx + dx, cy + dy);
      await page.waitForTimeout(150);
    }
    const outline = page.getByRole('form', { name: 'New outline' });
    await outline.waitFor();
    return outline;
  };

  // A self-crossing outline: refused beside it, the place marked; discarded, nothing changed.
  let outline = await redraw([[-80, -60], [80, 60], [80, -60], [-80, 60], [-80, -60]]);
  await outline.getByRole('button', { name: 'Save outline' }).click();
  await outline.locator('.field-error', { hasText: /self-intersection/i }).waitFor();
  await page.locator('.leaflet-tooltip', { hasText: 'The problem is here' }).waitFor();
  await shot(page, 'upload-07-redraw-invalid');
  await outline.getByRole('button', { name: 'Discard' }).click();
  await page.locator('.leaflet-tooltip', { hasText: 'The problem is here' }).waitFor({ state: 'detached' });
  assert.equal(await acresOf(page), shpAcres);
  assert.equal(await page.locator('.leaflet-overlay-pane path').count(), 0, 'the discarded outline is gone');

  // A valid one: saved, the acres change, the scores are computed again.
  outline = await redraw([[-80, -60], [80, -60], [80, 60], [-80, 60], [-80, -60]]);
  await shot(page, 'upload-08-redrawn');
  const scoresAsked = page.waitForResponse((r) => /\/plans\/\d+\/scores$/.test(r.url()) && r.status() === 200, { timeout: 60_000 });
  await outline.getByRole('button', { name: 'Save outline' }).click();
  await scoresAsked;
  await page.waitForSelector('.plan-page[data-scores=ready]', { timeout: 60_000 });
  const redrawnAcres = await acresOf(page);
  assert.ok(redrawnAcres > 1_000 && redrawnAcres < shpAcres, `smaller: ${redrawnAcres} < ${shpAcres} acres`);
  const redrawnScores = await scoreRows();
  assert.ok(redrawnScores.length >= 10);
  assert.notDeepEqual(redrawnScores, shpScores, 'the scores are those of the new outline');
  assert.equal(await page.locator('.leaflet-plans-pane path').count(), 1, 'one outline on the map');
  assert.equal(await page.locator('.leaflet-overlay-pane path').count(), 0, 'no drawing left over');
  assert.match(await page.locator('.plan-list li', { hasText: 'Sierra west' }).innerText(),
    new RegExp(redrawnAcres.toLocaleString('en-US')));
  await shot(page, 'upload-09-redrawn-scores');

  // Redraw on a phone: the tools under the map, the outline drawn on the map above.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole('button', { name: 'Redraw' }).click();
  await page.locator('.drawing').waitFor();
  await page.getByRole('button', { name: 'Cancel drawing' }).scrollIntoViewIfNeeded();
  await shot(page, 'upload-10-phone-redraw');
  await page.getByRole('button', { name: 'Cancel drawing' }).click();
  await page.getByRole('button', { name: 'Redraw' }).waitFor();
  assert.equal(await page.locator('.drawing').count(), 0, 'drawing ended');
  await page.setViewportSize({ width: 1280, height: 800 });
  await settled(page);

  // The upload form closes with Cancel.
  await uploadButton.click();
  await form.getByRole('button', { name: 'Cancel' }).click();
  assert.equal(await form.count(), 0);

  assert.deepEqual(problems.console, [], 'console errors');
  assert.deepEqual(problems.page, [], 'uncaught errors');
  assert.deepEqual(problems.tiles, [], 'failed tiles');
  assert.deepEqual(await leafletTileErrors(page), [], 'Leaflet tileerror events');
});
