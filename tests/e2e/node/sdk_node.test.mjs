// The official Node SDK (npm `mixpanel` 0.x) against Hearth.
//
// track/people/groups go over plain http (init {host:'127.0.0.1:PORT', protocol:'http'}): GET with
// ?ip=0&verbose=0&data=<base64>, the SDK accepts only a body of exactly `1`. track_batch and
// import_batch POST form data=<base64 array>.
//
// The SDK refuses to send an API secret over http ("Must use HTTPS if authenticating with API
// Secret", for every endpoint), so the import client talks https to a small TLS-terminating proxy
// in this test (self-signed certificate made with openssl), which forwards to Hearth unchanged:
// the way a secret reaches a self-hosted server behind a reverse proxy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import Mixpanel from 'mixpanel';
import { startHearth, utcDate, assertExactly, customProps, basicAuth } from './harness.mjs';

const DAY = 86400;
let server;
let tlsProxy;
let tlsDir;

function startTlsProxy(targetPort) {
  tlsDir = mkdtempSync(path.join(os.tmpdir(), 'hearth-tls-'));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', path.join(tlsDir, 'key.pem'), '-out', path.join(tlsDir, 'cert.pem'),
  ], { stdio: 'ignore' });
  const proxy = https.createServer({
    key: readFileSync(path.join(tlsDir, 'key.pem')),
    cert: readFileSync(path.join(tlsDir, 'cert.pem')),
  }, (req, res) => {
    const upstream = http.request({
      host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers,
    }, (up) => {
      res.writeHead(up.statusCode, up.headers);
      up.pipe(res);
    });
    upstream.on('error', (err) => {
      res.writeHead(502);
      res.end(String(err));
    });
    req.pipe(upstream);
  });
  return new Promise((resolve) => proxy.listen(0, '127.0.0.1', () => resolve(proxy)));
}

before(async () => {
  server = await startHearth({ name: 'node-sdk' });
  tlsProxy = await startTlsProxy(server.port);
  // Only for the self-signed certificate of the proxy above (the SDK's agent takes no CA option).
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
});

after(async () => {
  tlsProxy?.close();
  if (tlsDir) rmSync(tlsDir, { recursive: true, force: true });
  await server?.stop();
});

const quietLogger = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

function httpClient() {
  return Mixpanel.init(server.token, {
    host: `127.0.0.1:${server.port}`, protocol: 'http', keepAlive: false, logger: quietLogger,
  });
}

function importClient() {
  return Mixpanel.init(server.token, {
    host: `127.0.0.1:${tlsProxy.address().port}`, protocol: 'https', secret: server.secret,
    keepAlive: false, logger: quietLogger,
  });
}

/** Calls an SDK method with a trailing callback; rejects with the SDK's error(s). */
function call(fn, ...args) {
  return new Promise((resolve, reject) => {
    fn(...args, (err) => {
      if (err && !(Array.isArray(err) && err.length === 0)) {
        reject(Array.isArray(err) ? new Error(err.map(String).join('; ')) : err);
      } else {
        resolve();
      }
    });
  });
}

const insertId = () => crypto.randomBytes(12).toString('hex');
const clone = (v) => JSON.parse(JSON.stringify(v));

test('track, track_batch and import arrive exactly once, deduplicated', async () => {
  const mp = httpClient();
  const imp = importClient();
  const expected = new Map();
  const now = Date.now();

  // track: GET /track?ip=0&verbose=0&data=<base64 object>; `time` as a Date becomes milliseconds.
  const custom = {
    plan: 'pro', price: 19.5, n: 7, ok: true, off: false, list: ['x', 'y'],
    nested: { a: 1, b: { c: 'd' } }, text: 'naïve café ☕ "q" & = + %', empty: '',
  };
  for (let i = 0; i < 5; i++) {
    const properties = {
      ...clone(custom), i, distinct_id: `node-user-${i % 2}`,
      time: new Date(now - i * 1000 - 123), $insert_id: insertId(),
    };
    const sent = { event: 'Node Track', properties: { ...clone(properties), time: properties.time.getTime(), mp_lib: 'node', $lib_version: '0.24.0' } };
    await call(mp.track, 'Node Track', properties);
    expected.set(sent.properties.$insert_id, sent);
    // The same event again (a client retry): deduplicated.
    await call(mp.track, 'Node Track', { ...clone(properties), time: new Date(sent.properties.time) });
  }
  // time in seconds with a millisecond fraction.
  {
    const properties = { distinct_id: 'node-user-s', time: Math.round(now - 5000) / 1000, $insert_id: insertId(), unit: 's' };
    await call(mp.track, 'Node Seconds', clone(properties));
    expected.set(properties.$insert_id, { event: 'Node Seconds', properties: { ...properties, mp_lib: 'node' } });
  }

  // track_batch: POST form data=<base64 array>, 50 per request (50 + 50 + 20); sent twice.
  const batch = [];
  for (let i = 0; i < 120; i++) {
    batch.push({ event: 'Node Batch', properties: {
      distinct_id: `node-batch-${i % 9}`, time: now - 60000 - i * 10, $insert_id: insertId(), i, even: i % 2 === 0,
    } });
  }
  await call(mp.track_batch, clone(batch));
  await call(mp.track_batch, clone(batch));
  for (const e of batch) expected.set(e.properties.$insert_id, e);

  // import (GET /import, Basic secret) and import_batch (POST), 3 days old; each sent twice.
  const oldMs = now - 3 * DAY * 1000;
  for (let i = 0; i < 4; i++) {
    const props = { distinct_id: 'node-importer', $insert_id: insertId(), i, source: 'backfill' };
    const time = new Date(oldMs + i * 1000 + 7);
    await call(imp.import, 'Node Import', time, clone(props));
    await call(imp.import, 'Node Import', time, clone(props));
    expected.set(props.$insert_id, { event: 'Node Import', properties: { ...props, time: time.getTime() } });
  }
  const importBatch = [];
  for (let i = 0; i < 70; i++) {
    importBatch.push({ event: 'Node Import Batch', properties: {
      distinct_id: `node-importer-${i % 4}`, time: Math.floor(oldMs / 1000) - i, $insert_id: insertId(), i,
    } });
  }
  await call(imp.import_batch, clone(importBatch));
  await call(imp.import_batch, clone(importBatch));
  for (const e of importBatch) expected.set(e.properties.$insert_id, e);

  const times = [...expected.values()].map((e) => (e.properties.time >= 1e11 ? e.properties.time / 1000 : e.properties.time));
  const from = utcDate(Math.min(...times));
  const to = utcDate(Math.max(...times));
  const exported = await server.exportUntil(from, to, expected.keys());
  assertExactly(exported, expected);
  for (const e of exported) {
    assert.equal(e.properties.ip, undefined);
    assert.equal(e.properties.mp_country_code, undefined, 'ip=0: no geolocation');
  }
  const imported = await server.exportEvents(from, to, ['Node Import']);
  assert.deepEqual(imported.map((e) => e.properties.i).sort(), [0, 1, 2, 3]);
});

test('verbose=0 answers exactly 1; an event without time or $insert_id gets both', async () => {
  const data = Buffer.from(JSON.stringify({ event: 'Raw Get', properties: {
    token: server.token, distinct_id: 'node-raw', time: Date.now(), $insert_id: insertId(),
  } })).toString('base64');
  const res = await fetch(`${server.url}/track?ip=0&verbose=0&data=${encodeURIComponent(data)}`);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), '1');

  // The SDK adds neither time nor $insert_id nor distinct_id: the server supplies time and an id.
  const mp = httpClient();
  const before = Date.now() / 1000;
  await call(mp.track, 'Node Bare', { distinct_id: 'node-bare', marker: 'bare' });
  const after = Date.now() / 1000;
  const today = utcDate(before);
  let bare = [];
  for (let i = 0; i < 40 && bare.length === 0; i++) {
    bare = (await server.exportEvents(today, utcDate(after), ['Node Bare']));
    if (bare.length === 0) await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(bare.length, 1, JSON.stringify(bare));
  const props = bare[0].properties;
  assert.equal(props.distinct_id, 'node-bare');
  assert.equal(props.marker, 'bare');
  assert.ok(props.time >= Math.floor(before) - 1 && props.time <= after + 1, `arrival time ${props.time} not in [${before}, ${after}]`);
  assert.equal(typeof props.$insert_id, 'string');
  assert.ok(props.$insert_id.length > 0);

  // A wrong token is not accepted into this project.
  const bad = Buffer.from(JSON.stringify({ event: 'Wrong Token', properties: {
    token: 'not-a-token', distinct_id: 'x', time: Date.now(), $insert_id: insertId(),
  } })).toString('base64');
  const res2 = await fetch(`${server.url}/track?ip=0&verbose=0&data=${encodeURIComponent(bad)}`);
  await res2.text();
  const wrong = await server.exportEvents(today, utcDate(after), ['Wrong Token']);
  assert.deepEqual(wrong, []);

  // /import refuses the public token as credentials and anonymous requests.
  const body = JSON.stringify([{ event: 'Anon Import', properties: { time: Date.now(), distinct_id: 'x', $insert_id: insertId() } }]);
  for (const auth of [undefined, basicAuth('wrong-secret')]) {
    const r = await fetch(`${server.url}/import?strict=1`, {
      method: 'POST', body, headers: { 'Content-Type': 'application/json', ...(auth ? { Authorization: auth } : {}) },
    });
    await r.text();
    assert.equal(r.status, 401, `import with ${auth ? 'a wrong secret' : 'no auth'}`);
  }
});

test('people operations have Mixpanel semantics', async () => {
  const mp = httpClient();
  const alice = 'node-alice';
  await call(mp.people.set.bind(mp.people), alice, { $name: 'Alice', $email: 'a@example.com', plan: 'free', temp: 1, age: 40 });
  await call(mp.people.set_once.bind(mp.people), alice, { plan: 'ignored', first: 'yes' });
  await call(mp.people.set.bind(mp.people), alice, 'plan', 'pro');
  await call(mp.people.increment.bind(mp.people), alice, 'logins');
  await call(mp.people.increment.bind(mp.people), alice, { logins: 2, credits: -5, age: -1 });
  await call(mp.people.append.bind(mp.people), alice, 'tags', 'a');
  await call(mp.people.append.bind(mp.people), alice, { tags: 'b' });
  await call(mp.people.union.bind(mp.people), alice, { colors: ['red', 'blue'] });
  await call(mp.people.union.bind(mp.people), alice, { colors: 'green' });
  await call(mp.people.union.bind(mp.people), alice, { colors: ['blue'] });
  await call(mp.people.remove.bind(mp.people), alice, { colors: 'red' });
  await call(mp.people.unset.bind(mp.people), alice, 'temp');

  const bob = 'node-bob';
  await call(mp.people.set.bind(mp.people), bob, { plan: 'free' });
  await call(mp.people.delete_user.bind(mp.people), bob);

  const profile = await server.profile(alice);
  assert.ok(profile, 'alice has no profile');
  assert.deepStrictEqual(customProps(profile), {
    plan: 'pro', first: 'yes', logins: 3, credits: -5, age: 39,
    tags: ['a', 'b'], colors: ['blue', 'green'],
  });
  assert.equal(await server.profile(bob), null, 'deleted profile still returned');
  const both = await server.engage({ distinct_ids: [alice, bob] });
  assert.equal(both.total, 1);
});

test('group operations have Mixpanel semantics', async () => {
  const mp = httpClient();
  const g = mp.groups;
  const key = 'company_id';
  await call(g.set.bind(g), key, 'n-acme', { name: 'Acme', size: 5, tier: 'gold' });
  await call(g.set_once.bind(g), key, 'n-acme', { name: 'ignored', founded: 2001 });
  await call(g.union.bind(g), key, 'n-acme', { domains: ['a.com', 'b.com'] });
  await call(g.union.bind(g), key, 'n-acme', { domains: ['b.com', 'c.com'] });
  await call(g.remove.bind(g), key, 'n-acme', { domains: 'a.com' });
  await call(g.unset.bind(g), key, 'n-acme', 'tier');
  await call(g.set.bind(g), key, 'n-globex', { name: 'Globex' });
  await call(g.delete_group.bind(g), key, 'n-globex');

  const acme = await server.profile('n-acme', key);
  assert.ok(acme, 'group n-acme has no profile');
  assert.deepStrictEqual(customProps(acme), { name: 'Acme', size: 5, founded: 2001, domains: ['b.com', 'c.com'] });
  assert.equal(await server.profile('n-globex', key), null);
  assert.equal(await server.profile('n-acme'), null, 'a group profile is not a user profile');
});

// Hearth's documented privacy default: names, emails and phone numbers are
// never stored in plaintext: each is sealed under the person's own key and
// stored as a keyed-hash token.
test('personal profile fields are stored as tokens, the other reserved ones kept', async () => {
  const mp = httpClient();
  const personal = { $name: 'Node Person', $first_name: 'Node', $last_name: 'Person', $email: 'np@example.com', $phone: '+15550100' };
  const kept = { $avatar: 'https://example.com/a.png', $created: '2026-01-02T03:04:05', plan: 'x' };
  await call(mp.people.set.bind(mp.people), 'node-reserved', { ...personal, ...kept });
  const profile = await server.profile('node-reserved');
  assert.ok(profile, 'no profile');
  for (const [key, value] of Object.entries(kept)) assert.equal(profile[key], value, `${key} not kept: ${JSON.stringify(profile)}`);
  for (const key of Object.keys(personal)) assert.match(String(profile[key]), /^pii:[A-Za-z0-9_-]{22}$/, `${key} is not a token: ${JSON.stringify(profile)}`);
  for (const value of Object.values(personal)) assert.ok(!JSON.stringify(profile).includes(value), `${value} stored in plaintext`);
});
