// The dashboard's shell: who is signed in, which project, and which page the
// URL names. Pages live in the hash (`#/insights?event=…`), so every report is
// a link; the enrolment link (`/enrol#TOKEN`) is the one path of its own.

import { accountPage } from './account';
import { api, ApiError, Me, setCsrf } from './api';
import { cohortsPage } from './cohorts';
import { dashboardPage, dashboardsPage } from './dashboards';
import { h, show, status } from './dom';
import { firstRun } from './firstrun';
import { flowsPage } from './flows';
import { funnelsPage } from './funnels';
import { insightsPage } from './insights';
import { livePage } from './live';
import { enrol, signIn } from './passkeys';
import { retentionPage } from './retention';
import { securityPage } from './security';
import { auditPage, containPage, exposurePage, keysPage, membersPage, rulesPage, sessionsPage } from './security_admin';
import { settingsPage } from './settings';
import { usersPage } from './users';

const PROJECT_KEY = 'hearth.project';

async function whoAmI(): Promise<Me | null> {
  try {
    return await api.get<Me>('/api/v1/auth/me');
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}

function header(me: Me | null, project: number | null): void {
  const top = document.getElementById('top') as HTMLElement;
  const nav = h('nav', { 'aria-label': 'Main' }, h('a', { href: '#/', class: 'brand' }, 'Hearth'));
  if (me) {
    nav.append(h('a', { href: '#/live' }, 'Live'), h('a', { href: '#/insights' }, 'Insights'), h('a', { href: '#/funnels' }, 'Funnels'), h('a', { href: '#/retention' }, 'Retention'), h('a', { href: '#/flows' }, 'Flows'), h('a', { href: '#/cohorts' }, 'Cohorts'),
      h('a', { href: '#/users' }, 'Users'), h('a', { href: '#/dashboards' }, 'Dashboards'), h('a', { href: '#/security' }, 'Security'), h('a', { href: '#/settings' }, 'Settings'));
    if (me.projects.length > 1) {
      const picker = h('select', { 'aria-label': 'Project' }, ...me.projects.map((p) => h('option', { value: String(p.id), selected: p.id === project }, p.name)));
      picker.addEventListener('change', () => { localStorage.setItem(PROJECT_KEY, picker.value); void route(); });
      nav.append(picker);
    }
    nav.append(h('a', { class: 'who', href: '#/account', title: 'My account' }, `${me.member.email ?? 'member'} · ${me.member.role}`),
      h('button', { type: 'button', class: 'secondary', onclick: async () => { await api.post('/api/v1/auth/logout').catch(() => null); setCsrf(null); location.hash = '#/signin'; void route(); } }, 'Sign out'));
  }
  top.replaceChildren(nav);
}

function signInPage(): void {
  const message = status();
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username webauthn', required: true });
  const form = h('form', { class: 'signin' }, h('label', {}, h('span', {}, 'Email'), email), h('button', { type: 'submit' }, 'Sign in with a passkey'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.textContent = 'Confirm with your passkey…';
    try {
      await signIn(email.value);
      location.hash = '#/';
      await route();
    } catch (error) {
      message.className = 'status error';
      message.textContent = `Sign-in failed: ${(error as Error).message}. Use the passkey you enrolled on this site, or ask an admin for a new enrolment link.`;
    }
  });
  show('Sign in', h('p', {}, 'Hearth signs you in with a passkey only: nothing to phish.'), form, message);
}

function enrolPage(token: string): void {
  const message = status();
  const start = h('button', { type: 'button' }, 'Create my passkey');
  start.addEventListener('click', async () => {
    message.textContent = 'Follow your browser’s passkey prompt…';
    try {
      const done = await enrol(token);
      history.replaceState(null, '', '/#/');
      if (done.recovery_codes?.length) {
        show('Your recovery codes', h('p', {}, 'Each works once if you lose your passkey. Keep them somewhere safe: they are not shown again.'),
          h('ol', { class: 'codes' }, ...done.recovery_codes.map((c) => h('li', {}, h('code', {}, c)))),
          h('a', { href: '#/', class: 'button', onclick: (event: Event) => { event.preventDefault(); void route(); } }, 'Continue'));
        await whoAmI().then((me) => header(me, null));
        return;
      }
      await route();
    } catch (error) {
      message.className = 'status error';
      message.textContent = `Enrolment failed: ${(error as Error).message}. Enrolment links work once and expire; ask an admin for a new one.`;
    }
  });
  show('Create your passkey', h('p', {}, 'This one-time link registers a passkey for your Hearth account.'), start, message);
}

async function route(): Promise<void> {
  if (location.pathname === '/enrol') {
    header(null, null);
    enrolPage(location.hash.slice(1));
    return;
  }
  const me = await whoAmI();
  const [path, query] = location.hash.replace(/^#/, '').split('?');
  if (!me) {
    header(null, null);
    signInPage();
    return;
  }
  const stored = Number(localStorage.getItem(PROJECT_KEY));
  const project = me.projects.find((p) => p.id === stored) ?? me.projects[0];
  header(me, project?.id ?? null);
  if (!project) {
    show('No project', h('p', {}, 'You have access to no project yet. Ask an admin (hearth members invite --project).'));
    return;
  }
  const params = new URLSearchParams(query ?? '');
  try {
    switch (path) {
      case '/insights':
        await insightsPage(project.id, params);
        break;
      case '/account':
        await accountPage(me);
        break;
      case '/live':
        await livePage(project.id);
        break;
      case '/funnels':
        await funnelsPage(project.id, params);
        break;
      case '/retention':
        await retentionPage(project.id, params);
        break;
      case '/flows':
        await flowsPage(project.id, params);
        break;
      case '/cohorts':
        await cohortsPage(me, project.id);
        break;
      case '/users':
        await usersPage(me, project.id, params);
        break;
      case '/dashboards':
        await dashboardsPage(project.id);
        break;
      case '/dashboard':
        await dashboardPage(project.id, params.get('id') ?? '', { insights: insightsPage, funnels: funnelsPage, retention: retentionPage });
        break;
      case '/security/members':
        await membersPage(me);
        break;
      case '/security/sessions':
        await sessionsPage(me);
        break;
      case '/security/keys':
        await keysPage(project.id);
        break;
      case '/security/rules':
        await rulesPage(project.id);
        break;
      case '/security/audit':
        await auditPage(project.id, params);
        break;
      case '/security/contain':
        await containPage(me, project.id);
        break;
      case '/settings':
        await settingsPage(me, project.id);
        break;
      case '/security/exposure':
        await exposurePage(project.id, params);
        break;
      case '/security':
        await securityPage(me, project.id);
        break;
      default: {
        const { events } = await api.get<{ events: string[] }>(`/api/v1/events/names?project_id=${project.id}`);
        if (events.length === 0) await firstRun(project);
        else show(project.name, h('p', {}, `${events.length} event names so far. `, h('a', { href: '#/insights' }, 'Open insights'), '.'),
          h('ul', { class: 'events' }, ...events.slice(0, 20).map((e) => h('li', {}, h('a', { href: `#/insights?event=${encodeURIComponent(e)}` }, e)))));
      }
    }
  } catch (error) {
    show('Something went wrong', status(`${(error as Error).message}. Reload the page; if it persists, check the server's log.`, 'error'));
  }
}

// The skip link moves focus into the page without touching the hash (pages live there).
document.querySelector('a.skip')?.addEventListener('click', (event) => {
  event.preventDefault();
  document.getElementById('main')?.focus();
});
window.addEventListener('hashchange', () => void route());
void route();
