// Users: one person's profile and latest events. Personal fields are shown
// masked; a member holding view_pii may reveal them after a passkey step-up,
// and every reveal is an audit entry.

import { api, Me, onProject } from './api';
import { field, h, show, status } from './dom';
import { withStepUp } from './passkeys';

interface Activity { distinct_id: string; distinct_ids: string[]; profile: Record<string, unknown> | null; events: Array<{ event: string; properties: Record<string, unknown> }> }

const isToken = (v: unknown) => typeof v === 'string' && /^pii:[A-Za-z0-9_-]{22}$/.test(v);

function profileTable(properties: Record<string, unknown>, revealed: boolean): HTMLElement {
  return h('table', { class: 'report text', 'data-testid': 'profile' },
    h('caption', {}, revealed ? 'Profile (personal fields revealed; this reveal is audited)' : 'Profile'),
    h('tbody', {}, ...Object.entries(properties).sort(([a], [b]) => a.localeCompare(b)).map(([key, value]) => h('tr', {},
      h('th', { scope: 'row' }, key),
      h('td', { 'data-field': key, class: isToken(value) ? 'masked' : '' }, isToken(value) ? '•••••• (encrypted)' : typeof value === 'string' ? value : JSON.stringify(value))))));
}

export async function usersPage(me: Me, project: number, params: URLSearchParams): Promise<void> {
  const id = params.get('id') || '';
  const input = h('input', { name: 'id', value: id, placeholder: 'distinct id', required: true });
  const form = h('form', { class: 'controls', role: 'search', 'aria-label': 'Find a user' }, field('Distinct id', input), h('button', { type: 'submit' }, 'Open'));
  form.addEventListener('submit', (event) => { event.preventDefault(); location.hash = `#/users?id=${encodeURIComponent(input.value)}`; });
  const message = status(id ? 'Loading…' : 'Open a person by their distinct id, or find people by a profile property.');
  const body = h('div');
  show('Users', form, searchForm(params), message, body);
  if (!id) {
    if (params.get('property')) await listPeople(me, project, params, body, message);
    return;
  }
  let activity: Activity;
  try {
    activity = await api.post<Activity>(onProject('/api/v1/query', project), { report: 'activity', distinct_id: id, limit: 50 });
  } catch (error) {
    message.replaceWith(status(`Could not open ${id}: ${(error as Error).message}`, 'error'));
    return;
  }
  message.textContent = `${activity.distinct_ids.length} merged id(s): ${activity.distinct_ids.join(', ')}`;
  const profileSlot = h('div');
  profileSlot.append(activity.profile ? profileTable(activity.profile, false) : h('p', { class: 'muted' }, 'No profile.'));
  const masked = activity.profile && Object.values(activity.profile).some(isToken);
  const reveal = h('button', { type: 'button', disabled: !me.member.can_view_pii },
    me.member.can_view_pii ? 'Reveal personal fields' : 'Reveal personal fields (needs the view_pii permission)');
  reveal.addEventListener('click', async () => {
    const path = onProject(`/api/v1/people/${encodeURIComponent(activity.distinct_id)}?reveal=true`, project);
    try {
      const person = await withStepUp(() => api.get<{ properties: Record<string, unknown> }>(path), (text) => { message.textContent = text; });
      profileSlot.replaceChildren(profileTable(person.properties, true));
      reveal.remove();
      message.textContent = 'Revealed. The reveal is recorded in the audit log.';
    } catch (error) {
      message.textContent = `Could not reveal: ${(error as Error).message}`;
      message.className = 'status error';
    }
  });
  body.append(h('h2', {}, activity.distinct_id), masked ? reveal : '', profileSlot,
    h('h2', {}, 'Latest events'),
    h('table', { class: 'report text', 'data-testid': 'activity' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Time'), h('th', { scope: 'col' }, 'Event'))),
      h('tbody', {}, ...activity.events.map((e) => {
        const time = Number(e.properties?.time ?? 0);
        return h('tr', {}, h('td', {}, time ? new Date(time * (time < 1e12 ? 1000 : 1)).toISOString().replace('T', ' ').slice(0, 19) : '–'), h('td', {}, e.event));
      }))));
}

function searchForm(params: URLSearchParams): HTMLElement {
  const property = h('input', { name: 'property', value: params.get('property') ?? '', placeholder: 'e.g. plan', required: true });
  const value = h('input', { name: 'value', value: params.get('value') ?? '', placeholder: 'e.g. pro' });
  const form = h('form', { class: 'controls', role: 'search', 'aria-label': 'Find people' }, field('Profile property', property), field('Equals', value), h('button', { type: 'submit' }, 'Find people'));
  form.addEventListener('submit', (event) => { event.preventDefault(); location.hash = `#/users?${new URLSearchParams({ property: property.value, value: value.value })}`; });
  return form;
}

/** People whose profile property equals a value: a listing, so the export permission (and a step-up). */
async function listPeople(me: Me, project: number, params: URLSearchParams, into: HTMLElement, message: HTMLElement): Promise<void> {
  if (!me.member.can_export) {
    message.textContent = 'Listing people is a user-level download: it needs the export permission.';
    return;
  }
  const filter = { property: params.get('property'), op: 'eq', value: params.get('value') ?? '' };
  try {
    const result = await withStepUp(() => api.post<{ profiles: Array<{ distinct_id: string; properties: Record<string, unknown> }> }>(onProject('/api/v1/query', project), { report: 'profiles', where: [filter], limit: 200 }), (text) => { message.textContent = text; });
    message.textContent = `${result.profiles.length} people (at most 200 shown; personal fields are left out of listings).`;
    into.append(h('table', { class: 'report text', 'data-testid': 'people' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Distinct id'), h('th', { scope: 'col' }, 'Properties'))),
      h('tbody', {}, ...result.profiles.map((p) => h('tr', {}, h('td', {}, h('a', { href: `#/users?id=${encodeURIComponent(p.distinct_id)}` }, p.distinct_id)),
        h('td', { class: 'detail' }, Object.entries(p.properties).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' · ')))))));
  } catch (error) {
    message.className = 'status error';
    message.textContent = `Could not list people: ${(error as Error).message}`;
  }
}
