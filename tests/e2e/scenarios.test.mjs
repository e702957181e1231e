// Scenarios, as a planner runs them from a plan's page: the form refuses what the API
// refuses, beside the field it names; a run's status is polled until done; its ranked
// project areas come as private vector tiles coloured by rank, with a table whose rows
// highlight them on the map and a click on the map selecting the row; the scenario is in
// the permalink (reload, back/forward); a second scenario with an area left out (drawn on
// the map) is compared with the first, then deleted with confirmation. The account and the
// plan are made through the API (the drawing screen has a test of its own). The downloads
// (GeoJSON, zipped Shapefile, CSV) are clicked as a planner would and the files opened with
// GDAL's `ogrinfo`: every project area is in them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BASE, accessibilityViolations, leafletTileErrors, open, settled, shot, uniqueEmail,
} from './browser.mjs';

const API = `${BASE}/planscape-backend`;
const CSRF = { 'X-Planscape-CSRF': '1' };
// About 14,000 acres of the Sierra Nevada demo region.
const AREA = {
  type: 'Polygon',
  coordinates: [[[-119.65, 37.77], [-119.55, 37.77], [-119.55, 37.83], [-119.65, 37.83], [-119.65, 37.77]]],
};
const HIGHLIGHT = '#0b3d91';

async function signUp(context, name) {
  const email = uniqueEmail(name.toLowerCase());
  const r = await context.request.post(`${API}/auth/signup`, {
    headers: CSRF, data: { email, password: 'a long enough password', name },
  });
  assert.equal(r.status(), 201, await r.text());
  await context.addInitScript(() => localStorage.setItem('planscape.signedIn', '1'));
  return email;
}

/** The error line of a control (its aria-describedby). */
async function errorOf(page, control) {
  return page.locator(`#${await control.getAttribute('aria-describedby')}`).innerText();
}

/** A point of the map where a project area is the topmost element, or null. */
async function pointOnArea(page) {
  return page.evaluate(() => {
    for (const path of document.querySelectorAll('.leaflet-scenarios-pane path.leaflet-interactive')) {
      const r = path.getBoundingClientRect();
      for (let i = 1; i < 8; i++) {
        for (let j = 1; j < 8; j++) {
          const x = r.left + (r.width * i) / 8;
          const y = r.top + (r.height * j) / 8;
          if (document.elementFromPoint(x, y) === path) return { x, y };
        }
      }
    }
    return null;
  });
}

test('a planner runs scenarios, reads their ranked project areas, compares them and deletes one', async (t) => {
  const { context, page, problems, close } = await open();
  t.after(close);
  await signUp(context, 'Sam');
  const created = await context.request.post(`${API}/plans`, {
    headers: CSRF, data: { name: 'Scenario ridge', region: 'sierra_nevada', geometry: AREA },
  });
  assert.equal(created.status(), 201, await created.text());
  const plan = await created.json();

  await page.goto(`${BASE}/?map=13/37.80000/-119.60000&plan=${plan.id}`);
  await settled(page);
  await page.waitForSelector('.plan-page[data-scores=ready]');
  const panel = page.locator('section.scenarios');
  await panel.getByText('No scenarios yet.').waitFor();

  // The form: two priorities from the conditions tree, each with its weight slider.
  await page.getByRole('button', { name: 'New scenario' }).click();
  const form = page.getByRole('form', { name: 'New scenario' });
  await form.getByLabel('Scenario name').fill('Carbon first');
  for (const condition of ['sierra_nevada/total_carbon', 'sierra_nevada/large_tree_carbon']) {
    await form.getByLabel('Condition', { exact: true }).selectOption(condition);
    await form.getByRole('button', { name: 'Add priority' }).click();
  }
  const carbon = form.getByLabel('Weight of Total Carbon');
  const trees = form.getByLabel('Weight of Large Tree Carbon');
  assert.equal(await form.locator('.priorities li').count(), 2);

  // What the API refuses is shown beside the field it names.
  await carbon.fill('0');
  await trees.fill('0');
  await form.getByRole('button', { name: 'Run scenario' }).click();
  const condition = form.getByLabel('Condition', { exact: true });
  await page.waitForFunction(() => document.querySelector('.priority-set > .field-error')?.textContent);
  assert.match(await errorOf(page, condition), /all zero/);
  await carbon.fill('8');
  await trees.fill('3');
  const stand = form.getByLabel('Stand size');
  await stand.selectOption('500');
  await form.getByLabel(/^Treatment share/).fill('1');
  await form.getByRole('button', { name: 'Run scenario' }).click();
  await page.waitForFunction(() => document.querySelector('select[name=stand_size_acres][aria-invalid=true]'));
  assert.match(await errorOf(page, stand), /budget/);
  assert.equal(await errorOf(page, condition), '', 'the earlier error is cleared');
  await shot(page, '10-scenario-form-error');

  // A valid scenario runs; its status is polled until done.
  await stand.selectOption('100');
  await form.getByLabel(/^Treatment share/).fill('30');
  await form.getByLabel(/^Number of project areas/).fill('4');
  await page.evaluate(() => {
    window.seenStatuses = [];
    new MutationObserver(() => {
      const s = document.querySelector('.scenario-detail')?.dataset.status;
      if (s && window.seenStatuses.at(-1) !== s) window.seenStatuses.push(s);
    }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['data-status'] });
  });
  const polls = [];
  page.on('request', (r) => { if (/\/planscape-backend\/scenarios\/\d+$/.test(r.url())) polls.push(r.url()); });
  await form.getByRole('button', { name: 'Run scenario' }).click();
  await page.waitForFunction(() => /[?&]scenario=\d+/.test(location.search));
  const sid = Number(new URL(page.url()).searchParams.get('scenario'));
  const detail = page.locator('.scenario-detail');
  await detail.locator('.run-status').waitFor();
  if (await detail.locator('.spinner').count()) await shot(page, '11-scenario-running');
  await page.waitForSelector('.scenario-detail[data-status=done]', { timeout: 180_000 });
  const statuses = await page.evaluate(() => window.seenStatuses);
  assert.equal(statuses.at(-1), 'done');
  for (const s of statuses.slice(0, -1)) assert.ok(['pending', 'running'].includes(s), `status ${s}`);
  assert.ok(polls.length >= 1, 'the scenario was read');
  assert.equal(await form.count(), 0, 'the form closed');
  assert.match(await panel.locator(`.scenario-list li[data-scenario="${sid}"]`).innerText(), /Carbon first[\s\S]*Done/);

  // The project areas: tiles on the map, the table as the API has them, best first.
  await page.waitForSelector('.scenario-detail[data-tiles=loaded]');
  await page.waitForFunction(() => document.querySelectorAll('.leaflet-scenarios-pane path').length > 0);
  const first = await (await context.request.get(`${API}/scenarios/${sid}`)).json();
  const n = first.project_areas.features.length;
  assert.ok(n >= 1 && n <= 4, `project areas: ${n} (at most 4 asked)`);
  const rows = await detail.locator('.area-table tbody tr').evaluateAll((trs) =>
    trs.map((tr) => ({ rank: Number(tr.dataset.rank), score: Number(tr.cells[1].textContent) })));
  assert.deepEqual(rows.map((r) => r.rank), first.project_areas.features.map((f) => f.properties.rank));
  assert.deepEqual(rows.map((r) => r.rank), Array.from({ length: n }, (_, i) => i + 1));
  for (let i = 1; i < n; i++) assert.ok(rows[i].score <= rows[i - 1].score, 'ranked by score');
  // The downloads, clicked: files GDAL opens, with every project area.
  const downloads = mkdtempSync(join(tmpdir(), 'planscape-export-'));
  for (const [format, ext] of [['geojson', 'geojson'], ['shapefile', 'zip'], ['csv', 'csv']]) {
    const link = detail.locator(`a[data-format=${format}]`);
    assert.equal(await link.getAttribute('href'), `/planscape-backend/scenarios/${sid}/export?format=${format}`);
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    assert.equal(download.suggestedFilename(), `scenario-${sid}-project-areas.${ext}`);
    const file = join(downloads, download.suggestedFilename());
    await download.saveAs(file);
    const info = execFileSync('ogrinfo', ['-ro', '-al', '-so', ext === 'zip' ? `/vsizip/${file}` : file], { encoding: 'utf8' });
    assert.match(info, new RegExp(`Feature Count: ${n}\\b`), `${format}: ${info}`);
    assert.match(info, format === 'csv' ? /rank: String/ : /rank: Integer/, `${format}: ${info}`);
    if (format !== 'csv') assert.match(info, /WGS 84|WGS_1984/, `${format}: ${info}`);
  }
  rmSync(downloads, { recursive: true, force: true });

  // A row highlights its area on the map; a click on the map selects the area's row.
  await detail.getByRole('button', { name: 'Project area 1: show on the map' }).click();
  assert.equal(await detail.locator('tr[data-rank="1"] button').getAttribute('aria-pressed'), 'true');
  await page.waitForFunction((c) =>
    [...document.querySelectorAll('.leaflet-scenarios-pane path')].some((p) => p.getAttribute('stroke') === c), HIGHLIGHT);
  const at = await pointOnArea(page);
  assert.ok(at, 'a project area can be clicked on the map');
  await page.mouse.click(at.x, at.y);
  const popup = page.locator('.leaflet-popup .area-popup');
  await popup.waitFor();
  const rank = Number(/Project area (\d+)/.exec(await popup.innerText())[1]);
  assert.match(await popup.innerText(), /Score[\s\S]*Acres[\s\S]*Stands/);
  assert.equal(await detail.locator(`tr[data-rank="${rank}"] button`).getAttribute('aria-pressed'), 'true');
  await page.waitForTimeout(300); // the popup fades in
  await shot(page, '12-scenario-done');
  await page.locator('.leaflet-popup-close-button').click();

  // The permalink holds the scenario: reload, back, forward.
  const scenarioUrl = page.url();
  await page.reload();
  await settled(page);
  await page.waitForSelector('.scenario-detail[data-status=done][data-tiles=loaded]');
  assert.equal(page.url(), scenarioUrl);
  assert.equal(await detail.locator('.area-table tbody tr').count(), n);
  await page.goBack();
  await page.waitForFunction(() => !location.search.includes('scenario=') && location.search.includes('plan='));
  await detail.waitFor({ state: 'hidden' });
  assert.equal(await page.locator('.leaflet-scenarios-pane path').count(), 0, 'the areas left the map');
  await page.goForward();
  await page.waitForSelector('.scenario-detail[data-status=done][data-tiles=loaded]');

  // A second scenario: one priority, a pillar, and an area left out, drawn on the map.
  await page.getByRole('button', { name: 'New scenario' }).click();
  await form.getByLabel('Scenario name').fill('Biodiversity, west left out');
  await form.getByLabel('Condition', { exact: true }).selectOption('sierra_nevada/biodiversity');
  await form.getByRole('button', { name: 'Add priority' }).click();
  await form.getByLabel(/^Number of project areas/).fill('2');
  await form.getByRole('button', { name: 'Draw an area to leave out' }).click();
  await page.locator('.drawing').waitFor();
  const box = await page.locator('#map').boundingBox();
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  for (const [dx, dy] of [[-260, -160], [-140, -160], [-140, 160], [-260, 160], [-260, -160]]) {
    await page.mouse.click(cx + dx, cy + dy);
    await page.waitForTimeout(150);
  }
  await form.locator('.exclusions li', { hasText: 'Area 1' }).waitFor();
  await form.getByRole('button', { name: 'Run scenario' }).click();
  await page.waitForFunction((id) => {
    const s = new URL(location.href).searchParams.get('scenario');
    return s && Number(s) !== id;
  }, sid);
  const sid2 = Number(new URL(page.url()).searchParams.get('scenario'));
  await page.waitForSelector('.scenario-detail[data-status=done][data-tiles=loaded]', { timeout: 180_000 });
  const second = await (await context.request.get(`${API}/scenarios/${sid2}`)).json();
  assert.equal(second.config.exclude.type, 'Polygon', 'the drawn area went with the request');
  assert.match(await detail.locator('.facts').first().innerText(), /Left out\s+areas drawn on the map/);
  assert.equal(await detail.locator('.area-table tbody tr').count(), second.project_areas.features.length);
  assert.ok(second.project_areas.features.length <= 2);

  // Compare the two side by side.
  await detail.getByLabel('Compare with').selectOption({ label: 'Carbon first' });
  const compare = detail.locator('.compare-table');
  await compare.waitFor();
  const heads = await compare.locator('thead th').allInnerTexts();
  assert.deepEqual(heads, ['Biodiversity, west left out', 'Carbon first']);
  const compareRows = await compare.locator('tbody tr').count();
  assert.equal(compareRows, 9 + Math.max(n, second.project_areas.features.length));
  assert.match(await compare.innerText(), /Project areas\s+\d+ of at most 2\s+\d+ of at most 4/);
  await detail.locator('.compare').scrollIntoViewIfNeeded();
  await shot(page, '13-scenario-compare');
  assert.deepEqual(await accessibilityViolations(page), [], 'WCAG 2 A/AA rules (axe-core)');

  // The phone layout: the map on top, the scenario's table below.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  await detail.locator('.area-table').scrollIntoViewIfNeeded();
  await shot(page, '14-scenario-phone');
  await page.getByRole('button', { name: 'New scenario' }).click();
  await form.getByLabel('Condition', { exact: true }).selectOption('sierra_nevada/total_carbon');
  await form.getByRole('button', { name: 'Add priority' }).click();
  await form.getByLabel('Stand size').scrollIntoViewIfNeeded();
  await shot(page, '15-scenario-form-phone');
  await form.getByRole('button', { name: 'Cancel' }).click();
  await form.waitFor({ state: 'detached' });
  await page.setViewportSize({ width: 1280, height: 800 });

  // A viewer of the plan sees the scenarios and their areas, and no control to change them.
  const viewer = await open();
  t.after(viewer.close);
  const viewerEmail = await signUp(viewer.context, 'Vera');
  const invited = await context.request.post(`${API}/plans/${plan.id}/members`, {
    headers: CSRF, data: { email: viewerEmail, role: 'viewer' },
  });
  assert.equal(invited.status(), 201, await invited.text());
  // The viewer accepts (the invitations screen has a test of its own: sharing).
  const waiting = await (await viewer.context.request.get(`${API}/invitations`)).json();
  const invitation = waiting.find((i) => i.plan_id === plan.id);
  const accepted = await viewer.context.request.post(`${API}/invitations/${invitation.id}/accept`, { headers: CSRF });
  assert.equal(accepted.status(), 200, await accepted.text());
  const v = viewer.page;
  await v.goto(`${BASE}/?map=13/37.80000/-119.60000&plan=${plan.id}&scenario=${sid}`);
  await settled(v);
  await v.waitForSelector('.scenario-detail[data-status=done][data-tiles=loaded]');
  assert.equal(await v.locator('.scenario-detail .area-table tbody tr').count(), n);
  await v.waitForFunction(() => document.querySelectorAll('.leaflet-scenarios-pane path').length > 0);
  assert.equal(await v.locator('.scenario-list li').count(), 2);
  for (const name of ['New scenario', 'Delete scenario']) {
    assert.equal(await v.getByRole('button', { name, exact: true }).count(), 0, `no ${name} button for a viewer`);
  }
  await v.getByText('Viewers see the scenarios').waitFor();
  await settled(v);
  assert.deepEqual(viewer.problems.console, [], 'console errors (viewer)');
  assert.deepEqual(viewer.problems.tiles, [], 'failed tiles (viewer)');

  // Delete the second, with confirmation.
  await detail.getByRole('button', { name: 'Delete scenario' }).click();
  await detail.getByRole('alertdialog').getByRole('button', { name: 'Delete for good' }).click();
  await page.waitForFunction(() => !location.search.includes('scenario='));
  await panel.locator('.scenario-list li').first().waitFor();
  assert.equal(await panel.locator('.scenario-list li').count(), 1);
  assert.equal(await panel.locator(`.scenario-list li[data-scenario="${sid2}"]`).count(), 0);
  const left = await (await context.request.get(`${API}/plans/${plan.id}/scenarios`)).json();
  assert.deepEqual(left.map((s) => s.id), [sid]);
  await settled(page);

  assert.deepEqual(problems.console, [], 'console errors');
  assert.deepEqual(problems.page, [], 'uncaught errors');
  assert.deepEqual(problems.tiles, [], 'failed tiles');
  assert.deepEqual(await leafletTileErrors(page), [], 'Leaflet tileerror events');
});
