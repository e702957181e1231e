// The API reference at /planscape-backend/docs, as someone scripting against the server
// meets it: Swagger UI (bundled, no CDN) renders the server's OpenAPI document, and
// "Try it out" calls the same origin — anonymously for a public operation, then with the
// session cookie of a sign-in (and the CSRF header the server asks of changes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, open, shot, uniqueEmail } from './browser.mjs';

test('the API reference renders the OpenAPI document and tries operations on this server', async (t) => {
  const { page, problems, close } = await open({ basemap: 'offline' });
  t.after(close);
  const external = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(BASE) && !r.url().startsWith('data:')) external.push(r.url());
  });

  await page.goto(`${BASE}/planscape-backend/docs`);
  await page.locator('.opblock').first().waitFor();
  assert.match(await page.locator('.info .title').innerText(), /Planscape API/);
  const paths = await page.locator('.opblock-summary-path').allInnerTexts();
  for (const p of ['/auth/login', '/plans/{id}', '/scenarios/{sid}/export', '/basemaps', '/tiles/{layer}/point']) {
    assert.ok(paths.some((x) => x.replace(/\u200b/g, '') === p), `${p} in ${paths.length} operations`);
  }

  // A public operation, tried anonymously.
  const tryIt = async (method, path) => {
    const op = page.locator(`.opblock-${method}`, {
      has: page.locator('.opblock-summary-path', { hasText: new RegExp(`^${path.replace(/[{}]/g, '\\$&')}$`) }),
    }).first();
    await op.locator('.opblock-summary').click();
    await op.getByRole('button', { name: 'Try it out' }).click();
    return op;
  };
  const regions = await tryIt('get', '/regions');
  await regions.getByRole('button', { name: 'Execute' }).click();
  const status = regions.locator('.live-responses-table .response .response-col_status');
  await status.waitFor();
  assert.equal((await status.innerText()).trim(), '200');
  assert.match(await regions.locator('.live-responses-table .response .response-col_description').innerText(), /sierra_nevada/);
  await shot(page, '20-api-docs-regions');

  // Signed in (the app's cookie), a change goes through: the CSRF header is added.
  const email = uniqueEmail('docs');
  const signup = await page.evaluate(async (mail) => {
    const r = await fetch('/planscape-backend/auth/signup', {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Planscape-CSRF': '1' },
      body: JSON.stringify({ email: mail, password: 'correct horse battery', name: 'Docs Reader' }),
    });
    return r.status;
  }, email);
  assert.equal(signup, 201);
  const me = await tryIt('get', '/auth/me');
  await me.getByRole('button', { name: 'Execute' }).click();
  await me.locator('.live-responses-table .response .response-col_status').waitFor();
  assert.equal((await me.locator('.live-responses-table .response .response-col_status').innerText()).trim(), '200');
  assert.match(await me.locator('.live-responses-table .response .response-col_description').innerText(), /Docs Reader/);
  const logout = await tryIt('post', '/auth/logout');
  await logout.getByRole('button', { name: 'Execute' }).click();
  await logout.locator('.live-responses-table .response .response-col_status').waitFor();
  assert.equal((await logout.locator('.live-responses-table .response .response-col_status').innerText()).trim(), '204',
    'a change with the session cookie passes the CSRF check');
  await shot(page, '21-api-docs-logout');

  assert.deepEqual(external, [], 'nothing is fetched from another origin');
  assert.deepEqual(problems.console, []);
  assert.deepEqual(problems.page, []);
});
