// The web app's user-facing times, measured in real headless Chromium (not asserted):
//   1. cold loads of `?map=10/37.8/-119.6&layers=regions,watersheds&condition=...`: when the
//      first boundary feature and the first condition tile are painted, and when the whole
//      condition layer has loaded (ms after navigation start);
//   2. a ~100,000-acre plan drawn with mouse clicks: from the "Save plan" click to its
//      scores on screen (every condition of the region, coloured by band).
//   node benches/web.mjs BASE_URL [RUNS]      (prints one JSON object)
// Run by benches/web.sh against a release server with the demo data.
import { open } from '../tests/e2e/browser.mjs';

const BASE = (process.argv[2] ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
const RUNS = Number(process.argv[3] ?? 5);
const VIEW = '?map=10/37.80000/-119.60000&layers=regions,watersheds&condition=sierra_nevada/total_carbon';

// Records, in the page, when things first appear (performance.now(): ms since navigation).
function recorder() {
  const marks = {};
  window.__marks = marks;
  const seen = () => {
    const t = performance.now();
    if (!marks.boundary && document.querySelector('.leaflet-boundaries-pane path')) marks.boundary = t;
    const tiles = [...document.querySelectorAll('.leaflet-conditions-pane img.leaflet-tile')];
    if (!marks.condition && tiles.some((i) => i.classList.contains('leaflet-tile-loaded'))) marks.condition = t;
    if (!marks.conditionAll && tiles.length && tiles.every((i) => i.classList.contains('leaflet-tile-loaded'))) marks.conditionAll = t;
    if (!marks.scores && document.querySelector('.plan-page[data-scores=ready]') && marks.save) marks.scores = t;
  };
  new MutationObserver(seen).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['class', 'data-scores'] });
  document.addEventListener('click', (e) => {
    if (e.target instanceof Element && e.target.closest('button[type=submit]')?.textContent === 'Save plan') {
      marks.save = performance.now();
      delete marks.scores;
    }
  }, true);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? Math.round(s[Math.floor((s.length - 1) / 2)]) : null;
};

async function coldLoad() {
  const { context, page, close } = await open({ basemap: 'offline' });
  try {
    await context.addInitScript(recorder);
    await page.goto(`${BASE}/${VIEW}`);
    await page.waitForFunction(() => window.__marks?.conditionAll && window.__marks?.boundary, null, { timeout: 60_000 });
    return await page.evaluate(() => ({ ...window.__marks }));
  } finally {
    await close();
  }
}

async function planScores() {
  const { context, page, close } = await open({ basemap: 'offline' });
  try {
    await context.addInitScript(recorder);
    const email = `bench-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.org`;
    const r = await context.request.post(`${BASE}/planscape-backend/auth/signup`, {
      headers: { 'X-Planscape-CSRF': '1' }, data: { email, password: 'a long enough password', name: 'Bench' },
    });
    if (r.status() !== 201) throw new Error(`sign-up: ${r.status()} ${await r.text()}`);
    // The app asks who is signed in only when it remembers a sign-in.
    await context.addInitScript(() => localStorage.setItem('planscape.signedIn', '1'));
    await page.goto(`${BASE}/?map=10/37.80000/-119.60000`);
    await page.waitForSelector('body[data-ready=true]');
    await page.getByRole('button', { name: 'Draw a plan' }).click();
    await page.locator('.drawing').waitFor();
    // 166 px at zoom 10 and 37.8° N is about 20 km: a square of about 100,000 acres.
    const box = await page.locator('#map').boundingBox();
    const cx = box.x + box.width / 2;
    const cy = box.y + box.height / 2;
    for (const [dx, dy] of [[-83, -83], [83, -83], [83, 83], [-83, 83], [-83, -83]]) {
      await page.mouse.click(cx + dx, cy + dy);
      await page.waitForTimeout(150);
    }
    const form = page.getByRole('form', { name: 'New plan' });
    await form.getByLabel('Plan name').fill('Bench plan');
    await form.getByLabel('Region').selectOption('sierra_nevada');
    await form.getByRole('button', { name: 'Save plan' }).click();
    await page.waitForSelector('.plan-page[data-scores=ready]', { timeout: 60_000 });
    await page.waitForFunction(() => window.__marks?.scores);
    const marks = await page.evaluate(() => ({ ...window.__marks }));
    const acres = Number((await page.locator('.plan-acres').innerText()).replace(/[^\d]/g, ''));
    const rows = await page.locator('.score-table tbody tr[data-band]').count();
    return { ms: marks.scores - marks.save, acres, rows };
  } finally {
    await close();
  }
}

const loads = [];
for (let i = 0; i < RUNS; i++) loads.push(await coldLoad());
const plans = [];
for (let i = 0; i < Math.min(RUNS, 3); i++) plans.push(await planScores());
console.log(JSON.stringify({
  base: BASE,
  runs: RUNS,
  first_boundary_ms: median(loads.map((m) => m.boundary)),
  first_condition_tile_ms: median(loads.map((m) => m.condition)),
  condition_layer_loaded_ms: median(loads.map((m) => m.conditionAll)),
  loads: loads.map((m) => ({ boundary: Math.round(m.boundary), condition: Math.round(m.condition), all: Math.round(m.conditionAll) })),
  plan_scores_ms: median(plans.map((p) => p.ms)),
  plans: plans.map((p) => ({ ms: Math.round(p.ms), acres: p.acres, conditions: p.rows })),
}, null, 2));
