// The administrators' analytics dashboard: a planner who is not an administrator sees no
// link to it, gets nothing at `?dashboard=1`, and the server answers 403 to its reports;
// once made an administrator (`planscape user admin`, as an operator would), the same
// person opens it from the top bar and finds what they just did: their sign-up, their
// plan in the heat map, the condition layer they looked at, latency per route, and a
// CSV of every chart. The account and the plan are made through the API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  BASE, ROOT, accessibilityViolations, open, settled, shot, uniqueEmail,
} from './browser.mjs';

const API = `${BASE}/planscape-backend`;
const CSRF = { 'X-Planscape-CSRF': '1' };
const AREA = {
  type: 'Polygon',
  coordinates: [[[-120.65, 38.71], [-120.55, 38.71], [-120.55, 38.77], [-120.65, 38.77], [-120.65, 38.71]]],
};
const CONDITION_LAYER = 'sierra_nevada_air_quality';

/** `planscape user admin --email EMAIL`, with the stack's binary and database. */
function makeAdmin(email) {
  const bin = process.env.PLANSCAPE_E2E_BIN ?? `${ROOT}/target/debug/planscape`;
  execFileSync(bin, ['user', 'admin', '--email', email], { env: process.env, stdio: 'pipe' });
}

test('only administrators see the dashboard, which shows what planners did', async (t) => {
  const { context, page, problems, close } = await open({ width: 1400, height: 1000 });
  t.after(close);

  const email = uniqueEmail('admin');
  const signup = await context.request.post(`${API}/auth/signup`, {
    headers: CSRF, data: { email, password: 'a long enough password', name: 'Ada' },
  });
  assert.equal(signup.status(), 201, await signup.text());
  await context.addInitScript(() => localStorage.setItem('planscape.signedIn', '1'));
  const created = await context.request.post(`${API}/plans`, {
    headers: CSRF, data: { name: 'Heat', region: 'sierra_nevada', geometry: AREA },
  });
  assert.equal(created.status(), 201, await created.text());
  // A condition layer looked at.
  const tile = await context.request.get(`${BASE}/tiles/${CONDITION_LAYER}/7/21/48.png`);
  assert.ok(tile.status() === 200 || tile.status() === 204, `tile ${tile.status()}`);

  // Not an administrator: no link, no dashboard, 403 from the reports.
  await page.goto(`${BASE}/?dashboard=1`);
  await settled(page);
  await page.getByText('Signed in as').waitFor();
  assert.equal(await page.locator('#dashboard-link').isVisible(), false);
  assert.equal(await page.locator('#dashboard').count(), 0);
  for (const chart of ['activity', 'signups', 'plans', 'scenarios', 'tiles', 'conditions', 'plan-cells', 'latency']) {
    const r = await context.request.get(`${API}/admin/analytics/${chart}`);
    assert.equal(r.status(), 403, chart);
  }

  // Made an administrator: the link appears, the dashboard opens.
  makeAdmin(email);
  await page.goto(`${BASE}/`);
  await settled(page);
  await page.locator('#dashboard-link').waitFor({ state: 'visible' });
  await page.locator('#dashboard-link').click();
  const dashboard = page.getByRole('region', { name: 'Analytics dashboard' });
  await dashboard.waitFor();
  assert.match(page.url(), /[?&]dashboard=1/);
  await page.waitForFunction(() => !document.querySelector('#dashboard .loading'));
  await page.waitForFunction(() => !document.body.hasAttribute('aria-busy'));
  assert.equal(await dashboard.locator('[role=alert]').innerText(), '');

  const card = (name) => dashboard.locator(`.card[data-chart="${name}"]`);
  // Sign-ups: at least this one today.
  assert.match(await card('signups').locator('.total').innerText(), /^[1-9][\d,]* in the range/);
  // The plan lies in a hexagon of the heat map.
  await card('plan-cells').locator('.heat-map path.leaflet-interactive').first().waitFor();
  assert.match(await card('plan-cells').locator('.total').innerText(), /^[1-9][\d,]* plans? in [1-9]/);
  // The condition looked at, by its name.
  assert.ok((await card('conditions').locator('.bar-list li').count()) >= 1);
  assert.match(await card('conditions').innerText(), /Air Quality/);
  // Tiles by zoom: a column per zoom requested; latency: a row per route.
  assert.ok((await card('tiles-zoom').locator('svg rect').count()) >= 1);
  assert.ok((await card('latency').locator('tbody tr').count()) >= 3);
  // Every chart has its CSV, from the API.
  const links = await dashboard.locator('.card a.csv').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  assert.equal(links.length, 9);
  for (const href of links) {
    assert.match(href, /^\/planscape-backend\/admin\/analytics\/[a-z-]+\?(.*&)?format=csv/);
    const r = await context.request.get(`${BASE}${href}`);
    assert.equal(r.status(), 200, href);
    assert.match(r.headers()['content-type'], /^text\/csv/);
    assert.match(r.headers()['content-disposition'], /^attachment; filename="planscape-/);
    assert.match((await r.text()).split('\r\n')[0], /^[a-z_]+(,[a-z_0-9]+)+$/);
  }
  assert.deepEqual(await accessibilityViolations(page), [], 'WCAG 2 A/AA rules (axe-core)');
  await shot(page, '40-analytics-dashboard');

  // A narrower range redraws (the CSV links follow it).
  const today = new Date().toISOString().slice(0, 10);
  await dashboard.getByLabel('From').fill(today);
  await dashboard.getByRole('button', { name: 'Show' }).click();
  await page.waitForFunction(() => !document.querySelector('#dashboard .loading'));
  const signups = await card('signups').locator('a.csv').getAttribute('href');
  assert.ok(signups.includes(`from=${today}`), signups);

  // Back to the map.
  await dashboard.getByRole('button', { name: 'Back to the map' }).click();
  await page.locator('#dashboard').waitFor({ state: 'detached' });
  assert.doesNotMatch(page.url(), /dashboard=1/);
  assert.ok(await page.locator('#map').isVisible());
  assert.deepEqual(problems.console, []);
  assert.deepEqual(problems.page, []);
});
