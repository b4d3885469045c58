// The security centre's incident pages: alerts as they are raised, and the
// exports waiting for a second owner (approve or refuse, after a passkey
// step-up).

import { api, Me, onProject } from './api';
import { h, show, status } from './dom';
import { withStepUp } from './passkeys';
import { securityNav } from './security_admin';

interface Alert { id: number; rule: string; severity: string; credential: string; action_taken: string | null; created_ms: number; detail: unknown }
interface ExportRequest { id: number; project: number; requester: string; rows: number; users: number; reason: string; status: string; created_ms: number }

const when = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';

export async function securityPage(me: Me, project: number): Promise<void> {
  const message = status();
  const alertsRegion = h('section', { 'aria-labelledby': 'alerts-heading' }, h('h2', { id: 'alerts-heading' }, 'Alerts'));
  const approvalsRegion = h('section', { 'aria-labelledby': 'approvals-heading' }, h('h2', { id: 'approvals-heading' }, 'Export approvals'));
  show('Security centre', securityNav(''), message, alertsRegion, approvalsRegion);
  if (me.member.role !== 'owner' && me.member.role !== 'admin') {
    message.textContent = 'Alerts and export approvals are for admins and owners.';
    return;
  }
  try {
    const { alerts } = await api.get<{ alerts: Alert[] }>(onProject('/api/v1/alerts', project));
    alertsRegion.append(alerts.length === 0 ? h('p', { class: 'muted' }, 'No alert has been raised.') : h('table', { class: 'report text', 'data-testid': 'alerts' },
      h('thead', {}, h('tr', {}, ...['When', 'Severity', 'Rule', 'Credential', 'Action taken'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, ...alerts.slice().reverse().map((a) => h('tr', { class: `severity-${a.severity}` },
        h('td', {}, when(a.created_ms)), h('td', {}, a.severity), h('td', {}, a.rule), h('td', {}, a.credential), h('td', {}, a.action_taken ?? '–'))))));
  } catch (error) {
    alertsRegion.append(status(`Alerts could not be read: ${(error as Error).message}`, 'error'));
  }
  await renderApprovals(me, project, approvalsRegion, message);
}

async function renderApprovals(me: Me, project: number, region: HTMLElement, message: HTMLElement): Promise<void> {
  region.querySelector('table, p.muted')?.remove();
  let requests: ExportRequest[];
  try {
    requests = (await api.get<{ requests: ExportRequest[] }>(onProject('/api/v1/exports/requests', project))).requests;
  } catch (error) {
    region.append(status(`Export requests could not be read: ${(error as Error).message}`, 'error'));
    return;
  }
  if (requests.length === 0) {
    region.append(h('p', { class: 'muted' }, 'No export has needed an approval.'));
    return;
  }
  const decide = async (request: ExportRequest, verb: 'approve' | 'refuse') => {
    const path = onProject(`/api/v1/exports/requests/${request.id}/${verb}`, project);
    try {
      await withStepUp(() => api.post(path), (text) => { message.textContent = text; });
      message.textContent = `Export request ${request.id} ${verb === 'approve' ? 'approved' : 'refused'}.`;
      await renderApprovals(me, project, region, message);
    } catch (error) {
      message.textContent = `Could not ${verb} request ${request.id}: ${(error as Error).message}`;
      message.className = 'status error';
    }
  };
  region.append(h('table', { class: 'report text', 'data-testid': 'export-requests' },
    h('thead', {}, h('tr', {}, ...['Asked', 'By', 'Rows', 'People', 'Why', 'Status', ''].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, ...requests.map((r) => h('tr', { 'data-request': String(r.id) },
      h('td', {}, when(r.created_ms)), h('td', {}, r.requester), h('td', {}, r.rows.toLocaleString('en')), h('td', {}, r.users.toLocaleString('en')), h('td', {}, r.reason), h('td', {}, r.status),
      h('td', {}, r.status === 'pending' && me.member.role === 'owner'
        ? h('span', { class: 'buttons' },
          h('button', { type: 'button', onclick: () => decide(r, 'approve') }, `Approve request ${r.id}`),
          h('button', { type: 'button', class: 'secondary', onclick: () => decide(r, 'refuse') }, `Refuse request ${r.id}`))
        : '')))),
  ));
}
