// Sharing, as people would: an owner invites colleagues by email from the plan page (an
// unknown email gets the same answer, and the owner revokes it); one colleague sees the
// invitation with its count on the Plans heading, accepts, sees the plan and its scores
// without the owner's tools, and leaves it; another declines and never sees the plan.
// Accounts and the plan are made through the API (the account and drawing screens have
// tests of their own).
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

test('an owner invites, one colleague accepts and leaves, another declines', async (t) => {
  const owner = await open();
  const viewer = await open();
  const other = await open();
  t.after(async () => { await owner.close(); await viewer.close(); await other.close(); });

  await signUp(owner.context, 'Olga');
  const viewerEmail = await signUp(viewer.context, 'Victor');
  const otherEmail = await signUp(other.context, 'Dora');
  const created = await owner.context.request.post(`${API}/plans`, {
    headers: CSRF, data: { name: 'Shared ridge', region: 'sierra_nevada', geometry: AREA },
  });
  assert.equal(created.status(), 201, await created.text());
  const plan = await created.json();
  const permalink = `${BASE}/?map=11/37.80000/-119.60000&plan=${plan.id}`;

  // The owner invites by email. An email without an account gets the same answer (the
  // invitation waits for its sign-up); the owner revokes it.
  const o = owner.page;
  await o.goto(permalink);
  await settled(o);
  await o.waitForSelector('.plan-page[data-scores=ready]');
  const invite = o.getByRole('form', { name: 'Invite a member' });
  const nobody = uniqueEmail('nobody');
  await invite.getByLabel('Invite by email').fill(nobody);
  await invite.getByRole('button', { name: 'Invite' }).click();
  await o.locator('.members li.pending', { hasText: nobody }).waitFor();
  assert.match(await o.locator('.sharing [role=status]').innerText(), /Invitation sent to/);
  await o.getByRole('button', { name: `Revoke the invitation of ${nobody}` }).click();
  await o.locator('.members li.pending', { hasText: nobody }).waitFor({ state: 'detached' });
  for (const [email, role] of [[viewerEmail, 'viewer'], [otherEmail, 'collaborator']]) {
    const form = o.getByRole('form', { name: 'Invite a member' });
    await form.getByLabel('Invite by email').fill(email);
    await form.getByLabel('Role').selectOption(role);
    await form.getByRole('button', { name: 'Invite' }).click();
    await o.locator('.members li.pending', { hasText: email }).waitFor();
  }
  // Pending: no names, no role selects yet.
  assert.equal(await o.locator('.members li strong', { hasText: 'Victor' }).count(), 0);
  assert.equal(await o.getByLabel('Role of Victor').count(), 0);
  await shot(o, '08-sharing-owner');

  // The colleague sees the invitation (plan, inviter, role) and its count, not the plan.
  const v = viewer.page;
  await v.goto(BASE);
  await settled(v);
  const offer = v.locator('.invitation-list li', { hasText: 'Shared ridge' });
  await offer.waitFor();
  assert.match(await offer.innerText(), /from Olga[\s\S]*viewer/);
  assert.equal(await v.locator('#plans-panel summary .badge').innerText(), '1');
  assert.equal(await v.locator('.plan-list li', { hasText: 'Shared ridge' }).count(), 0);
  assert.deepEqual(await accessibilityViolations(v), [], 'WCAG 2 A/AA rules (axe-core)');
  await shot(v, '08b-invitation');

  // Accepting opens the plan, the map fitted to it: its scores, none of the owner's tools.
  await v.getByRole('button', { name: 'Accept Shared ridge' }).click();
  await v.waitForFunction((id) => location.search.includes(`plan=${id}`), plan.id);
  await v.waitForSelector('.plan-page[data-scores=ready]');
  await settled(v);
  const fitted = await v.evaluate(() => {
    const { map } = window.planscape;
    return { zoom: map.getZoom(), inView: map.getBounds().contains([[37.77, -119.65], [37.83, -119.55]]) };
  });
  assert.ok(fitted.inView && fitted.zoom >= 10, `fitted to the plan: ${JSON.stringify(fitted)}`);
  assert.equal(await v.locator('.plan-page h2').innerText(), 'Shared ridge');
  assert.match(await v.locator('.plan-list li', { hasText: 'Shared ridge' }).innerText(), /viewer[\s\S]*shared by Olga/);
  assert.equal(await v.locator('.invitation-list li').count(), 0);
  assert.equal(await v.locator('#plans-panel summary .badge').isHidden(), true);
  for (const name of ['Rename', 'Delete', 'Invite']) {
    assert.equal(await v.getByRole('button', { name, exact: true }).count(), 0, `no ${name} button`);
  }
  assert.equal(await v.getByLabel('Role of Olga').count(), 0);
  assert.deepEqual(await accessibilityViolations(v), [], 'WCAG 2 A/AA rules (axe-core)');
  await shot(v, '09-sharing-viewer');
  // A reload keeps it (the server has the membership).
  await v.reload();
  await settled(v);
  await v.waitForSelector('.plan-page[data-scores=ready]');

  // The other colleague declines: the plan never shows, and the API refuses it.
  const d = other.page;
  await d.goto(BASE);
  await settled(d);
  await d.locator('.invitation-list li', { hasText: 'Shared ridge' }).waitFor();
  await d.getByRole('button', { name: 'Decline Shared ridge' }).click();
  await d.locator('.invitation-list li').waitFor({ state: 'detached' });
  assert.equal(await d.locator('.plan-list li', { hasText: 'Shared ridge' }).count(), 0);
  assert.equal((await other.context.request.get(`${API}/plans/${plan.id}`)).status(), 404);
  await d.reload();
  await settled(d);
  assert.equal(await d.locator('.invitation-list li').count(), 0);
  assert.equal(await d.locator('.plan-list li', { hasText: 'Shared ridge' }).count(), 0);

  // The owner's list: Victor now by name with a role select; Dora's invitation gone.
  await o.reload();
  await settled(o);
  await o.getByLabel('Role of Victor').waitFor();
  assert.equal(await o.getByLabel('Role of Victor').inputValue(), 'viewer');
  assert.equal(await o.locator('.members li.pending').count(), 0);

  // The viewer leaves: the plan is gone from their list, and from the owner's members.
  await v.getByRole('button', { name: 'Leave this plan' }).click();
  await v.waitForFunction(() => !location.search.includes('plan='));
  assert.equal(await v.locator('.plan-list li', { hasText: 'Shared ridge' }).count(), 0);
  const members = await (await owner.context.request.get(`${API}/plans/${plan.id}/members`)).json();
  assert.deepEqual(members.map((m) => m.name), ['Olga']);

  for (const { page, problems } of [owner, viewer, other]) {
    await settled(page);
    assert.deepEqual(problems.console, [], 'console errors');
    assert.deepEqual(problems.page, [], 'uncaught errors');
    assert.deepEqual(problems.tiles, [], 'failed tiles');
    assert.deepEqual(await leafletTileErrors(page), [], 'Leaflet tileerror events');
  }
});
