// The rest of the security centre: members and their roles, live sessions,
// alert rules, the audit log with filters, and the exposure report.

import { api, Me, onProject } from './api';
import { csvCell, download, field, h, select, show, status } from './dom';
import { withStepUp } from './passkeys';

const when = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';

export function securityNav(current: string): HTMLElement {
  const pages: Array<[string, string]> = [['', 'Alerts and approvals'], ['members', 'Members'], ['sessions', 'Sessions'], ['keys', 'API keys'], ['rules', 'Alert rules'], ['audit', 'Audit log'], ['contain', 'Containment'], ['exposure', 'Exposure report']];
  return h('nav', { class: 'subnav', 'aria-label': 'Security centre' }, ...pages.map(([path, label]) =>
    h('a', { href: `#/security${path ? `/${path}` : ''}`, 'aria-current': path === current ? 'page' : null }, label)));
}

interface Member { id: number; email: string | null; role: string; can_export: boolean; can_view_pii: boolean; disabled: boolean }

export async function membersPage(me: Me): Promise<void> {
  const message = status();
  const { members } = await api.get<{ members: Member[] }>('/api/v1/admin/members');
  const email = h('input', { type: 'email', name: 'email', required: true });
  const role = select('role', ['viewer', 'analyst', 'admin', ...(me.member.role === 'owner' ? ['owner'] : [])], 'analyst');
  const exportBox = h('input', { type: 'checkbox', name: 'export' });
  const piiBox = h('input', { type: 'checkbox', name: 'view_pii' });
  const invite = h('form', { class: 'controls', 'aria-label': 'Invite a member' }, field('Email', email), field('Role', role),
    h('label', { class: 'check' }, exportBox, 'export permission'), h('label', { class: 'check' }, piiBox, 'view_pii permission'), h('button', { type: 'submit' }, 'Invite'));
  const link = h('div');
  invite.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const made = await api.post<{ enrolment_link: string; expires_ms: number }>('/api/v1/admin/members', { email: email.value, role: role.value, export: exportBox.checked, view_pii: piiBox.checked });
      link.replaceChildren(h('p', {}, `Send this one-time link to ${email.value} (expires ${when(made.expires_ms)}):`), h('pre', {}, h('code', {}, made.enrolment_link)));
    } catch (error) {
      message.className = 'status error';
      message.textContent = `Could not invite: ${(error as Error).message}`;
    }
  });
  const disable = async (member: Member) => {
    try {
      await api.post(`/api/v1/admin/members/${member.id}/disable`);
      await membersPage(me);
    } catch (error) {
      message.className = 'status error';
      message.textContent = `Could not disable ${member.email}: ${(error as Error).message}`;
    }
  };
  show('Members', securityNav('members'), message, h('table', { class: 'report text', 'data-testid': 'members' },
    h('thead', {}, h('tr', {}, ...['Email', 'Role', 'Export', 'View PII', 'State', ''].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, ...members.map((m) => h('tr', {}, h('td', {}, m.email ?? '–'), h('td', {}, m.role), h('td', {}, m.can_export ? 'yes' : 'no'), h('td', {}, m.can_view_pii ? 'yes' : 'no'),
      h('td', {}, m.disabled ? 'disabled' : 'active'),
      h('td', {}, m.disabled || m.id === me.member.id ? '' : h('button', { type: 'button', class: 'secondary', onclick: () => disable(m) }, `Disable ${m.email ?? m.id}`)))))),
  h('h2', {}, 'Invite'), invite, link);
}

interface Session { id: string; member: number; created_ms: number; last_seen_ms: number; expires_ms: number; country: string | null; current: boolean }

export async function sessionsPage(me: Me): Promise<void> {
  const admin = me.member.role === 'owner' || me.member.role === 'admin';
  const { sessions } = await api.get<{ sessions: Session[] }>(`/api/v1/auth/sessions${admin ? '?all=true' : ''}`);
  const message = status();
  const revoke = async (s: Session) => {
    try {
      await api.delete(`/api/v1/auth/sessions/${encodeURIComponent(s.id)}`);
      await sessionsPage(me);
    } catch (error) {
      message.textContent = `Could not revoke: ${(error as Error).message}`;
    }
  };
  show('Sessions', securityNav('sessions'), message, h('table', { class: 'report text', 'data-testid': 'sessions' },
    h('thead', {}, h('tr', {}, ...['Session', 'Member', 'Signed in', 'Last seen', 'Country', ''].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, ...sessions.map((s) => h('tr', {}, h('td', {}, s.id + (s.current ? ' (this one)' : '')), h('td', {}, String(s.member)), h('td', {}, when(s.created_ms)), h('td', {}, when(s.last_seen_ms)), h('td', {}, s.country ?? '–'),
      h('td', {}, s.current ? '' : h('button', { type: 'button', class: 'secondary', onclick: () => revoke(s) }, `Revoke ${s.id}`)))))));
}

interface Rule { rule: string; enabled: boolean; action: string; threshold: number; threshold_means: string; severity: string; describes: string }

export async function rulesPage(project: number): Promise<void> {
  const { rules } = await api.get<{ rules: Rule[] }>(onProject('/api/v1/alerts/rules', project));
  const message = status();
  const rows = rules.map((r) => {
    const enabled = h('input', { type: 'checkbox', checked: r.enabled, 'aria-label': `${r.rule} on` });
    const action = select('action', ['none', 'revoke'], r.action, (a) => (a === 'none' ? 'alert only' : 'revoke the credential'));
    action.setAttribute('aria-label', `${r.rule} action`);
    const threshold = h('input', { type: 'number', step: 'any', min: 0, value: r.threshold, disabled: r.threshold_means === 'unused', 'aria-label': `${r.rule} threshold`, title: r.threshold_means });
    const save = h('button', { type: 'button', class: 'secondary' }, `Save ${r.rule}`);
    save.addEventListener('click', async () => {
      try {
        await api.put(onProject(`/api/v1/alerts/rules/${r.rule}`, project), { enabled: enabled.checked, action: action.value, threshold: Number(threshold.value) });
        message.className = 'status';
        message.textContent = `Saved ${r.rule}.`;
      } catch (error) {
        message.className = 'status error';
        message.textContent = `Could not save ${r.rule}: ${(error as Error).message}`;
      }
    });
    return h('tr', {}, h('th', { scope: 'row' }, r.rule), h('td', {}, r.describes), h('td', {}, r.severity), h('td', {}, enabled), h('td', {}, action), h('td', {}, threshold), h('td', {}, save));
  });
  show('Alert rules', securityNav('rules'), message, h('table', { class: 'report text', 'data-testid': 'rules' },
    h('thead', {}, h('tr', {}, ...['Rule', 'Fires when', 'Severity', 'On', 'Action', 'Threshold', ''].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, ...rows)), h('p', { class: 'muted' }, 'Alerts go to the webhook and mail set in the server configuration ([alerts]).'));
}

interface AuditEntry { seq: number; time_ms: number; actor: { kind: string; id: string; user?: string | null }; action: string; outcome: string; country: string | null; detail: unknown }

export async function auditPage(project: number, params: URLSearchParams): Promise<void> {
  const actor = params.get('actor') ?? '';
  const action = params.get('action') ?? '';
  const since = params.get('since') ?? '';
  const form = h('form', { class: 'controls', 'aria-label': 'Audit filters' },
    field('Actor (kind:id or prefix)', h('input', { name: 'actor', value: actor, placeholder: 'session: or api_key:' })),
    field('Action', h('input', { name: 'action', value: action, placeholder: 'e.g. export, pii.reveal' })),
    field('Since', h('input', { type: 'date', name: 'since', value: since })), h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form).entries()) if (String(v)) next.set(k, String(v));
    location.hash = `#/security/audit?${next}`;
  });
  const query = new URLSearchParams({ limit: '500' });
  if (actor) query.set('actor', actor);
  if (action) query.set('action', action);
  if (since) query.set('since', since);
  const message = status('Reading…');
  show('Audit log', securityNav('audit'), form, message);
  const { entries } = await api.get<{ entries: AuditEntry[] }>(onProject(`/api/v1/audit?${query}`, project));
  message.textContent = `${entries.length} entries (newest first; every read of the log is itself audited)`;
  const rows = entries.slice().reverse();
  message.after(h('button', { type: 'button', onclick: () => download('audit.csv', new Blob([['seq,time_ms,actor,action,outcome,country,detail', ...rows.map((e) => [e.seq, e.time_ms, `${e.actor.kind}:${e.actor.id}`, e.action, e.outcome, e.country ?? '', JSON.stringify(e.detail)].map(csvCell).join(','))].join('\n') + '\n'], { type: 'text/csv' })) }, 'Download CSV'),
    h('table', { class: 'report text', 'data-testid': 'audit' },
      h('thead', {}, h('tr', {}, ...['When', 'Actor', 'Action', 'Outcome', 'Country', 'Detail'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, ...rows.map((e) => h('tr', {}, h('td', {}, when(e.time_ms)), h('td', {}, `${e.actor.kind}:${e.actor.id}${e.actor.user ? ` (${e.actor.user})` : ''}`), h('td', {}, e.action), h('td', {}, e.outcome), h('td', {}, e.country ?? '–'),
        h('td', { class: 'detail' }, (JSON.stringify(e.detail) ?? '').slice(0, 160)))))));
}

interface Exposure { entries: number; rows_returned: number; people: Array<{ canonical_id: string; fields: string[]; country: string | null }>; fields: Record<string, { people: number; sensitivity: string }>; people_by_country: Record<string, number>; organisations: Record<string, number> }

export async function exposurePage(project: number, params: URLSearchParams): Promise<void> {
  const today = new Date().toISOString().slice(0, 10);
  const from = params.get('from') ?? new Date(Date.now() - 7 * 86_400_000).toISOString().slice(0, 10);
  const to = params.get('to') ?? new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
  const form = h('form', { class: 'controls', 'aria-label': 'Exposure report' },
    field('From', h('input', { type: 'date', name: 'from', value: from, max: today })), field('To', h('input', { type: 'date', name: 'to', value: to })),
    field('API key id', h('input', { name: 'key', value: params.get('key') ?? '', inputmode: 'numeric' })),
    field('Session id', h('input', { name: 'session', value: params.get('session') ?? '' })),
    field('Member id', h('input', { name: 'member', value: params.get('member') ?? '', inputmode: 'numeric' })), h('button', { type: 'submit' }, 'Report'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form).entries()) if (String(v)) next.set(k, String(v));
    location.hash = `#/security/exposure?${next}`;
  });
  const message = status(params.has('from') ? 'Computing from the audit…' : 'Choose a window and a credential: the report lists exactly whose data, which fields, it was given.');
  show('Exposure report', securityNav('exposure'), form, message);
  if (!params.has('from')) return;
  try {
    const report = await withStepUp(() => api.get<Exposure>(onProject(`/api/v1/incident/exposure?${params}`, project)), (text) => { message.textContent = text; });
    message.textContent = `${report.entries} audited requests; ${report.people.length} people; ${report.rows_returned} exported rows.`;
    message.after(
      h('h2', {}, 'Fields returned'),
      h('table', { class: 'report text', 'data-testid': 'exposure-fields' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, 'People'), h('th', { scope: 'col' }, 'Sensitivity'))),
        h('tbody', {}, ...Object.entries(report.fields).map(([f, s]) => h('tr', {}, h('td', {}, f), h('td', {}, String(s.people)), h('td', {}, s.sensitivity))))),
      h('h2', {}, 'People by country'),
      h('p', {}, Object.entries(report.people_by_country).map(([c, n]) => `${c}: ${n}`).join(', ') || '–'),
      h('button', { type: 'button', onclick: () => download('exposed-people.csv', new Blob([['canonical_id,country,fields', ...report.people.map((p) => [p.canonical_id, p.country ?? '', p.fields.join(' ')].map(csvCell).join(','))].join('\n') + '\n'], { type: 'text/csv' })) }, 'Download the list of people (CSV)'));
  } catch (error) {
    message.className = 'status error';
    message.textContent = `The report failed: ${(error as Error).message}`;
  }
}

interface ContainStep { action: string; said: string }

export async function containPage(me: Me, project: number): Promise<void> {
  const message = status();
  const session = h('input', { name: 'session', placeholder: 'session id' });
  const key = h('input', { name: 'key', inputmode: 'numeric', placeholder: 'API key id' });
  const member = h('input', { name: 'member', inputmode: 'numeric', placeholder: 'member id' });
  const address = h('input', { name: 'address', placeholder: '203.0.113.0/24' });
  const all = h('input', { type: 'checkbox', name: 'all' });
  const steps = h('ol', { 'data-testid': 'contain-steps' });
  const form = h('form', { class: 'controls', 'aria-label': 'Containment' }, field('Session', session), field('API key', key), field('Member', member), field('Address or CIDR', address),
    h('label', { class: 'check' }, all, 'everything: every session, key, secret and token; exports frozen'), h('button', { type: 'submit', class: 'danger' }, 'Contain now'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const plan: Record<string, unknown> = {};
    if (session.value) plan.session = session.value;
    if (key.value) plan.key = Number(key.value);
    if (member.value) plan.member = Number(member.value);
    if (address.value) plan.address = address.value;
    if (all.checked) plan.all = true;
    if (Object.keys(plan).length === 0) { message.textContent = 'Name what to contain, or choose everything.'; return; }
    if (!confirm('Contain now? Each step holds on the very next request.')) return;
    try {
      const done = await withStepUp(() => api.post<{ steps: ContainStep[] }>(onProject('/api/v1/incident/contain', project), plan), (text) => { message.textContent = text; });
      steps.replaceChildren(...done.steps.map((s) => h('li', {}, s.said)));
      message.textContent = `${done.steps.length} step(s) taken and audited.`;
    } catch (error) {
      message.className = 'status error';
      message.textContent = `Containment failed: ${(error as Error).message}`;
    }
  });
  const lift = h('button', { type: 'button', class: 'secondary', disabled: me.member.role !== 'owner' }, 'Lift the export freeze');
  lift.addEventListener('click', async () => {
    try {
      const done = await withStepUp(() => api.post<{ said: string }>('/api/v1/incident/unfreeze', {}), (text) => { message.textContent = text; });
      message.textContent = done.said;
    } catch (error) {
      message.className = 'status error';
      message.textContent = `Could not lift: ${(error as Error).message}`;
    }
  });
  show('Containment', securityNav('contain'), h('p', {}, 'Cut off a credential, a member, an address, or everything. Then run the exposure report for the same credential.'), form, message, steps, h('h2', {}, 'After the incident'), lift);
}

interface ApiKey { id: number; account: string; display: string; scopes: string[]; allow_cidrs: string[]; created_ms: number; expires_ms: number | null; last_used_ms: number | null; live: boolean; key?: string }

/** `made`: a key just made or rotated, whose secret is shown once after the list is reread. */
export async function keysPage(project: number, made?: { key: ApiKey; what: string }): Promise<void> {
  const [{ keys }, blocked] = await Promise.all([
    api.get<{ keys: ApiKey[] }>(onProject('/api/v1/keys', project)),
    api.get<{ blocked: string[]; configured: string[] }>(onProject('/api/v1/network/blocked', project)),
  ]);
  const message = status();
  const said = (text: string, error = false) => { message.className = `status ${error ? 'error' : ''}`; message.textContent = text; };
  const shown = h('div');
  const showSecret = (made: ApiKey, what: string) => shown.replaceChildren(h('p', {}, `${what} The secret, shown only now:`), h('pre', {}, h('code', { 'data-testid': 'new-key' }, made.key ?? '')));
  const act = async (key: ApiKey, verb: 'disable' | 'rotate') => {
    try {
      const done = await withStepUp(() => api.post<ApiKey>(onProject(`/api/v1/keys/${key.id}/${verb}`, project), verb === 'rotate' ? { overlap_hours: 24 } : {}), (text) => said(text));
      await keysPage(project, verb === 'rotate' ? { key: done, what: `Key ${key.id} rotated: the old secret works for 24 more hours.` } : undefined);
    } catch (error) { said(`Could not ${verb} key ${key.id}: ${(error as Error).message}`, true); }
  };
  const account = h('input', { name: 'account', required: true, placeholder: 'e.g. etl' });
  const scopeBoxes = ['ingest', 'read', 'export', 'admin'].map((scope) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'scope', value: scope, checked: scope === 'read' }), scope));
  const cidrs = h('input', { name: 'allow', placeholder: '10.0.0.0/8, 192.0.2.7' });
  const days = h('input', { type: 'number', name: 'expires_days', min: 1, value: 90 });
  const form = h('form', { class: 'controls', 'aria-label': 'New API key' }, field('Service account', account), ...scopeBoxes, field('Allowed addresses', cidrs), field('Expires in (days)', days), h('button', { type: 'submit' }, 'Create key'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const scopes = scopeBoxes.map((l) => l.querySelector('input') as HTMLInputElement).filter((i) => i.checked).map((i) => i.value);
    try {
      const created = await withStepUp(() => api.post<ApiKey>(onProject('/api/v1/keys', project), { account: account.value, scopes, allow_cidrs: cidrs.value.split(',').map((c) => c.trim()).filter(Boolean), expires_days: days.value ? Number(days.value) : null }), (text) => said(text));
      await keysPage(project, { key: created, what: `Key ${created.id} created for ${created.account}.` });
    } catch (error) { said(`Could not create the key: ${(error as Error).message}`, true); }
  });
  const when = (ms: number | null) => (ms ? new Date(ms).toISOString().slice(0, 10) : '–');
  if (made) showSecret(made.key, made.what);
  show('API keys', securityNav('keys'), message, shown, h('table', { class: 'report text', 'data-testid': 'keys' },
    h('thead', {}, h('tr', {}, ...['Key', 'Account', 'Scopes', 'Allowed from', 'Expires', 'Last used', 'State', ''].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, ...keys.map((k) => h('tr', {}, h('td', {}, `${k.id} · ${k.display}`), h('td', {}, k.account), h('td', {}, k.scopes.join(', ')), h('td', {}, k.allow_cidrs.join(', ') || 'anywhere'),
      h('td', {}, when(k.expires_ms)), h('td', {}, when(k.last_used_ms)), h('td', {}, k.live ? 'live' : 'off'),
      h('td', {}, k.live ? h('span', { class: 'buttons' }, h('button', { type: 'button', class: 'secondary', onclick: () => act(k, 'rotate') }, `Rotate key ${k.id}`), h('button', { type: 'button', class: 'secondary', onclick: () => act(k, 'disable') }, `Disable key ${k.id}`)) : ''))))),
  h('h2', {}, 'New key'), form,
  h('h2', {}, 'Blocked addresses'),
  h('p', { 'data-testid': 'blocked' }, [...blocked.blocked.map((b) => `${b} (containment)`), ...blocked.configured.map((b) => `${b} (configuration)`)].join(', ') || 'None. Block one from the containment page.'));
}
