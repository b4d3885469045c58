// My account: my passkeys (add one on another device or a security key, as
// a backup; remove one, never the last) and my live sessions.

import { api, Me } from './api';
import { h, show, status } from './dom';
import { enrol, withStepUp } from './passkeys';

interface Passkey { id: string; created_ms: number; last_used_ms: number | null }

const day = (ms: number | null) => (ms ? new Date(ms).toISOString().slice(0, 10) : '–');

export async function accountPage(me: Me): Promise<void> {
  const { passkeys } = await api.get<{ passkeys: Passkey[] }>('/api/v1/auth/passkeys');
  const message = status();
  const said = (text: string, error = false) => { message.className = `status ${error ? 'error' : ''}`; message.textContent = text; };
  const codes = h('div');
  const add = h('button', { type: 'button' }, 'Add a passkey');
  add.addEventListener('click', async () => {
    try {
      const { enrolment_token } = await withStepUp(() => api.post<{ enrolment_token: string }>('/api/v1/auth/passkeys'), (text) => said(text));
      said('Follow your browser’s prompt on the new device or security key…');
      const done = await enrol(enrolment_token);
      await accountPage(me);
      if (done.recovery_codes?.length) {
        codes.replaceChildren(h('p', {}, 'New recovery codes (the old ones no longer work), shown only now:'), h('ol', { class: 'codes' }, ...done.recovery_codes.map((c) => h('li', {}, h('code', {}, c)))));
        document.getElementById('main')?.append(codes);
      }
    } catch (error) { said(`No passkey added: ${(error as Error).message}`, true); }
  });
  const remove = async (passkey: Passkey) => {
    if (!confirm('Remove this passkey? It will no longer sign you in.')) return;
    try {
      await withStepUp(() => api.delete(`/api/v1/auth/passkeys/${encodeURIComponent(passkey.id)}`), (text) => said(text));
      await accountPage(me);
    } catch (error) { said(`Not removed: ${(error as Error).message}`, true); }
  };
  show('My account', h('p', {}, `${me.member.email ?? ''} · ${me.member.role}${me.member.can_export ? ' · export' : ''}${me.member.can_view_pii ? ' · view_pii' : ''}`),
    message, h('h2', {}, 'Passkeys'),
    h('table', { class: 'report text', 'data-testid': 'passkeys' },
      h('thead', {}, h('tr', {}, ...['Passkey', 'Added', 'Last used', ''].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, ...passkeys.map((p, i) => h('tr', {}, h('td', {}, `${i + 1}. …${p.id.slice(-8)}`), h('td', {}, day(p.created_ms)), h('td', {}, day(p.last_used_ms)),
        h('td', {}, h('button', { type: 'button', class: 'secondary', onclick: () => remove(p) }, `Remove passkey ${i + 1}`)))))),
    h('p', { class: 'muted' }, 'Keep a second passkey (another device or a security key) so that losing one does not lock you out. The last one cannot be removed.'),
    add, h('p', {}, h('a', { href: '#/security/sessions' }, 'My sessions')));
}
