// Account errors as a person meets them, in real Chromium against a real server, with no
// internet: the basemap falls back to a plain background; the API's errors appear beside
// the field they name (or for the whole form when they name none); 429 shows the wait.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, accessibilityViolations, leafletTileErrors, open, settled, shot, uniqueEmail,
} from './browser.mjs';

test('sign-in and sign-up errors are shown beside their fields, offline', async (t) => {
  const { page, problems, close } = await open({ basemap: 'offline' });
  t.after(close);

  await page.goto(`${BASE}/`);
  await settled(page);
  // Offline: the basemap gives way to the plain background, and the app says so.
  await page.getByText('cannot be loaded (offline?)').waitFor();
  assert.equal(await page.locator('.leaflet-tile-pane .leaflet-layer').count(), 0);
  assert.deepEqual(await accessibilityViolations(page), [], 'WCAG 2 A/AA rules (axe-core)');

  // The keyboard reaches the sign-in form from the top of the page.
  const focused = [];
  for (let i = 0; i < 12 && !focused.includes('password'); i += 1) {
    await page.keyboard.press('Tab');
    focused.push(await page.evaluate(() => document.activeElement?.getAttribute('name') ?? document.activeElement?.tagName));
  }
  assert.ok(focused.includes('email') && focused.includes('password'), `tab order: ${focused.join(', ')}`);

  // Sign-up errors the API ties to a field.
  await page.getByRole('button', { name: 'Create an account' }).click();
  const signUp = page.getByRole('form', { name: 'Create an account' });
  const name = signUp.getByLabel('Name');
  const email = signUp.getByLabel('Email');
  const password = signUp.getByLabel(/^Password/);
  const submit = signUp.getByRole('button', { name: 'Create account' });
  const errorOf = async (input) =>
    page.locator(`#${await input.getAttribute('aria-describedby')}`).innerText();
  // Submits and waits for the answer; the form-wide error comes along, so that an
  // unexpected one (e.g. a 429) is named in the failure.
  const submitted = async (button, form) => {
    await button.click();
    await settled(page);
    const error = form.locator('.form-error');
    return (await error.count()) ? error.innerText() : ''; // no form: signed in
  };

  await name.fill('Bea');
  await email.fill('not-an-email');
  await password.fill('long enough password');
  assert.equal(await submitted(submit, signUp), '');
  assert.match(await errorOf(email), /not an email address/);
  assert.equal(await email.getAttribute('aria-invalid'), 'true');
  assert.equal(await errorOf(password), '');

  const address = uniqueEmail('signin');
  await email.fill(address);
  await password.fill('short');
  assert.equal(await submitted(submit, signUp), '');
  assert.match(await errorOf(password), /at least 10 characters/);
  assert.equal(await errorOf(email), '');
  await shot(page, '06-signup-field-error');

  // A real account, signed out again; then a taken email is reported beside the email.
  await password.fill('long enough password');
  assert.equal(await submitted(submit, signUp), '');
  await page.getByText('Signed in as').waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('form', { name: 'Sign in' }).waitFor();
  await page.getByRole('button', { name: 'Create an account' }).click();
  await signUp.getByLabel('Name').fill('Bea again');
  await signUp.getByLabel('Email').fill(address);
  await signUp.getByLabel(/^Password/).fill('long enough password');
  assert.equal(await submitted(submit, signUp), '');
  assert.match(await errorOf(signUp.getByLabel('Email')), /exists/);

  // Sign in: a wrong password names no field (the API does not say which was wrong).
  await page.getByRole('button', { name: 'Sign in' }).first().click();
  const signIn = page.getByRole('form', { name: 'Sign in' });
  await signIn.getByLabel('Email').fill(address);
  await signIn.getByLabel('Password').fill('wrong password!');
  await signIn.getByRole('button', { name: 'Sign in' }).click();
  await signIn.locator('.form-error', { hasText: 'wrong email or password' }).waitFor();

  // Too many attempts: the wait from Retry-After. (Answered here by the test, not by
  // tripping the server's limit, which would lock this address out of logins for 15 min.)
  await page.route('**/planscape-backend/auth/login', (route) => route.fulfill({
    status: 429, contentType: 'application/json', headers: { 'Retry-After': '840' },
    body: JSON.stringify({ error: { code: 'too_many_attempts', message: 'too many failed logins' } }),
  }));
  await signIn.getByRole('button', { name: 'Sign in' }).click();
  await signIn.locator('.form-error', { hasText: 'Try again in 14 minutes' }).waitFor();
  await page.unroute('**/planscape-backend/auth/login');
  await shot(page, '07-signin-429');

  // The right password signs in; the password change checks the current one.
  await signIn.getByLabel('Password').fill('long enough password');
  await signIn.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Signed in as').waitFor();
  await page.locator('summary', { hasText: 'Change password' }).click();
  const change = page.getByRole('form', { name: 'Change password' });
  await change.getByLabel('Current password').fill('long enough password');
  await change.getByLabel('New password').fill('short');
  await change.getByRole('button', { name: 'Change password' }).click();
  await page.waitForFunction(() => document.querySelector('input[name=new_password][aria-invalid=true]'));
  await change.getByLabel('New password').fill('an even longer password');
  await change.getByRole('button', { name: 'Change password' }).click();
  await change.getByText('Password changed').waitFor();
  await settled(page);

  assert.ok(problems.expected.length > 0, 'the API answers shown above were logged by the browser');
  assert.deepEqual(problems.console, [], 'console errors');
  assert.deepEqual(problems.page, [], 'uncaught errors');
  assert.deepEqual(problems.tiles, [], 'failed tiles');
  assert.deepEqual(await leafletTileErrors(page), [], 'Leaflet tileerror events');
});
