// A new planner's first visit, in real Chromium against a real server: the map with its
// boundary layers, signing up, a condition layer with its legend and metadata, drawing a
// plan with mouse clicks, reading its scores by band, and the plan's permalink surviving a
// reload and back/forward. No console error, no failed tile, no Leaflet tileerror.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, accessibilityViolations, leafletTileErrors, open, settled, shot, uniqueEmail,
} from './browser.mjs';

const BANDS = ['Poor', 'Fair', 'Ok', 'Good', 'Excellent'];

function bandOf(mean) {
  if (mean < -0.6) return 'Poor';
  if (mean < -0.2) return 'Fair';
  if (mean <= 0.2) return 'Ok';
  if (mean <= 0.6) return 'Good';
  return 'Excellent';
}

/** Waits until the condition layer's tiles have loaded and faded in. */
async function conditionTilesPainted(page) {
  await page.waitForFunction(() => {
    const imgs = [...document.querySelectorAll('.leaflet-conditions-pane img.leaflet-tile')];
    return imgs.length > 0 && imgs.every((i) => i.complete && i.classList.contains('leaflet-tile-loaded'));
  });
  await page.waitForTimeout(300);
}

test('a new user signs up, draws a plan, reads its scores and reloads its permalink', async (t) => {
  const { page, problems, close } = await open();
  t.after(close);

  // Zoom 10 over the Sierra Nevada: watersheds, the region outline, condition rasters.
  await page.goto(`${BASE}/?map=10/37.80000/-119.60000&layers=regions,watersheds`);
  await settled(page);
  await page.waitForFunction(() => document.querySelectorAll('.leaflet-boundaries-pane path').length > 10);

  // A boundary layer answers hover and click.
  const map = page.locator('#map');
  const box = await map.boundingBox();
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  await page.mouse.move(cx + 40, cy + 40);
  await page.waitForFunction(() =>
    [...document.querySelectorAll('.leaflet-boundaries-pane path')].some((p) => p.getAttribute('stroke') === '#e0661b'));
  await page.mouse.click(cx + 40, cy + 40);
  const popup = page.locator('.leaflet-popup .feature-popup');
  await popup.waitFor();
  assert.match(await popup.innerText(), /huc12|name/i);
  await shot(page, '01-boundaries-popup');
  await page.locator('.leaflet-popup-close-button').click();
  await popup.waitFor({ state: 'detached' });

  // Sign up.
  const email = uniqueEmail('planner');
  await page.getByRole('button', { name: 'Create an account' }).click();
  const signUp = page.getByRole('form', { name: 'Create an account' });
  await signUp.getByLabel('Name').fill('Ana Planner');
  await signUp.getByLabel('Email').fill(email);
  await signUp.getByLabel(/^Password/).fill('correct horse battery');
  await signUp.getByRole('button', { name: 'Create account' }).click();
  await settled(page);
  const signUpError = signUp.locator('.form-error');
  assert.equal((await signUpError.count()) ? await signUpError.innerText() : '', '', 'sign-up refused');
  await page.getByText('Signed in as').waitFor();
  assert.equal(await page.locator('#whoami').innerText(), 'Ana Planner');

  // A condition from the tree: search, show it, read its legend and metadata.
  await page.getByLabel('Search conditions').fill('total carbon');
  await page.getByLabel('Total Carbon', { exact: true }).check();
  await page.locator('.legend li').first().waitFor();
  await conditionTilesPainted(page);
  assert.match(await page.locator('.meta').innerText(), /Units|Source/);
  await page.getByLabel('Raw').check();
  await page.waitForFunction(() => location.search.includes('raw=1'));
  await page.locator('.legend h3', { hasText: '(raw)' }).waitFor();
  await conditionTilesPainted(page);
  await shot(page, '02-condition-raw');
  await page.getByLabel('Normalized (−1 to 1)').check();
  await conditionTilesPainted(page);

  // Click the map: the condition's value there (added to the boundary's popup), the
  // same value and band the point endpoint gives for that place.
  await page.mouse.click(cx - 150, cy + 100);
  const value = page.locator('.leaflet-popup .point-value[data-value=ready]');
  await value.waitFor();
  const text = await value.innerText();
  assert.match(text, /^Total Carbon: -?[\d.]+ \((Poor|Fair|Ok|Good|Excellent)\), normalized$/);
  const expected = await page.evaluate(async ([x, y]) => {
    const { map } = window.planscape;
    const rect = map.getContainer().getBoundingClientRect();
    const at = map.containerPointToLatLng([x - rect.left, y - rect.top]);
    // The shown layer, as the catalog names it.
    const find = (o) => (o && typeof o === 'object'
      ? (o.name === 'total_carbon' && o.layer ? o.layer : Object.values(o).map(find).find(Boolean))
      : undefined);
    const layer = find(await (await fetch('/planscape-backend/conditions')).json());
    const r = await fetch(`/tiles/${layer}/point?lon=${at.lng.toFixed(6)}&lat=${at.lat.toFixed(6)}`);
    return { layer, body: await r.json() };
  }, [cx - 150, cy + 100]);
  assert.ok(text.includes(`(${expected.body.band})`), `${text} vs ${JSON.stringify(expected.body)}`);
  const v = expected.body.value;
  assert.ok(text.includes(Number.isInteger(v) ? String(v) : v.toFixed(3)), `${text} vs ${v}`);
  await shot(page, '02b-point-value');
  await page.locator('.leaflet-popup-close-button').click();
  await page.locator('.leaflet-popup').waitFor({ state: 'detached' });

  // A self-crossing outline is refused: the reason beside the outline, the place marked.
  const draw = async (corners) => {
    await page.getByRole('button', { name: 'Draw a plan' }).click();
    await page.locator('.drawing').waitFor();
    for (const [dx, dy] of corners) {
      await page.mouse.click(cx + dx, cy + dy);
      await page.waitForTimeout(150);
    }
  };
  await draw([[-90, -70], [90, 70], [90, -70], [-90, 70], [-90, -70]]);
  const form = page.getByRole('form', { name: 'New plan' });
  await form.getByLabel('Plan name').fill('Bow tie');
  await form.getByRole('button', { name: 'Save plan' }).click();
  await form.locator('.field-error', { hasText: /self-intersection/i }).waitFor();
  await page.locator('.leaflet-tooltip', { hasText: 'The problem is here' }).waitFor();
  await shot(page, '03a-invalid-outline');
  await form.getByRole('button', { name: 'Discard' }).click();
  await page.locator('.leaflet-tooltip', { hasText: 'The problem is here' }).waitFor({ state: 'detached' });

  // Draw a plan: four corners, then the first corner again to close the outline.
  await draw([[-90, -70], [90, -70], [90, 70], [-90, 70], [-90, -70]]);
  await form.waitFor();
  await form.getByLabel('Plan name').fill('Yosemite west slope');
  await form.getByLabel('Region').selectOption('sierra_nevada');
  await shot(page, '03-plan-drawn');
  await form.getByRole('button', { name: 'Save plan' }).click();

  // The plan page: outline, acres, scores coloured by band.
  await page.waitForSelector('.plan-page[data-scores=ready]', { timeout: 60_000 });
  assert.match(page.url(), /[?&]plan=\d+/);
  const planUrl = page.url();
  assert.equal(await page.locator('.plan-page h2').innerText(), 'Yosemite west slope');
  const acres = Number((await page.locator('.plan-acres').innerText()).replace(/[^\d]/g, ''));
  assert.ok(acres > 10_000 && acres < 1_000_000, `plausible area: ${acres} acres`);
  assert.equal(await page.locator('.leaflet-plans-pane path').count(), 1, 'the outline is on the map');
  const rows = await page.locator('.score-table tbody tr[data-band]').evaluateAll((trs) =>
    trs.map((tr) => ({ band: tr.dataset.band, mean: Number(tr.dataset.mean) })));
  assert.ok(rows.length >= 10, `scores for the conditions: ${rows.length}`);
  for (const r of rows) {
    assert.ok(BANDS.includes(r.band));
    assert.equal(r.band, bandOf(r.mean), `band of ${r.mean}`);
  }
  await page.getByLabel('Sort scores').selectOption('score-desc');
  const sorted = (await page.locator('.score-table tbody tr[data-band]').evaluateAll((trs) =>
    trs.map((tr) => Number(tr.dataset.mean))));
  assert.deepEqual(sorted, [...sorted].sort((a, b) => b - a));
  await shot(page, '04-plan-scores');
  assert.deepEqual(await accessibilityViolations(page), [], 'WCAG 2 A/AA rules (axe-core)');

  // The permalink: a reload shows the same plan, and back/forward step through the choice.
  await page.reload();
  await settled(page);
  await page.waitForSelector('.plan-page[data-scores=ready]');
  assert.equal(page.url(), planUrl);
  assert.equal(await page.locator('.plan-page h2').innerText(), 'Yosemite west slope');
  assert.equal(await page.getByLabel('Total Carbon', { exact: true }).isChecked(), true);
  await page.goBack();
  await page.waitForFunction(() => !location.search.includes('plan='));
  await page.locator('.plan-page').waitFor({ state: 'hidden' });
  await page.goForward();
  await page.waitForSelector('.plan-page[data-scores=ready]');

  // The list shows it as the user's own.
  const item = page.locator('.plan-list li', { hasText: 'Yosemite west slope' });
  assert.match(await item.innerText(), /owner/);

  // Rename, then delete with confirmation.
  await page.getByRole('button', { name: 'Rename' }).click();
  await page.getByLabel('New name').fill('Yosemite west slope (v2)');
  await page.getByRole('button', { name: 'Save name' }).click();
  await page.locator('.plan-page h2', { hasText: '(v2)' }).waitFor();

  // The phone layout.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  await shot(page, '05-phone');
  await page.setViewportSize({ width: 1280, height: 800 });

  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.getByRole('button', { name: 'Delete for good' }).click();
  await page.waitForFunction(() => !location.search.includes('plan='));
  assert.equal(await page.locator('.plan-list li', { hasText: 'Yosemite' }).count(), 0);
  await settled(page);

  assert.deepEqual(problems.console, [], 'console errors');
  assert.deepEqual(problems.page, [], 'uncaught errors');
  assert.deepEqual(problems.tiles, [], 'failed tiles');
  assert.deepEqual(await leafletTileErrors(page), [], 'Leaflet tileerror events');
});
