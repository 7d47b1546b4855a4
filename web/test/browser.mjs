// SPDX-License-Identifier: Apache-2.0
// Browser test of the flow explorer in headless Chromium (Debian's
// package, driven by playwright-core; no browser is downloaded). Run by
// cmd/kflow's TestBrowser against "kflow web" on a fixture:
//
//   KFLOW_URL=http://127.0.0.1:PORT/ KFLOW_FROM=... KFLOW_TO=... node test/browser.mjs
//
// With KFLOW_SCREENSHOTS=DIR it also saves a screenshot of each view.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = process.env.KFLOW_URL;
const from = process.env.KFLOW_FROM;
const to = process.env.KFLOW_TO;
const shots = process.env.KFLOW_SCREENSHOTS || '';
assert.ok(base && from && to, 'KFLOW_URL, KFLOW_FROM and KFLOW_TO are required');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  // playwright-core starts Chromium with a fresh profile of its own
  // (--user-data-dir in a new temporary directory) and removes it.
  timeout: 60000,
});
const problems = [];
let step = '';
try {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 }, timezoneId: 'UTC', colorScheme: 'light' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(20000);
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    d.dismiss();
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });

  // rendered waits for the view to finish its n-th render.
  let renders = 0;
  const rendered = async () => {
    renders++;
    await page.waitForFunction((n) => {
      const v = document.getElementById('view');
      return Number(v.dataset.rendered || 0) >= n && v.getAttribute('aria-busy') === 'false';
    }, renders);
  };
  const resetRenders = () => { renders = 0; };
  const canvasDrawn = (sel) => page.$eval(`${sel} canvas`, (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) n++;
    return n;
  });

  step = 'home';
  await page.goto(base);
  resetRenders();
  await rendered();
  assert.ok(await canvasDrawn('#home-chart') > 1000, 'the home graph is drawn');
  assert.equal(await page.locator('.cards .card').count(), 2, 'last hour and last day totals');
  assert.ok(await page.locator('.tops table tbody tr').count() >= 4, 'top talkers, ports and protocols');
  assert.ok(await page.locator('text=198.18.255.1').count() > 0, 'exporter health lists the exporter');
  if (shots) await page.screenshot({ path: join(shots, 'home.png'), fullPage: true });

  step = 'visualize with a filter';
  const vis = `${base}visualize?v=1&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&dims=srcip&top=5&unit=l3bps`;
  await page.goto(vis);
  resetRenders();
  await rendered();
  await page.fill('#filter', 'proto tcp');
  await page.press('#filter', 'Enter');
  await rendered();
  assert.match(page.url(), /filter=proto\+tcp/, 'the filter is in the URL');
  assert.ok(await canvasDrawn('#chart') > 1000, 'the graph is drawn');

  step = 'table equals the API';
  const params = new URL(page.url()).searchParams;
  const api = await page.evaluate(async (q) => (await fetch(`/api/v1/series?${q}`)).json(),
    new URLSearchParams({ from: params.get('from'), to: params.get('to'), filter: 'proto tcp', dims: 'srcip', top: '5', unit: 'l3bps', rank: 'avg' }).toString());
  const table = await page.$$eval('#series-table tbody tr.line, #series-table tbody tr.other, #series-table tbody tr.total', (rows) => rows.map((r) => ({
    name: r.dataset.name,
    stats: Object.fromEntries([...r.querySelectorAll('td[data-stat]')].map((td) => [td.dataset.stat, Number(td.querySelector('[data-value]').dataset.value)])),
  })));
  const want = [...api.lines, { ...api.total, name: 'Total' }].map((l) => ({ name: l.name, stats: l.stats }));
  assert.deepEqual(table, want, 'the table shows the API\'s figures');
  assert.equal(table.length, 7, 'five lines, Other and Total');
  if (shots) await page.screenshot({ path: join(shots, 'visualize.png'), fullPage: true });

  step = 'by application';
  await page.selectOption('#dim0', 'unit');
  await rendered();
  assert.equal(new URL(page.url()).searchParams.get('dims'), 'unit', 'the unit dimension is in the URL');
  const byUnit = await page.evaluate(async (q) => (await fetch(`/api/v1/series?${q}`)).json(),
    new URLSearchParams({ from: params.get('from'), to: params.get('to'), filter: 'proto tcp', dims: 'unit', top: '5', unit: 'l3bps', rank: 'avg' }).toString());
  const unitTable = await page.$$eval('#series-table tbody tr.line, #series-table tbody tr.other, #series-table tbody tr.total', (rows) => rows.map((r) => ({
    name: r.dataset.name,
    stats: Object.fromEntries([...r.querySelectorAll('td[data-stat]')].map((td) => [td.dataset.stat, Number(td.querySelector('[data-value]').dataset.value)])),
  })));
  assert.deepEqual(unitTable, [...byUnit.lines, { ...byUnit.total, name: 'Total' }].map((l) => ({ name: l.name, stats: l.stats })),
    'the table by unit shows the API\'s figures');
  assert.ok(unitTable.some((r) => r.name === 'nginx.service'), 'the units are lines');
  await page.goBack();
  await rendered();

  step = 'zoom by drag';
  const box = await page.locator('#chart').boundingBox();
  const [f0, t0] = [Date.parse(params.get('from')), Date.parse(params.get('to'))];
  await page.mouse.move(box.x + box.width * 0.35, box.y + box.height * 0.5);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5, { steps: 5 });
  await page.mouse.move(box.x + box.width * 0.65, box.y + box.height * 0.5, { steps: 5 });
  await page.mouse.up();
  await rendered();
  const zoomed = new URL(page.url()).searchParams;
  const [f1, t1] = [Date.parse(zoomed.get('from')), Date.parse(zoomed.get('to'))];
  assert.ok(f1 > f0 && t1 < t0 && t1 - f1 < (t0 - f0) / 2, `zoomed into the window: ${zoomed.get('from')} – ${zoomed.get('to')}`);
  assert.equal(zoomed.get('filter'), 'proto tcp', 'zooming keeps the filter');

  step = 'back button';
  await page.goBack();
  await rendered();
  assert.equal(new URL(page.url()).searchParams.get('from'), params.get('from'), 'back restores the window');
  assert.equal(await page.inputValue('#filter'), 'proto tcp', 'back restores the filter box');

  step = 'sankey';
  await page.selectOption('#dim1', 'dstport');
  await rendered();
  await page.selectOption('#graph', 'sankey');
  await rendered();
  assert.ok(await canvasDrawn('#chart') > 1000, 'the sankey is drawn');
  assert.ok(await page.locator('#links tbody tr').count() > 0, 'the sankey\'s links are listed');
  if (shots) await page.screenshot({ path: join(shots, 'sankey.png'), fullPage: true });
  await page.goBack();
  await rendered();
  await page.goBack();
  await rendered();

  step = 'follow a series to its flows';
  const first = table[0].name;
  await page.locator('#series-table tbody tr.line').first().locator('a.flows-link').click();
  await rendered();
  assert.equal(new URL(page.url()).pathname, '/flows');
  assert.equal(new URL(page.url()).searchParams.get('filter'), `(proto tcp) and (src ip ${first})`);
  const sources = await page.$$eval('#flows-table tbody tr', (rows) => rows.map((r) => r.children[4].textContent));
  assert.ok(sources.length > 0, 'the series has flows');
  assert.ok(sources.every((s) => s === first), `every flow is from ${first}`);
  const column = (i) => page.$$eval('#flows-table tbody tr', (rows, k) => rows.map((r) => Number(r.children[k].querySelector('[data-value]').dataset.value)), i);
  const desc = (v) => v.every((x, i) => i === 0 || v[i - 1] >= x);
  assert.equal(new URL(page.url()).searchParams.get('order'), 'bytes');
  assert.ok(desc(await column(11)), 'the series\' flows come sorted by bytes');
  await page.locator('button.sort[data-order="packets"]').click();
  await rendered();
  assert.equal(new URL(page.url()).searchParams.get('order'), 'packets');
  assert.ok(desc(await column(10)), 'sorted by packets after a click on the column');
  if (shots) await page.screenshot({ path: join(shots, 'flows.png'), fullPage: true });

  step = 'filter syntax error';
  await page.fill('#filter', 'proto tcp and port 99999');
  await page.waitForSelector('#filter-error mark');
  assert.equal(await page.textContent('#filter-error mark'), '99999', 'the error points at the token');
  assert.match(await page.textContent('#filter-error .msg'), /out of range/);
  await page.press('#filter', 'Enter');
  assert.equal(new URL(page.url()).searchParams.get('filter'), `(proto tcp) and (src ip ${first})`, 'a bad filter is not applied');

  step = 'hostile filter';
  const evil = '<img src=x onerror=alert(1)>';
  await page.fill('#filter', evil);
  await page.waitForFunction(() => (document.querySelector('#filter-error .caret') || {}).textContent?.includes('<img'));
  assert.equal(await page.locator('img').count(), 0, 'no element was made from the filter');
  assert.match(await page.textContent('#filter-error .caret'), /<img src=x/, 'the filter is shown as text');

  step = 'reload keeps the state';
  await page.fill('#filter', `(proto tcp) and (src ip ${first})`);
  await page.waitForFunction(() => !document.querySelector('#filter').classList.contains('bad'));
  const before = { url: page.url(), table: await page.textContent('#flows-table') };
  await page.reload();
  resetRenders();
  await rendered();
  assert.equal(page.url(), before.url, 'same URL');
  assert.equal(await page.textContent('#flows-table'), before.table, 'same flows');

  step = 'application column';
  await page.fill('#filter', 'unit nginx or container 3c3c3c');
  await page.press('#filter', 'Enter');
  await rendered();
  assert.equal(new URL(page.url()).searchParams.get('filter'), 'unit nginx or container 3c3c3c', 'the filter box takes the cgroup primitives');
  const apps = await page.$$eval('#flows-table tbody tr', (rows) => rows.map((r) => {
    const s = r.children[8].querySelector('span.app');
    return s ? [s.textContent, s.title] : ['', ''];
  }));
  const shown = new URL(page.url()).searchParams;
  const apiRows = await page.evaluate(async (q) => (await fetch(`/api/v1/flows?${q}`)).json(), new URLSearchParams({
    from: shown.get('from'), to: shown.get('to'), filter: shown.get('filter'), order: shown.get('order'), limit: shown.get('limit') || '50' }).toString());
  assert.ok(apps.length > 0 && apps.length === apiRows.rows.length, `${apps.length} rows shown, ${apiRows.rows.length} from the API`);
  assert.equal(await page.textContent('#flows-table thead tr th:nth-child(9)'), 'application');
  assert.deepEqual(apps, apiRows.rows.map((r) => [r.container ? `container ${r.container.slice(0, 12)}` : r.unit, r.cgroup]),
    'the application column shows each flow\'s unit or container, its cgroup on hover');
  const names = new Set(apps.map(([a]) => a));
  assert.deepEqual([...names].sort(), ['container 3c3c3c3c3c3c', 'nginx.service'], 'the filter selects nginx and the container');

  if (shots) {
    step = 'dark theme';
    const dark = await browser.newContext({ viewport: { width: 1400, height: 900 }, timezoneId: 'UTC', colorScheme: 'dark' });
    const p2 = await dark.newPage();
    await p2.goto(vis + '&filter=proto+tcp&graph=stacked&bidir=1');
    await p2.waitForFunction(() => document.getElementById('view').getAttribute('aria-busy') === 'false' && document.querySelector('#chart canvas'));
    await p2.screenshot({ path: join(shots, 'visualize-dark.png') });
  }
  assert.deepEqual(problems, [], 'no console errors, CSP violations or dialogs');
  console.log('browser: 1 passed, 0 failed');
} catch (e) {
  console.error(`browser: failed at step "${step}": ${e.stack || e}`);
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
