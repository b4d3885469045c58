// The dashboard in Firefox: Debian's firefox-esr driven over WebDriver BiDi by puppeteer-core
// (npm, Apache-2.0). An owner enrols with a passkey in Chromium (Firefox offers no virtual
// authenticator over BiDi); the session cookie and CSRF token then sign Firefox in. In Firefox,
// insights, funnels and retention show exactly the API's numbers, the filter builder and a PNG
// download work, and no page logs an error or breaks the CSP.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';
import { startHearth, HEARTH_BIN, REPO_ROOT } from './harness.mjs';

const execFileP = promisify(execFile);
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const FIREFOX = process.env.FIREFOX_PATH || '/usr/bin/firefox-esr';
const SHOTS = path.join(REPO_ROOT, 'target', 'screenshots');
const day = (offsetDays) => new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);

let server;
let origin;
let chrome;
let firefox;
let page;
let downloads;
const problems = [];

async function api(method, apiPath, body) {
  const res = await fetch(`${server.url}${apiPath}`, { method, headers: { Authorization: server.secretAuth, 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text && (res.headers.get('content-type') || '').startsWith('application/json') ? JSON.parse(text) : null, text };
}

before(async () => {
  assert.ok(existsSync(FIREFOX), `${FIREFOX} is missing: scripts/install-test-deps.sh installs firefox-esr`);
  server = await startHearth({ name: 'firefox', env: (port) => ({ HEARTH_AUTH__ORIGIN: `http://localhost:${port}` }) });
  origin = `http://localhost:${server.port}`;

  // The owner's passkey, in Chromium with a virtual authenticator.
  chrome = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
  const context = await chrome.newContext();
  const enrolling = await context.newPage();
  const cdp = await context.newCDPSession(enrolling);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', { options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true } });
  const { stdout } = await execFileP(HEARTH_BIN, ['admin', 'create', 'owner@example.com', '--data', server.dataDir], { cwd: REPO_ROOT, env: { ...process.env, HEARTH_AUTH__ORIGIN: origin } });
  await enrolling.goto(stdout.match(/(http:\/\/\S+\/enrol#[0-9a-f]{64})/)[1]);
  await enrolling.getByRole('button', { name: 'Create my passkey' }).click();
  await enrolling.getByRole('heading', { name: 'Your recovery codes' }).waitFor();
  const cookie = (await context.cookies()).find((c) => c.name === 'hearth_session');
  const csrf = await enrolling.evaluate(() => sessionStorage.getItem('hearth.csrf'));
  assert.ok(cookie && csrf, 'signed in through the passkey');

  const now = Math.floor(Date.now() / 1000);
  const rows = Array.from({ length: 40 }, (_, n) => ({ event: n % 4 === 0 ? 'Signed Up' : 'Page Viewed',
    properties: { time: now - (n % 6) * 86_400 - 120, distinct_id: `person${n % 9}`, $insert_id: `ff${n}`, plan: n % 3 ? 'pro' : 'free' } }));
  assert.equal((await api('POST', '/import?strict=1', rows)).status, 200);

  // Firefox, signed in by the same session.
  downloads = await mkdtemp(path.join(os.tmpdir(), 'hearth-firefox-downloads-'));
  // The window size by argument: ESR 140 lacks BiDi's newer viewport commands.
  firefox = await puppeteer.launch({ browser: 'firefox', executablePath: FIREFOX, headless: true, defaultViewport: null, args: ['--window-size=1280,900'],
    extraPrefsFirefox: { 'browser.download.dir': downloads, 'browser.download.folderList': 2, 'browser.download.useDownloadDir': true, 'browser.helperApps.neverAsk.saveToDisk': 'image/png,text/csv' } });
  page = await firefox.newPage();
  page.on('console', (message) => { if (message.type() === 'error') problems.push(`console: ${message.text()}`); });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  await page.goto(`${origin}/assets/app.css`);
  await page.setCookie({ name: 'hearth_session', value: cookie.value, domain: 'localhost', path: '/', httpOnly: true, sameSite: 'Strict' });
  await page.evaluateOnNewDocument((token) => {
    sessionStorage.setItem('hearth.csrf', token);
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (event) => window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`));
  }, csrf);
});

after(async () => {
  await firefox?.close();
  await chrome?.close();
  await server?.stop();
  if (downloads) await rm(downloads, { recursive: true, force: true });
});

/** Polls `predicate` in the page (puppeteer's waitForFunction evaluates strings, which the CSP refuses). */
async function until(predicate, arg) {
  for (let i = 0; i < 100; i++) {
    if (await page.evaluate(predicate, arg)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${predicate}`);
}

async function shot(name) {
  await mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  console.log(`# screenshot: target/screenshots/${name}.png`);
}

test('Firefox: insights, funnels and retention show the API\'s numbers; filters and PNG work; no errors', async () => {
  assert.match(await firefox.version(), /firefox/i);
  const spec = { report: 'insights', from: day(-6), to: day(0), interval: 'day', events: [{ event: 'Page Viewed', measure: 'total' }], breakdown: 'plan', limit: 8 };
  const expected = await api('POST', '/api/v1/query', spec);
  assert.equal(expected.status, 200, expected.text);
  await page.goto(`${origin}/#/insights?${new URLSearchParams({ event: 'Page Viewed', measure: 'total', breakdown: 'plan', interval: 'day', from: day(-6), to: day(0), view: 'bar' })}`);
  await page.waitForSelector('[data-testid=insights-table] tbody tr');
  await page.waitForSelector('.chart canvas');
  const shown = await page.$$eval('[data-testid=insights-table] tbody tr', (trs) => trs.map((tr) => [tr.querySelector('th').textContent, Number(tr.querySelector('[data-total]').dataset.total)]));
  const want = expected.body.series.map((s) => [`Page Viewed (total) · ${s.segment}`, Object.values(s.points).reduce((a, v) => a + (v ?? 0), 0)]);
  assert.deepEqual(shown.sort(), want.sort());
  await shot('16-firefox-insights-bar');

  // The filter builder, through the keyboard-free path a user clicks.
  await page.goto(`${origin}/#/insights?${new URLSearchParams({ event: 'Page Viewed', measure: 'total', interval: 'day', from: day(-6), to: day(0), view: 'table' })}`);
  await page.waitForSelector('[data-testid=insights-table] tbody tr');
  await page.click('fieldset.filters button');
  await page.type('input[aria-label="Filter 1 property"]', 'plan');
  await page.type('input[aria-label="Filter 1 value"]', 'free');
  await page.click('form.controls button[type=submit]');
  await until(() => location.hash.includes('filter='));
  const filtered = await api('POST', '/api/v1/query', { ...spec, breakdown: undefined, limit: undefined, where: [{ property: 'plan', op: 'eq', value: 'free' }] });
  const filteredTotal = Object.values(filtered.body.series[0].points).reduce((a, v) => a + (v ?? 0), 0);
  await until((n) => Number(document.querySelector('[data-testid=insights-table] tbody [data-total]')?.dataset.total) === n, filteredTotal);

  const funnel = await api('POST', '/api/v1/query', { report: 'funnel', from: day(-29), to: day(0), window: '30d', counting: 'uniques', steps: [{ event: 'Page Viewed' }, { event: 'Signed Up' }] });
  await page.goto(`${origin}/#/funnels?${new URLSearchParams([['step', 'Page Viewed'], ['step', 'Signed Up'], ['window', '30d'], ['counting', 'uniques'], ['from', day(-29)], ['to', day(0)]])}`);
  await page.waitForSelector('[data-testid=funnel-table] [data-count]');
  const counts = await page.$$eval('[data-testid=funnel-table] [data-count]', (cells) => cells.map((c) => Number(c.dataset.count)));
  assert.deepEqual(counts, funnel.body.steps.map((s) => s.count));
  const buttons = await page.$$('div.actions button');
  const png = await Promise.all(buttons.map((b) => b.evaluate((e) => e.textContent))).then((texts) => buttons[texts.indexOf('Download PNG')]);
  await png.click();
  let saved = [];
  for (let i = 0; i < 50 && !saved.some((f) => f.endsWith('.png')); i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    saved = await readdir(downloads);
  }
  const file = saved.find((f) => f.endsWith('.png'));
  assert.ok(file, `Firefox saved the funnel's PNG: ${saved}`);
  assert.deepEqual([...(await readFile(path.join(downloads, file))).subarray(0, 4)], [137, 80, 78, 71], 'a PNG');
  await shot('17-firefox-funnel');

  const retention = await api('POST', '/api/v1/query', { report: 'retention', from: day(-6), to: day(0), unit: 'day', periods: 7, born: { event: 'Signed Up' }, return: { event: '$any' } });
  await page.goto(`${origin}/#/retention?${new URLSearchParams({ born: 'Signed Up', return: '$any', unit: 'day', periods: '7', from: day(-6), to: day(0) })}`);
  await page.waitForSelector('[data-testid=retention-table] tbody tr');
  const rows = await page.$$eval('[data-testid=retention-table] tbody tr', (trs) => trs.map((tr) => [tr.querySelector('th').textContent, ...[...tr.querySelectorAll('[data-count]')].map((c) => Number(c.dataset.count))]));
  assert.deepEqual(rows, retention.body.cohorts.map((c) => [c.start, ...c.counts]));
  assert.ok(rows.length > 0);

  for (const hash of ['#/live', '#/flows', '#/users', '#/security', '#/security/audit', '#/settings', '#/account']) {
    await page.goto(`${origin}/${hash}`);
    await page.waitForSelector('main h1');
    await page.waitForNetworkIdle({ idleTime: 300, timeout: 10_000 }).catch(() => null);
  }
  assert.deepEqual(await page.evaluate(() => window.cspViolations), [], 'no CSP violation in Firefox');
  assert.deepEqual(problems, [], 'no console error or page error in Firefox');
});
