// The official browser SDK (npm `mixpanel-browser` 2.x, dist/mixpanel.umd.js, no CDN) in Debian's
// Chromium, driven by playwright-core, against Hearth.
//
// The page comes from a small static server on another port, so every request to Hearth is
// cross-origin: XHR with credentials, which only works when Hearth echoes the Origin.
// Context A, batched (the default): events before and after identify(), register() super
// properties, people.set, set_group + get_group().set..., a track with {transport:'sendBeacon'}
// right before the page closes, then the same origin opened again (the SDK re-sends what it had
// queued, so the server must deduplicate). Context B: batch_requests:false (single objects).
// Ground truth is what the browser really sent (every request's body, decoded) plus the payloads
// that mixpanel.track() returned.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startHearth, utcDate, assertExactly, customProps, sleep, waitFor } from './harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MIXPANEL_JS = readFileSync(path.join(HERE, 'node_modules/mixpanel-browser/dist/mixpanel.umd.js'));
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Hearth e2e</title>
<script src="/mixpanel.umd.js"></script></head>
<body><h1>Hearth e2e</h1><button id="buy">Buy</button></body></html>`;

let server;
let site;
let siteOrigin;
let browser;

before(async () => {
  server = await startHearth({ name: 'browser' });
  site = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/mixpanel.umd.js') {
      res.writeHead(200, { 'Content-Type': 'application/javascript; charset=utf-8' });
      res.end(MIXPANEL_JS);
    } else if (url.pathname.endsWith('.html')) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(PAGE);
    } else {
      res.writeHead(204);
      res.end();
    }
  });
  await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
  siteOrigin = `http://127.0.0.1:${site.address().port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  await runScenario();
});

after(async () => {
  await browser?.close();
  site?.close();
  await server?.stop();
});

/** Watches a browser context: what it sent to Hearth, and anything that went wrong. */
function watch(context) {
  const watcher = { requests: [], sent: [], responses: [], problems: [], closing: new Set() };
  const isApi = (url) => url.startsWith(server.url + '/');
  context.on('request', (request) => {
    if (!isApi(request.url())) return;
    const url = new URL(request.url());
    const body = request.postData() || '';
    const form = new URLSearchParams(body);
    const data = form.get('data') ?? url.searchParams.get('data');
    let decoded = null;
    if (data !== null) {
      const text = /^\s*[[{]/.test(data) ? data : Buffer.from(data, 'base64').toString('utf8');
      decoded = JSON.parse(text);
    }
    watcher.requests.push({ method: request.method(), path: url.pathname, query: url.searchParams,
      contentType: request.headers()['content-type'], decoded, single: decoded !== null && !Array.isArray(decoded) });
    if (url.pathname.startsWith('/track') && decoded !== null) {
      for (const e of Array.isArray(decoded) ? decoded : [decoded]) watcher.sent.push(e);
    }
  });
  context.on('response', async (response) => {
    if (!isApi(response.url())) return;
    const headers = response.headers();
    const request = response.request();
    const entry = { path: new URL(response.url()).pathname, status: response.status(), headers,
      contentType: request.headers()['content-type'], requestOrigin: request.headers().origin };
    try {
      entry.body = await response.text();
    } catch {
      entry.body = undefined; // beacons and closed pages have no readable body
    }
    watcher.responses.push(entry);
    if (response.status() !== 200) watcher.problems.push(`HTTP ${response.status()} for ${response.url()}`);
  });
  context.on('requestfailed', (request) => {
    const page = request.frame()?.page();
    if (page && watcher.closing.has(page)) return; // in flight when the test closed the page
    watcher.problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`);
  });
  context.on('page', (page) => {
    page.on('console', (msg) => {
      if (msg.type() === 'error') watcher.problems.push(`console error: ${msg.text()}`);
    });
    page.on('pageerror', (err) => watcher.problems.push(`page error: ${err.message}`));
  });
  return watcher;
}

async function openPage(context, config) {
  const page = await context.newPage();
  await page.goto(`${siteOrigin}/index.html`);
  await page.evaluate(([token, cfg]) => new Promise((resolve) => {
    window.mixpanel.init(token, { ...cfg, loaded: () => resolve() });
  }), [server.token, { api_host: server.url, debug: true, ...config }]);
  return page;
}

async function closePage(watcher, page) {
  watcher.closing.add(page);
  await page.close({ runBeforeUnload: true });
}

// ---- The scenario, run once; the tests below check its outcome --------------------------------
let t0, a, b, device, deviceB, expected, today, exported;

async function runScenario() {
  t0 = Date.now() / 1000;
  const returned = []; // payloads mixpanel.track() returned

  // ---- Context A: batched requests (the default) ----------------------------------------------
  const contextA = await browser.newContext();
  a = watch(contextA);
  let page = await openPage(contextA, { batch_flush_interval_ms: 200 });
  returned.push(...await page.evaluate(() => {
    const mp = window.mixpanel;
    const out = [];
    out.push(mp.track('Page Opened', { step: 1, section: 'home' }));
    mp.register({ app_version: '1.2.3', theme: 'dark' });
    out.push(mp.track('Clicked', { step: 2, button: 'buy' }));
    mp.identify('browser-user-1');
    mp.people.set({ $name: 'Browser User', $email: 'bu@example.com', plan: 'pro' });
    mp.set_group('company_id', 'b-acme');
    const group = mp.get_group('company_id', 'b-acme');
    group.set({ name: 'Browser Acme', seats: 12 });
    group.set_once({ founded: 2020, name: 'ignored' });
    group.union('tags', ['x', 'y']);
    out.push(mp.track('Purchased', { step: 3, amount: 42.5, items: ['a', 'b'] }));
    return out;
  }));
  device = await page.evaluate(() => window.mixpanel.get_property('$device_id'));
  assert.match(device, /^[0-9a-f-]{20,}$/i, `device id ${device}`);

  // Everything so far is delivered by the batcher (XHR, 200 ms interval).
  const firstNames = ['Page Opened', 'Clicked', '$identify', 'Purchased'];
  today = utcDate(t0);
  const arrived = await waitFor(async () => {
    const events = await server.exportEvents(today, utcDate(Date.now() / 1000 + 5));
    return firstNames.every((n) => events.some((e) => e.event === n)) && events;
  }, { timeoutMs: 15000 });
  assert.ok(arrived, `batched events did not all arrive; requests: ${a.requests.length}, problems: ${a.problems}`);

  // A sendBeacon track, then the page is hidden and closed at once (the batcher flushes its queue
  // with navigator.sendBeacon and keeps the items, as it cannot know they arrived); then the same
  // origin is opened again, and the SDK sends its queue once more: the server must deduplicate.
  // First let the batcher go idle, so that no timed flush races the page-hide flush below (queued
  // items become due for a flush by a later page after twice this interval: 4 s).
  await page.evaluate(() => window.mixpanel.set_config({ batch_flush_interval_ms: 2000 }));
  await sleep(400);
  returned.push(await page.evaluate(() => new Promise((resolve) => {
    const payload = window.mixpanel.track('Left Page', { step: 4 }, { transport: 'sendBeacon' }, () => {
      // Queued: now the tab goes away (what a browser does first when a tab is closed).
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      document.dispatchEvent(new Event('visibilitychange', { bubbles: true }));
      resolve(payload);
    });
  })));
  await sleep(300); // lets playwright see the beacon request before the page is gone
  await closePage(a, page);
  await sleep(500);
  page = await openPage(contextA, { batch_flush_interval_ms: 200 });
  returned.push(await page.evaluate(() => window.mixpanel.track('Reopened', { step: 5 })));
  const reopenedDevice = await page.evaluate(() => window.mixpanel.get_property('$device_id'));
  assert.equal(reopenedDevice, device, 'the reopened page keeps its persisted identity');
  const leftPageId = returned[returned.length - 2].properties.$insert_id;
  const resent = await waitFor(() => a.sent.filter((e) => e.properties.$insert_id === leftPageId).length >= 2,
    { timeoutMs: 10000, intervalMs: 100 });
  assert.ok(resent, 'the reopened page did not send the queued beacon event again');
  await sleep(300);
  await closePage(a, page);

  // ---- Context B: batch_requests:false (one object per request) -------------------------------
  const contextB = await browser.newContext();
  b = watch(contextB);
  const pageB = await openPage(contextB, { batch_requests: false });
  returned.push(...await pageB.evaluate(() => {
    const mp = window.mixpanel;
    const out = [];
    out.push(mp.track('Unbatched One', { k: 1 }));
    out.push(mp.track('Unbatched Two', { k: 2 }));
    mp.identify('browser-user-2');
    mp.people.set({ plan: 'basic' });
    mp.people.increment('visits', 2);
    return out;
  }));
  deviceB = await pageB.evaluate(() => window.mixpanel.get_property('$device_id'));
  assert.notEqual(deviceB, device);
  await sleep(700);
  returned.push(await pageB.evaluate(() =>
    window.mixpanel.track('Unbatched Beacon', { k: 3 }, { transport: 'sendBeacon' })));
  await closePage(b, pageB);

  // ---- What arrived -----------------------------------------------------------------------------
  expected = new Map();
  for (const e of [...returned, ...a.sent, ...b.sent]) {
    assert.ok(e && e.properties && e.properties.$insert_id, `payload without $insert_id: ${JSON.stringify(e)}`);
    const known = expected.get(e.properties.$insert_id);
    // Prefer the copy the network saw (it carries mp_sent_by_lib_version), else the returned one.
    if (!known || Object.keys(e.properties).length > Object.keys(known.properties).length) {
      expected.set(e.properties.$insert_id, e);
    }
  }
  await contextA.close();
  await contextB.close();
  exported = await server.exportUntil(today, utcDate(Date.now() / 1000 + 5), expected.keys(), 15000);
}


const byName = (n, user) => exported.filter((e) => e.event === n && (!user || e.properties.distinct_id === user))
  .map((e) => e.properties);

test('every event the browser sent is exported exactly once (batched, unbatched, beacon, re-sent)', () => {
  const names = [...expected.values()].map((e) => e.event).sort();
  assert.deepEqual(names, ['$identify', '$identify', 'Clicked', 'Left Page', 'Page Opened', 'Purchased',
    'Reopened', 'Unbatched Beacon', 'Unbatched One', 'Unbatched Two'].sort());
  // The batched page's beacon items were sent again by the reopened page (dedup was exercised).
  const wireCounts = new Map();
  for (const e of a.sent) wireCounts.set(e.properties.$insert_id, (wireCounts.get(e.properties.$insert_id) || 0) + 1);
  assert.ok([...wireCounts.values()].some((n) => n > 1), 'no event was sent twice by the batched page');
  assertExactly(exported, expected);
});

test('identity: $device:<uuid> before identify(), the user id after, linked by $device_id/$user_id', () => {
  // Identity: $device:<uuid> before identify, the user id after, linked by $device_id/$user_id.
  for (const n of ['Page Opened', 'Clicked']) {
    const [p] = byName(n);
    assert.equal(p.distinct_id, `$device:${device}`, n);
    assert.equal(p.$device_id, device, n);
    assert.equal(p.$user_id, undefined, n);
  }
  const [identify] = byName('$identify', 'browser-user-1');
  assert.ok(identify, 'no $identify for browser-user-1');
  assert.equal(identify.$anon_distinct_id, `$device:${device}`);
  assert.equal(identify.$user_id, 'browser-user-1');
  assert.equal(identify.$device_id, device);
  for (const n of ['Purchased', 'Left Page', 'Reopened']) {
    const [p] = byName(n);
    assert.equal(p.distinct_id, 'browser-user-1', n);
    assert.equal(p.$user_id, 'browser-user-1', n);
    assert.equal(p.$device_id, device, n);
    assert.deepEqual(p.company_id, ['b-acme'], `${n}: group super property`);
  }
  // Super properties: registered after the first event.
  assert.equal(byName('Page Opened')[0].app_version, undefined);
  for (const n of ['Clicked', 'Purchased', 'Left Page', 'Reopened']) {
    assert.equal(byName(n)[0].app_version, '1.2.3', n);
    assert.equal(byName(n)[0].theme, 'dark', n);
  }
  assert.deepEqual(byName('Purchased')[0].items, ['a', 'b']);
  assert.equal(byName('Purchased')[0].amount, 42.5);
  const [identify2] = byName('$identify', 'browser-user-2');
  assert.equal(identify2.$anon_distinct_id, `$device:${deviceB}`);
  assert.equal(byName('Unbatched One')[0].distinct_id, `$device:${deviceB}`);
  assert.equal(byName('Unbatched Beacon')[0].distinct_id, 'browser-user-2');
});

test('enrichment from 127.0.0.1: client properties kept, no place, no IP', () => {
  // Client-side properties survive; enrichment from 127.0.0.1 adds no place; no IP is kept.
  for (const e of exported) {
    const p = e.properties;
    assert.equal(p.mp_lib, 'web', e.event);
    assert.equal(typeof p.$browser, 'string', e.event);
    assert.ok(p.$current_url?.startsWith(siteOrigin), `${e.event}: $current_url ${p.$current_url}`);
    assert.ok(p.time >= t0 - 5 && p.time <= Date.now() / 1000 + 5, `${e.event}: time ${p.time}`);
    assert.equal(p.mp_country_code, undefined, `${e.event}: loopback has no country`);
    assert.equal(p.$city, undefined);
    assert.equal(p.ip, undefined);
  }
});

test('the wire: batched arrays, unbatched single objects answered 1, sendBeacon, ip=1', () => {
  // The wire: batched arrays on /track/, single objects when unbatched, a beacon, ip=1.
  const tracksA = a.requests.filter((r) => r.path === '/track/');
  const tracksB = b.requests.filter((r) => r.path === '/track/');
  assert.ok(tracksA.length > 0 && tracksA.every((r) => Array.isArray(r.decoded)), 'batched /track/ bodies are arrays');
  assert.ok(tracksB.length >= 3 && tracksB.every((r) => r.single), 'unbatched /track/ bodies are single objects');
  assert.ok([...a.requests, ...b.requests].every((r) => r.query.get('ip') === '1'));
  const isBeacon = (r) => r.path === '/track/' && /text\/plain/.test(r.contentType || '');
  assert.ok(b.requests.some(isBeacon), `no sendBeacon (text/plain) request from the unbatched page: ${tracksB.map((r) => r.contentType)}`);
  assert.ok(a.requests.some(isBeacon), `no sendBeacon (text/plain) flush from the batched page: ${tracksA.map((r) => r.contentType)}`);
  assert.ok(a.requests.some((r) => r.path === '/engage/') && a.requests.some((r) => r.path === '/groups/'));
  const unbatchedBodies = b.responses.filter((r) => r.path === '/track/' && r.body !== undefined && r.body !== '');
  assert.ok(unbatchedBodies.length >= 2, 'unbatched responses readable');
  for (const r of unbatchedBodies) assert.equal(r.body, '1', 'unbatched /track/ answers exactly 1');
});

test('CORS: the page origin is echoed with credentials; no failed request, no console error', () => {
  // CORS: every API response echoes the page origin and allows credentials; nothing failed.
  // (Beacons are no-cors text/plain requests whose responses no page reads: CORS does not apply.)
  const apiResponses = [...a.responses, ...b.responses].filter((r) => !/text\/plain/.test(r.contentType || ''));
  assert.ok(apiResponses.length >= 6, `only ${apiResponses.length} API responses`);
  for (const r of apiResponses) {
    assert.equal(r.headers['access-control-allow-origin'], siteOrigin, `${r.path} (${r.contentType}, Origin ${r.requestOrigin}): ACAO`);
    assert.equal(r.headers['access-control-allow-credentials'], 'true', `${r.path}: ACAC`);
  }
  assert.deepEqual([...a.problems, ...b.problems], []);
});

test('profiles: people.set after identify(), set_group, group profile operations', async () => {
  // Profiles: user 1 (people.set + set_group), user 2, and the group profile.
  const user1 = await server.profile('browser-user-1');
  assert.ok(user1, 'no profile for browser-user-1');
  assert.deepStrictEqual(customProps(user1), { plan: 'pro', company_id: ['b-acme'] });
  assert.equal(typeof user1.$browser, 'string');
  const user2 = await server.profile('browser-user-2');
  assert.ok(user2, 'no profile for browser-user-2');
  assert.deepStrictEqual(customProps(user2), { plan: 'basic', visits: 2 });
  const group = await server.profile('b-acme', 'company_id');
  assert.ok(group, 'no group profile b-acme');
  assert.deepStrictEqual(customProps(group), { name: 'Browser Acme', seats: 12, founded: 2020, tags: ['x', 'y'] });
  // No profile was made for the anonymous device.
  assert.equal(await server.profile(`$device:${device}`), null);
});

// Hearth's documented privacy default: names and emails are never stored in plaintext.
test('people.set keeps plan; the personal $name and $email are stored only as tokens', async () => {
  const user1 = await server.profile('browser-user-1');
  assert.ok(user1, 'no profile for browser-user-1');
  assert.equal(user1.plan, 'pro', `plan not stored: ${JSON.stringify(user1)}`);
  for (const key of ['$name', '$email']) assert.match(String(user1[key]), /^pii:[A-Za-z0-9_-]{22}$/, `${key} is not a token: ${JSON.stringify(user1)}`);
  assert.ok(!JSON.stringify(user1).includes('@'), `an email is stored in plaintext: ${JSON.stringify(user1)}`);
});
