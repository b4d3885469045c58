// Shared harness of the Node end-to-end tests: starts a Hearth server of its own (temporary data
// directory, a project made with `hearth project create --json`, `hearth serve` on a free loopback
// port, ready once GET /readyz answers 200), and queries its export and engage APIs.
//
// The binary is target/debug/hearth unless HEARTH_BIN names another one.
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm, readFile, appendFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const HEARTH_BIN = process.env.HEARTH_BIN || path.join(REPO_ROOT, 'target/debug/hearth');
const READY_TIMEOUT_MS = Number(process.env.HEARTH_READY_TIMEOUT || 30) * 1000;

const execFileP = promisify(execFile);
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** UTC calendar date (YYYY-MM-DD) of a time in seconds (or milliseconds, when >= 1e11). */
export function utcDate(t) {
  const ms = t >= 1e11 ? t : t * 1000;
  return new Date(ms).toISOString().slice(0, 10);
}

export function basicAuth(user, password = '') {
  return 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes; returns the last value. */
export async function waitFor(fn, { timeoutMs = 10000, intervalMs = 200 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value || Date.now() > deadline) return value;
    await sleep(intervalMs);
  }
}

export async function startHearth({ name = 'node-e2e', args = [], env = () => ({}) } = {}) {
  const baseDir = await mkdtemp(path.join(os.tmpdir(), 'hearth-e2e-'));
  const dataDir = path.join(baseDir, 'data');
  const logPath = path.join(baseDir, 'hearth.log');
  let project;
  try {
    const { stdout, stderr } = await execFileP(
      HEARTH_BIN, ['project', 'create', name, '--data', dataDir, '--json'], { cwd: REPO_ROOT });
    await appendFile(logPath, `--- hearth project create ${name}\n${stderr}`);
    const lines = stdout.split('\n').filter((l) => l.trim());
    project = JSON.parse(lines[lines.length - 1]);
  } catch (err) {
    throw new Error(`hearth project create failed: ${err.message}\n${err.stderr || ''}`);
  }
  for (const key of ['id', 'name', 'token', 'secret']) {
    assert.ok(key in project, `project JSON lacks ${key}: ${JSON.stringify(project)}`);
  }

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const log = createWriteStream(logPath, { flags: 'a' });
  const serveArgs = ['serve', '--data', dataDir, '--listen', `127.0.0.1:${port}`, ...args];
  log.write(`--- ${HEARTH_BIN} ${serveArgs.join(' ')}\n`);
  const proc = spawn(HEARTH_BIN, serveArgs, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env(port) } });
  proc.stdout.pipe(log);
  proc.stderr.pipe(log);
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));

  const server = {
    name, url, port, dataDir, baseDir, logPath, proc,
    token: project.token,
    secret: project.secret,
    projectId: project.id,
    secretAuth: basicAuth(project.secret),

    async logTail(lines = 40) {
      try {
        return (await readFile(logPath, 'utf8')).split('\n').slice(-lines).join('\n');
      } catch {
        return '(no log)';
      }
    },

    async stop({ keep = false } = {}) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await exited;
      }
      if (!keep && !process.env.HEARTH_KEEP_TMP) await rm(baseDir, { recursive: true, force: true });
    },

    /** Raw export as an array of {event, properties}. */
    async exportEvents(fromDate, toDate, event) {
      const params = new URLSearchParams({ from_date: fromDate, to_date: toDate });
      if (event) params.set('event', JSON.stringify(event));
      const res = await fetch(`${url}/api/2.0/export?${params}`, {
        headers: { Authorization: server.secretAuth, 'Accept-Encoding': 'identity' },
      });
      const text = await res.text();
      assert.equal(res.status, 200, `export ${fromDate}..${toDate}: HTTP ${res.status} ${text.slice(0, 300)}`);
      return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
    },

    /** Exports until every expected $insert_id is there (or the timeout); returns the last export. */
    async exportUntil(fromDate, toDate, insertIds, timeoutMs = 10000) {
      const wanted = [...insertIds];
      let events = [];
      await waitFor(async () => {
        events = await server.exportEvents(fromDate, toDate);
        const seen = new Set(events.map((e) => e.properties?.$insert_id));
        return wanted.every((id) => seen.has(id));
      }, { timeoutMs, intervalMs: 250 });
      return events;
    },

    /** POST /api/2.0/engage with form fields (arrays and objects as JSON). */
    async engage(fields) {
      const form = new URLSearchParams();
      for (const [key, value] of Object.entries(fields)) {
        form.set(key, typeof value === 'object' ? JSON.stringify(value) : String(value));
      }
      const res = await fetch(`${url}/api/2.0/engage`, {
        method: 'POST',
        headers: { Authorization: server.secretAuth, 'Content-Type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      });
      const text = await res.text();
      assert.equal(res.status, 200, `engage ${JSON.stringify(fields)}: HTTP ${res.status} ${text.slice(0, 300)}`);
      const body = JSON.parse(text);
      assert.equal(body.status, 'ok', text);
      assert.ok(Array.isArray(body.results), text);
      assert.equal(body.total, body.results.length, text);
      return body;
    },

    /** $properties of one user profile (GET /api/v1/people/{id}: listings leave personal
     * fields out), or of a group profile with dataGroupId; null when there is none. */
    async profile(distinctId, dataGroupId) {
      if (!dataGroupId) {
        const res = await fetch(`${url}/api/v1/people/${encodeURIComponent(distinctId)}`, { headers: { Authorization: server.secretAuth } });
        const text = await res.text();
        if (res.status === 404) return null;
        assert.equal(res.status, 200, `people/${distinctId}: HTTP ${res.status} ${text.slice(0, 300)}`);
        const body = JSON.parse(text);
        assert.equal(body.distinct_id, distinctId, text);
        return body.properties;
      }
      const fields = { distinct_ids: [distinctId] };
      if (dataGroupId) fields.data_group_id = dataGroupId;
      const body = await server.engage(fields);
      assert.ok(body.total <= 1, JSON.stringify(body));
      if (body.results.length === 0) return null;
      assert.equal(body.results[0].$distinct_id, distinctId);
      return body.results[0].$properties;
    },
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`hearth serve exited (${proc.exitCode ?? proc.signalCode}) before ready:\n${await server.logTail()}`);
    }
    try {
      const res = await fetch(`${url}/readyz`);
      last = res.status;
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch (err) {
      last = err.cause?.code || err.message;
    }
    if (Date.now() > deadline) {
      await server.stop({ keep: true });
      throw new Error(`hearth serve not ready after ${READY_TIMEOUT_MS} ms (last: ${last}):\n${await server.logTail()}`);
    }
    await sleep(25);
  }
  return server;
}

/** Counts of each $insert_id in an export. */
export function insertIdCounts(events) {
  const counts = new Map();
  for (const e of events) {
    const id = e.properties?.$insert_id;
    counts.set(id, (counts.get(id) || 0) + 1);
  }
  return counts;
}

/** Properties not starting with `$` (Mixpanel's reserved and server-maintained ones). */
export function customProps(props) {
  return Object.fromEntries(Object.entries(props || {}).filter(([k]) => !k.startsWith('$')));
}

/**
 * Asserts the export holds exactly the `expected` events ($insert_id -> {event, properties}),
 * each once, with the same name, distinct_id, time (within 1 ms; ms times are normalised) and
 * every other sent property except `ignore`.
 */
export function assertExactly(exported, expected, { ignore = ['token', 'time'] } = {}) {
  const counts = insertIdCounts(exported);
  const duplicated = [...counts].filter(([, n]) => n > 1);
  const unknown = [...counts.keys()].filter((id) => !expected.has(id));
  const missing = [...expected.keys()].filter((id) => !counts.has(id));
  assert.deepEqual(duplicated, [], `events exported more than once: ${JSON.stringify(duplicated.slice(0, 5))}`);
  assert.deepEqual(unknown, [], `exported events that were never sent: ${JSON.stringify(unknown.slice(0, 5))}`);
  assert.deepEqual(missing, [], `${missing.length} of ${expected.size} sent events missing: ${JSON.stringify(missing.slice(0, 5))}`);
  const byId = new Map(exported.map((e) => [e.properties.$insert_id, e]));
  for (const [id, sent] of expected) {
    const got = byId.get(id);
    assert.equal(got.event, sent.event, `${id}: event name`);
    assert.equal(got.properties.distinct_id, sent.properties.distinct_id, `${id}: distinct_id`);
    let sentTime = sent.properties.time;
    if (sentTime >= 1e11) sentTime /= 1000;
    assert.equal(typeof got.properties.time, 'number', `${id}: time ${got.properties.time}`);
    assert.ok(Math.abs(got.properties.time - sentTime) <= 0.0011,
      `${id}: exported time ${got.properties.time}, sent ${sent.properties.time}`);
    for (const [key, value] of Object.entries(sent.properties)) {
      if (ignore.includes(key)) continue;
      assert.ok(key in got.properties, `${id}: property ${key} lost (sent ${JSON.stringify(value)})`);
      assert.deepStrictEqual(got.properties[key], value, `${id}: property ${key}`);
    }
  }
}
