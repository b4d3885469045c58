// Project settings: the public token and the secret (rotated after a passkey
// step-up; a new secret is shown once), the time zone reports count days in,
// and the privacy policy (geo precision, retention, and the whole document).

import { api, Me, onProject } from './api';
import { field, h, select, show, status } from './dom';
import { withStepUp } from './passkeys';

interface ProjectSettings { id: number; name: string; token: string; timezone: string; geo: string; secret_disabled: boolean }
interface Policy { version: number; policy: Record<string, any> }

export async function settingsPage(me: Me, project: number): Promise<void> {
  const [settings, policy] = await Promise.all([api.get<ProjectSettings>(onProject('/api/v1/project', project)), api.get<Policy>(onProject('/api/v1/privacy/policy', project))]);
  const admin = me.member.role === 'owner' || me.member.role === 'admin';
  const message = status(admin ? '' : 'Only admins and owners change settings.');
  const say = (text: string, error = false) => { message.className = `status ${error ? 'error' : ''}`; message.textContent = text; };

  const zone = h('input', { name: 'timezone', value: settings.timezone, disabled: !admin });
  const saveZone = h('button', { type: 'button', disabled: !admin }, 'Save time zone');
  saveZone.addEventListener('click', async () => {
    try {
      await api.put(onProject('/api/v1/project', project), { timezone: zone.value });
      say(`Reports now count days in ${zone.value}.`);
    } catch (error) { say(`Could not set the time zone: ${(error as Error).message}`, true); }
  });

  const overlap = h('input', { type: 'number', min: 0, max: 720, value: 24, name: 'overlap_hours', disabled: !admin });
  const rotateToken = h('button', { type: 'button', class: 'danger', disabled: !admin }, 'Rotate the public token');
  const tokenShown = h('code', { 'data-testid': 'token' }, settings.token);
  rotateToken.addEventListener('click', async () => {
    if (!confirm(`Issue a new public token? The old one keeps collecting for ${overlap.value} hours.`)) return;
    try {
      const rotated = await withStepUp(() => api.post<{ token: string; old_token_valid_until_ms: number }>(onProject('/api/v1/project/rotate-token', project), { confirm: true, overlap_hours: Number(overlap.value) }), say);
      tokenShown.textContent = rotated.token;
      say(`New public token issued; the old one collects until ${new Date(rotated.old_token_valid_until_ms).toISOString()}. Update the SDKs' token.`);
    } catch (error) { say(`Could not rotate the token: ${(error as Error).message}`, true); }
  });
  const rotateSecret = h('button', { type: 'button', class: 'danger', disabled: !admin }, 'Rotate the project secret');
  const secretShown = h('div');
  rotateSecret.addEventListener('click', async () => {
    if (!confirm('Issue a new project secret? The old one stops working at once.')) return;
    try {
      const rotated = await withStepUp(() => api.post<{ secret: string }>(onProject('/api/v1/project/rotate-secret', project), { confirm: true }), say);
      secretShown.replaceChildren(h('p', {}, 'The new secret, shown only now:'), h('pre', {}, h('code', { 'data-testid': 'new-secret' }, rotated.secret)));
      say('New project secret issued; the old one no longer works.');
    } catch (error) { say(`Could not rotate the secret: ${(error as Error).message}`, true); }
  });

  const document_ = policy.policy;
  const geo = select('geo', ['none', 'country', 'region', 'city'], document_.geo ?? settings.geo);
  const eventsDays = h('input', { type: 'number', min: 1, name: 'events_days', value: document_.retention?.events_days ?? '', placeholder: 'for ever' });
  const profilesDays = h('input', { type: 'number', min: 1, name: 'profiles_days', value: document_.retention?.profiles_days ?? '', placeholder: 'for ever' });
  const text = h('textarea', { rows: 16, cols: 80, 'aria-label': 'Privacy policy (JSON)', spellcheck: 'false' }, JSON.stringify(document_, null, 2));
  const savePolicy = h('button', { type: 'button', disabled: !admin }, 'Save the privacy policy');
  const syncText = () => {
    const doc = JSON.parse(text.value);
    doc.geo = geo.value;
    const retention: Record<string, number> = {};
    if (eventsDays.value) retention.events_days = Number(eventsDays.value);
    if (profilesDays.value) retention.profiles_days = Number(profilesDays.value);
    if (Object.keys(retention).length) doc.retention = retention; else delete doc.retention;
    text.value = JSON.stringify(doc, null, 2);
  };
  for (const control of [geo, eventsDays, profilesDays]) control.addEventListener('change', () => { try { syncText(); } catch { /* the text area is being edited */ } });
  savePolicy.addEventListener('click', async () => {
    try {
      const saved = await api.put<Policy>(onProject('/api/v1/privacy/policy', project), JSON.parse(text.value));
      say(`Privacy policy version ${saved.version} saved; it applies to everything written from now on (hearth privacy apply --rewrite applies it to stored data).`);
    } catch (error) { say(`The policy was not saved: ${(error as Error).message}`, true); }
  });

  show(`Settings: ${settings.name}`, message,
    h('h2', {}, 'Keys'),
    h('p', {}, 'Public token (SDKs put it in every event): ', tokenShown),
    h('div', { class: 'controls' }, field('Old token keeps collecting (hours)', overlap), rotateToken, rotateSecret),
    secretShown,
    h('p', { class: 'muted' }, settings.secret_disabled ? 'The Mixpanel-compatible project secret is switched off (hearth project secret --on to restore).' : 'The project secret authenticates /import and exports; prefer scoped API keys.'),
    h('h2', {}, 'Reports'),
    h('div', { class: 'controls' }, field('Time zone (IANA)', zone), saveZone),
    h('h2', {}, `Privacy policy (version ${policy.version})`),
    h('div', { class: 'controls' }, field('Geo precision', geo), field('Keep events (days)', eventsDays), field('Keep profiles (days)', profilesDays)),
    text, h('div', { class: 'actions' }, savePolicy));
}
