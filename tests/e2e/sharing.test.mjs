// Sharing, as two people would: an owner invites a colleague by email as a viewer from
// the plan page; the colleague opens the permalink, sees the plan and its scores without
// the owner's tools, and leaves it. Accounts and the plan are made through the API (the
// account and drawing screens have tests of their own).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, accessibilityViolations, leafletTileErrors, open, settled, shot, uniqueEmail,
} from './browser.mjs';

const API = `${BASE}/planscape-backend`;
const CSRF = { 'X-Planscape-CSRF': '1' };
const AREA = {
  type: 'Polygon',
  coordinates: [[[-119.65, 37.77], [-119.55, 37.77], [-119.55, 37.83], [-119.65, 37.83], [-119.65, 37.77]]],
};

async function signUp(context, name) {
  const email = uniqueEmail(name.toLowerCase());
  const r = await context.request.post(`${API}/auth/signup`, {
    headers: CSRF, data: { email, password: 'a long enough password', name },
  });
  assert.equal(r.status(), 201, await r.text());
  // The app asks the server who is signed in only when this browser signed in through it
  // (anonymous visitors get no 401 in their console): say so, as the sign-in screen does.
  await context.addInitScript(() => localStorage.setItem('planscape.signedIn', '1'));
  return email;
}

test('an owner shares a plan with a viewer, who sees it read-only and leaves it', async (t) => {
  const owner = await open();
  const viewer = await open();
  t.after(async () => { await owner.close(); await viewer.close(); });

  await signUp(owner.context, 'Olga');
  const viewerEmail = await signUp(viewer.context, 'Victor');
  const created = await owner.context.request.post(`${API}/plans`, {
    headers: CSRF, data: { name: 'Shared ridge', region: 'sierra_nevada', geometry: AREA },
  });
  assert.equal(created.status(), 201, await created.text());
  const plan = await created.json();
  const permalink = `${BASE}/?map=11/37.80000/-119.60000&plan=${plan.id}`;

  // The owner invites by email; an unknown email is refused beside the field.
  const o = owner.page;
  await o.goto(permalink);
  await settled(o);
  await o.waitForSelector('.plan-page[data-scores=ready]');
  const invite = o.getByRole('form', { name: 'Invite a member' });
  await invite.getByLabel('Invite by email').fill(uniqueEmail('nobody'));
  await invite.getByRole('button', { name: 'Invite' }).click();
  await settled(o);
  assert.notEqual(await invite.getByLabel('Invite by email').getAttribute('aria-invalid'), null);
  await invite.getByLabel('Invite by email').fill(viewerEmail);
  await invite.getByLabel('Role').selectOption('viewer');
  await invite.getByRole('button', { name: 'Invite' }).click();
  await o.locator('.members li', { hasText: 'Victor' }).waitFor();
  assert.equal(await o.getByLabel('Role of Victor').inputValue(), 'viewer');
  await shot(o, '08-sharing-owner');

  // The viewer opens the permalink: the plan and its scores, none of the owner's tools.
  const v = viewer.page;
  await v.goto(permalink);
  await settled(v);
  await v.waitForSelector('.plan-page[data-scores=ready]');
  assert.equal(await v.locator('.plan-page h2').innerText(), 'Shared ridge');
  assert.match(await v.locator('.plan-list li', { hasText: 'Shared ridge' }).innerText(), /viewer[\s\S]*shared by Olga/);
  for (const name of ['Rename', 'Delete', 'Invite']) {
    assert.equal(await v.getByRole('button', { name, exact: true }).count(), 0, `no ${name} button`);
  }
  assert.equal(await v.getByLabel('Role of Olga').count(), 0);
  assert.deepEqual(await accessibilityViolations(v), [], 'WCAG 2 A/AA rules (axe-core)');
  await shot(v, '09-sharing-viewer');

  // The viewer leaves: the plan is gone from their list, and from the owner's members.
  await v.getByRole('button', { name: 'Leave this plan' }).click();
  await v.waitForFunction(() => !location.search.includes('plan='));
  assert.equal(await v.locator('.plan-list li', { hasText: 'Shared ridge' }).count(), 0);
  const members = await (await owner.context.request.get(`${API}/plans/${plan.id}/members`)).json();
  assert.deepEqual(members.map((m) => m.name), ['Olga']);

  for (const { page, problems } of [owner, viewer]) {
    await settled(page);
    assert.deepEqual(problems.console, [], 'console errors');
    assert.deepEqual(problems.page, [], 'uncaught errors');
    assert.deepEqual(problems.tiles, [], 'failed tiles');
    assert.deepEqual(await leafletTileErrors(page), [], 'Leaflet tileerror events');
  }
});
