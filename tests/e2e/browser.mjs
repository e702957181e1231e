// Shared set-up of the end-to-end tests: Debian's Chromium driven by playwright-core
// (from web/node_modules), against a running server at PLANSCAPE_E2E_URL, with every
// console error, page error and failed tile collected so that each test can assert none.
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(ROOT, 'web', 'package.json'));
const { chromium } = require('playwright-core');

export const BASE = (process.env.PLANSCAPE_E2E_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
export const SHOTS = process.env.PLANSCAPE_E2E_SHOTS ?? join(ROOT, '.data', 'screenshots');
const BASEMAP_HOST = 'tile.openstreetmap.org';

// A grey PNG stands in for OpenStreetMap tiles: the tests need no internet.
const GREY_TILE = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP88OHDfwAJMAPnwB3Q0QAAAABJRU5ErkJggg==',
  'base64',
);

/** Starts Chromium with a fresh profile. `basemap`: 'online' answers OpenStreetMap tile
 *  requests with a grey tile, 'offline' makes them fail as without a network. */
export async function open({ width = 1280, height = 800, basemap = 'online' } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'planscape-e2e-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width, height },
    // Each run is its own client for the server's per-address limits on sign-ups and
    // logins (10 per 15 min): the server takes X-Real-IP from a loopback peer, as from
    // the local nginx (which replaces it with the real address).
    extraHTTPHeaders: { 'X-Real-IP': `127.${rand()}.${rand()}.${rand()}` },
  });
  await context.route(`https://${BASEMAP_HOST}/**`, (route) =>
    basemap === 'online'
      ? route.fulfill({ status: 200, contentType: 'image/png', body: GREY_TILE })
      : route.abort('internetdisconnected'));
  const page = context.pages()[0] ?? (await context.newPage());
  const problems = watch(page);
  const close = async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, page, problems, close };
}

function rand() {
  return 1 + Math.floor(Math.random() * 250);
}

/** Collects what must not happen: console errors, uncaught errors, failed server tiles.
 *  Expected API answers (4xx of /planscape-backend/, which the app shows to the user)
 *  and, offline, the basemap's failed requests are recorded apart. */
function watch(page) {
  const problems = { console: [], page: [], tiles: [], expected: [] };
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const url = msg.location()?.url ?? '';
    const text = `${msg.text()} ${url}`;
    const apiAnswer = /Failed to load resource: the server responded with a status of 4\d\d/.test(msg.text()) &&
      url.includes('/planscape-backend/');
    if (apiAnswer || url.includes(BASEMAP_HOST)) problems.expected.push(text);
    else problems.console.push(text);
  });
  page.on('pageerror', (e) => problems.page.push(String(e)));
  page.on('response', (r) => {
    if (r.url().includes('/tiles/') && r.status() >= 400) problems.tiles.push(`${r.status()} ${r.url()}`);
  });
  page.on('requestfailed', (r) => {
    if (r.url().includes('/tiles/')) problems.tiles.push(`failed ${r.url()} ${r.failure()?.errorText}`);
  });
  return problems;
}

/** The app's own record of Leaflet `tileerror` events on server layers. */
export async function leafletTileErrors(page) {
  return page.evaluate(() => window.planscape?.tileErrors ?? []);
}

export async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

/** Waits until the app has started and no request is in flight. */
export async function settled(page) {
  await page.waitForSelector('body[data-ready=true]');
  await page.waitForFunction(() => !document.body.hasAttribute('aria-busy'));
}

export function uniqueEmail(tag) {
  return `e2e-${tag}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.org`;
}

/** Accessibility rules (axe-core, WCAG 2 A and AA) broken on the page as it is now:
 *  labels, names, roles, contrast, keyboard focus order. */
export async function accessibilityViolations(page) {
  await page.addScriptTag({ path: require.resolve('axe-core/axe.min.js') });
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] } }));
  return result.violations.map((v) =>
    `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
}
