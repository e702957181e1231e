// Password reset by email and account deletion as a person goes through them, in real
// Chromium against a real server that mails through a real SMTP server (scripts/e2e-stack.sh
// starts aiosmtpd, whose maildir PLANSCAPE_E2E_MAILDIR names): "Forgot password?", the
// neutral answer, the mailed link opening the app (which takes the token out of the
// address bar), a weak then a good new password, signing in with it, then deleting the
// account with a wrong and then the right password.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BASE, accessibilityViolations, open, settled, shot, uniqueEmail } from './browser.mjs';

const MAILDIR = process.env.PLANSCAPE_E2E_MAILDIR;

/** The decoded body of a raw single-part message (7bit or quoted-printable). */
function bodyOf(raw) {
  const text = raw.replace(/\r\n/g, '\n');
  const split = text.indexOf('\n\n');
  const head = text.slice(0, split);
  const body = text.slice(split + 2);
  if (!/^content-transfer-encoding:\s*quoted-printable/im.test(head)) return body;
  return body.replace(/=\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16)));
}

/** Waits for the mail to `address`; returns its decoded body. */
async function mailTo(address) {
  const dir = join(MAILDIR, 'new');
  for (let i = 0; i < 600; i += 1) {
    if (existsSync(dir)) {
      for (const f of readdirSync(dir)) {
        const raw = readFileSync(join(dir, f), 'utf8');
        if (new RegExp(`^To: ${address.replace(/[.+]/g, '\\$&')}$`, 'mi').test(raw)) return bodyOf(raw);
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no mail to ${address}`);
}

test('a forgotten password is reset through the mailed link, then the account is deleted', { skip: !MAILDIR && 'PLANSCAPE_E2E_MAILDIR is not set (scripts/e2e-stack.sh sets it)' }, async (t) => {
  const { page, problems, close } = await open();
  t.after(close);
  await page.goto(`${BASE}/`);
  await settled(page);

  // An account, signed out again.
  const address = uniqueEmail('reset');
  await page.getByRole('button', { name: 'Create an account' }).click();
  const signUp = page.getByRole('form', { name: 'Create an account' });
  await signUp.getByLabel('Name').fill('Rosa');
  await signUp.getByLabel('Email').fill(address);
  await signUp.getByLabel(/^Password/).fill('the first long password');
  await signUp.getByRole('button', { name: 'Create account' }).click();
  await page.getByText('Signed in as').waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();

  // "Forgot password?": the neutral answer.
  await page.getByRole('button', { name: 'Forgot password?' }).click();
  const forgot = page.getByRole('form', { name: 'Reset password' });
  await forgot.getByLabel('Email').fill(address);
  await forgot.getByRole('button', { name: 'Send reset link' }).click();
  await forgot.getByText('If an account has this email').waitFor();
  assert.deepEqual(await accessibilityViolations(page), [], 'WCAG 2 A/AA rules (axe-core)');
  await shot(page, '30-reset-requested');

  // The mailed link opens the app on the new-password form; the token leaves the URL.
  const body = await mailTo(address);
  const link = /(\S+)\/#reset=([A-Za-z0-9_-]{43})/.exec(body);
  assert.ok(link, body);
  const token = link[2];
  // As from a mail client: a fresh load of the app.
  await page.goto('about:blank');
  await page.goto(`${BASE}/#reset=${token}`);
  await settled(page);
  const choose = page.getByRole('form', { name: 'Choose a new password' });
  await choose.waitFor();
  assert.equal(await page.evaluate(() => location.hash), '', 'the token is out of the address bar');
  assert.ok(!(await page.evaluate(() => location.href)).includes(token));

  // A weak password: the error beside the field; then a good one.
  const next = choose.getByLabel(/^New password/);
  await next.fill('short');
  await choose.getByRole('button', { name: 'Set password' }).click();
  await page.waitForFunction(() => document.querySelector('input[name=new_password][aria-invalid=true]'));
  await shot(page, '31-reset-weak-password');
  await next.fill('the second long password');
  await choose.getByRole('button', { name: 'Set password' }).click();
  await page.getByText('Your password is changed').waitFor();
  const signIn = page.getByRole('form', { name: 'Sign in' });
  assert.equal(await signIn.getByLabel('Email').inputValue(), address, 'the email is filled in');
  await shot(page, '32-reset-done');

  // The link works once: pasted again into this tab (only the fragment changes), it
  // says so.
  await page.goto(`${BASE}/#reset=${token}`);
  assert.equal(await page.evaluate(() => location.hash), '');
  await settled(page);
  await choose.getByLabel(/^New password/).fill('a third long password');
  await choose.getByRole('button', { name: 'Set password' }).click();
  await choose.locator('.form-error', { hasText: 'unknown, used or expired' }).waitFor();
  await choose.getByRole('button', { name: 'Cancel' }).click();

  // The new password signs in.
  await signIn.getByLabel('Email').fill(address);
  await signIn.getByLabel('Password').fill('the second long password');
  await signIn.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Signed in as').waitFor();

  // Deleting the account: a wrong password is refused beside the field, the right one
  // deletes it and signs out.
  await page.locator('summary', { hasText: 'Delete account' }).click();
  const remove = page.getByRole('form', { name: 'Delete account' });
  await remove.getByLabel('Password').fill('not my password');
  await remove.getByRole('button', { name: 'Delete my account' }).click();
  await page.waitForFunction(() =>
    document.querySelector('form[aria-label="Delete account"] input[name=password][aria-invalid=true]'));
  await shot(page, '33-delete-account-wrong-password');
  await remove.getByLabel('Password').fill('the second long password');
  await remove.getByRole('button', { name: 'Delete my account' }).click();
  await page.getByText(`The account ${address} is deleted.`).waitFor();
  await shot(page, '34-account-deleted');
  await signIn.getByLabel('Email').fill(address);
  await signIn.getByLabel('Password').fill('the second long password');
  await signIn.getByRole('button', { name: 'Sign in' }).click();
  await signIn.locator('.form-error', { hasText: 'wrong email or password' }).waitFor();

  assert.deepEqual(problems.console, [], 'console errors');
  assert.deepEqual(problems.page, [], 'uncaught errors');
});
