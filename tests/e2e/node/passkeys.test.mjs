// Passkey sign-in end to end in Debian's Chromium with a virtual authenticator (Chrome DevTools
// Protocol WebAuthn domain), driven by playwright-core, against the real binary:
// `hearth admin create` prints a one-time enrolment link; the owner registers a passkey and is
// signed in (HttpOnly SameSite=Strict cookie + CSRF token); reports need the CSRF header on POST;
// sign-out, sign-in again (a new session id), step-up; the owner invites an analyst, who enrols
// with their own authenticator and is refused exports and reveals; disabling the analyst and
// `hearth sessions revoke --all` each end sessions on the very next request. No session id,
// CSRF token or enrolment token is left in plaintext in the data directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startHearth, HEARTH_BIN, REPO_ROOT } from './harness.mjs';

const execFileP = promisify(execFile);
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
let server;
let browser;
let origin;

async function hearth(...args) {
  const { stdout } = await execFileP(HEARTH_BIN, [...args, '--data', server.dataDir], { cwd: REPO_ROOT, env: { ...process.env, HEARTH_AUTH__ORIGIN: origin } });
  return stdout;
}

before(async () => {
  server = await startHearth({ name: 'passkeys', env: (port) => ({ HEARTH_AUTH__ORIGIN: `http://localhost:${port}` }) });
  origin = `http://localhost:${server.port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A browser context on Hearth's own origin with a virtual platform authenticator. */
async function member() {
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`${origin}/healthz`);
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  });
  await page.evaluate(() => {
    const toBuf = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4)), (c) => c.charCodeAt(0));
    const toB64u = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    window.hearth = { csrf: null };
    window.hearth.post = async (path, body, headers = {}) => {
      const h = { 'content-type': 'application/json', ...headers };
      if (window.hearth.csrf) h['x-csrf-token'] = window.hearth.csrf;
      const res = await fetch(path, { method: 'POST', headers: h, body: JSON.stringify(body ?? {}) });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    };
    window.hearth.get = async (path) => {
      const res = await fetch(path);
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    };
    const assertion = (cred) => ({
      id: cred.id, rawId: toB64u(cred.rawId), type: cred.type, extensions: cred.getClientExtensionResults(),
      response: { authenticatorData: toB64u(cred.response.authenticatorData), clientDataJSON: toB64u(cred.response.clientDataJSON),
        signature: toB64u(cred.response.signature), userHandle: cred.response.userHandle ? toB64u(cred.response.userHandle) : null },
    });
    const requestOptions = (options) => {
      const pk = options.publicKey;
      pk.challenge = toBuf(pk.challenge);
      (pk.allowCredentials || []).forEach((c) => { c.id = toBuf(c.id); });
      return pk;
    };
    window.hearth.enrol = async (token) => {
      const start = await window.hearth.post('/api/v1/auth/enrol/start', { token });
      if (start.status !== 200) return start;
      const pk = start.body.options.publicKey;
      pk.challenge = toBuf(pk.challenge);
      pk.user.id = toBuf(pk.user.id);
      (pk.excludeCredentials || []).forEach((c) => { c.id = toBuf(c.id); });
      const cred = await navigator.credentials.create({ publicKey: pk });
      const credential = { id: cred.id, rawId: toB64u(cred.rawId), type: cred.type, extensions: cred.getClientExtensionResults(),
        response: { attestationObject: toB64u(cred.response.attestationObject), clientDataJSON: toB64u(cred.response.clientDataJSON) } };
      const done = await window.hearth.post('/api/v1/auth/enrol/finish', { ceremony: start.body.ceremony, credential });
      if (done.status === 200) window.hearth.csrf = done.body.csrf_token;
      return done;
    };
    window.hearth.login = async (email) => {
      const start = await window.hearth.post('/api/v1/auth/login/start', { email });
      if (start.status !== 200) return start;
      const cred = await navigator.credentials.get({ publicKey: requestOptions(start.body.options) });
      const done = await window.hearth.post('/api/v1/auth/login/finish', { ceremony: start.body.ceremony, credential: assertion(cred) });
      if (done.status === 200) window.hearth.csrf = done.body.csrf_token;
      return done;
    };
    window.hearth.stepUp = async () => {
      const start = await window.hearth.post('/api/v1/auth/step-up/start', {});
      if (start.status !== 200) return start;
      const cred = await navigator.credentials.get({ publicKey: requestOptions(start.body.options) });
      return window.hearth.post('/api/v1/auth/step-up/finish', { ceremony: start.body.ceremony, credential: assertion(cred) });
    };
  });
  return { context, page, run: (fn, arg) => page.evaluate(fn, arg) };
}

const linkToken = (stdout) => stdout.match(/enrol#([0-9a-f]{64})/)[1];

async function allFiles(dir) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...await allFiles(full)); else out.push(full);
  }
  return out;
}

test('owner enrols a passkey, signs in and out, steps up, invites and disables a member; revocation bites at once', async () => {
  const created = await hearth('admin', 'create', 'owner@example.com');
  assert.match(created, new RegExp(`${origin}/enrol#`), created);
  const ownerToken = linkToken(created);
  const owner = await member();

  const enrolled = await owner.run((t) => window.hearth.enrol(t), ownerToken);
  assert.equal(enrolled.status, 200, JSON.stringify(enrolled));
  assert.equal(enrolled.body.member.role, 'owner');
  const [cookie] = (await owner.context.cookies()).filter((c) => c.name === 'hearth_session');
  assert.ok(cookie && cookie.httpOnly && cookie.sameSite === 'Strict', JSON.stringify(cookie));
  assert.equal((await owner.run((t) => window.hearth.enrol(t), ownerToken)).status, 400, 'an enrolment link works once');
  const codes = enrolled.body.recovery_codes;
  assert.equal(codes.length, 10);
  assert.match(codes[0], /^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$/);

  const me = await owner.run(() => window.hearth.get('/api/v1/auth/me'));
  assert.equal(me.status, 200);
  assert.equal(me.body.member.email, 'owner@example.com');
  const spec = { report: 'insights', from: '2026-01-01', to: '2026-01-02', interval: 'day', events: [{ event: '$any', measure: 'total' }] };
  const report = await owner.run((s) => window.hearth.post('/api/v1/query', s), spec);
  assert.equal(report.status, 200, JSON.stringify(report));
  const noCsrf = await owner.run(async (s) => (await fetch('/api/v1/query', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(s) })).status, spec);
  assert.equal(noCsrf, 403, 'state-changing requests need the CSRF token');

  const firstSession = me.body.session.id;
  assert.equal((await owner.run(() => window.hearth.post('/api/v1/auth/logout'))).status, 204);
  assert.equal((await owner.run(() => window.hearth.get('/api/v1/auth/me'))).status, 401);
  const again = await owner.run(() => window.hearth.login('Owner@Example.com'));
  assert.equal(again.status, 200, JSON.stringify(again));
  assert.notEqual(again.body.session, firstSession, 'a new session id at every sign-in');
  assert.equal((await owner.run(() => window.hearth.login('nobody@example.com'))).status, 401);
  assert.equal((await owner.run(() => window.hearth.stepUp())).status, 200);

  // The owner holds view_pii: after the step-up, a profile's email is revealed, and audited.
  const engage = [{ $token: server.token, $distinct_id: 'pat', $set: { $email: 'pat@example.org', plan: 'pro' } }];
  const sent = await fetch(`${origin}/engage?verbose=1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(engage) });
  assert.equal((await sent.json()).status, 1);
  const masked = await owner.run(() => window.hearth.get('/api/v1/people/pat'));
  assert.match(masked.body.properties.$email, /^pii:/);
  const revealed = await owner.run(() => window.hearth.get('/api/v1/people/pat?reveal=true'));
  assert.equal(revealed.status, 200, JSON.stringify(revealed));
  assert.equal(revealed.body.properties.$email, 'pat@example.org');

  const invited = await owner.run(() => window.hearth.post('/api/v1/admin/members', { email: 'analyst@example.com', role: 'analyst' }));
  assert.equal(invited.status, 201, JSON.stringify(invited));
  const analyst = await member();
  const analystToken = invited.body.enrolment_link.split('#')[1];
  assert.equal((await analyst.run((t) => window.hearth.enrol(t), analystToken)).status, 200);
  assert.equal((await analyst.run((s) => window.hearth.post('/api/v1/query', s), spec)).status, 200, 'analysts read reports');
  assert.equal((await analyst.run(() => window.hearth.get('/api/2.0/export?from_date=2026-01-01&to_date=2026-01-02'))).status, 403, 'no export permission');
  assert.equal((await analyst.run(() => window.hearth.get('/api/v1/people/x?reveal=true'))).status, 403, 'no view_pii permission');
  assert.equal((await analyst.run(() => window.hearth.get('/api/v1/admin/members'))).status, 403, 'analysts do not manage members');
  const members = await owner.run(() => window.hearth.get('/api/v1/admin/members'));
  assert.deepEqual(members.body.members.map((m) => [m.email, m.role]), [['owner@example.com', 'owner'], ['analyst@example.com', 'analyst']]);

  const analystId = invited.body.member;
  // A role change, stepped up and audited; the analyst's next request has the new rights.
  const changed = await owner.run((id) => window.hearth.post(`/api/v1/admin/members/${id}`, { export: true }), analystId);
  assert.equal(changed.status, 200, JSON.stringify(changed));
  assert.equal((await analyst.run(() => window.hearth.stepUp())).status, 200);
  assert.equal((await analyst.run(() => window.hearth.get('/api/2.0/export?from_date=2026-01-01&to_date=2026-01-02'))).status, 200, 'granted and stepped up');
  const disabled = await owner.run((id) => window.hearth.post(`/api/v1/admin/members/${id}/disable`), analystId);
  assert.equal(disabled.status, 200, JSON.stringify(disabled));
  assert.equal((await analyst.run(() => window.hearth.get('/api/v1/auth/me'))).status, 401, 'disabling kills the session on its next request');

  // Every passkey lost: a recovery code gives an enrolment link (once), and a new passkey.
  const recovered = await fetch(`${origin}/api/v1/auth/recover`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'owner@example.com', code: codes[3] }) });
  assert.equal(recovered.status, 200);
  const { enrolment_token: recoveryToken } = await recovered.json();
  const again2 = await fetch(`${origin}/api/v1/auth/recover`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'owner@example.com', code: codes[3] }) });
  assert.equal(again2.status, 401, 'recovery codes are single use');
  const newDevice = await member();
  assert.equal((await newDevice.run((t) => window.hearth.enrol(t), recoveryToken)).status, 200, 'the recovered owner registers a new passkey');
  assert.equal((await newDevice.run(() => window.hearth.get('/api/v1/auth/me'))).body.member.email, 'owner@example.com');

  const sessions = await owner.run(() => window.hearth.get('/api/v1/auth/sessions'));
  assert.equal(sessions.body.sessions.length, 2, JSON.stringify(sessions.body));
  // Containment of one session: the new device's, from the command line.
  const deviceSession = sessions.body.sessions.find((s) => !s.current).id;
  assert.match(await hearth('incident', 'contain', '--session', deviceSession), /revoked 1 session/);
  assert.equal((await newDevice.run(() => window.hearth.get('/api/v1/auth/me'))).status, 401, 'a contained session dies on its next request');
  assert.equal((await owner.run(() => window.hearth.get('/api/v1/auth/me'))).status, 200, 'the others live');
  const ownerCookie = (await owner.context.cookies()).find((c) => c.name === 'hearth_session').value;
  const csrf = await owner.run(() => window.hearth.csrf);
  await hearth('sessions', 'revoke', '--all');
  assert.equal((await owner.run(() => window.hearth.get('/api/v1/auth/me'))).status, 401, 'the emergency switch bites on the next request');

  const audit = await hearth('audit', 'list', '--json');
  const actions = audit.split('\n').filter(Boolean).map((line) => JSON.parse(line).action);
  for (const action of ['auth.enrol', 'auth.login', 'auth.login.failed', 'auth.step_up', 'auth.logout', 'member.invite', 'member.disable', 'session.revoke', 'query', 'pii.reveal', 'auth.recover', 'auth.recover.failed', 'member.change']) {
    assert.ok(actions.includes(action), `${action} not audited: ${actions.join(',')}`);
  }

  for (const file of await allFiles(server.baseDir)) {
    if (file.endsWith('hearth.log') || file.includes('node_modules')) continue;
    const bytes = await readFile(file);
    for (const [name, secret] of [['session id', ownerCookie], ['CSRF token', csrf], ['enrolment token', ownerToken], ['member email', 'owner@example.com'], ['profile email', 'pat@example.org']]) {
      assert.ok(!bytes.includes(secret), `${name} in plaintext in ${file}`);
    }
  }
  const log = await readFile(server.logPath, 'utf8');
  for (const secret of [ownerCookie, csrf, ownerToken]) assert.ok(!log.includes(secret), 'a secret reached the log');
});
