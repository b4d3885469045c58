// Cohorts: build one from rules (did an event at least N times, or did not,
// within D days; all or any of them), save it, list saved ones, and list a
// cohort's members (user-level rows: the export permission).

import { api, Me, onProject } from './api';
import { csvCell, download, field, h, select, show, status } from './dom';
import { withStepUp } from './passkeys';

interface Cohort { id: number; name: string; definition: unknown; created_ms: number }

function ruleRow(names: string[]): HTMLElement {
  const row = h('div', { class: 'rule' },
    field('People who', select('kind', ['did', 'did_not'], 'did', (k) => (k === 'did' ? 'did' : 'did not do'))),
    field('Event', select('event', names, names[0] ?? '')),
    field('At least (times)', h('input', { type: 'number', name: 'at_least', value: 1, min: 1 })),
    field('Within (days)', h('input', { type: 'number', name: 'within_days', value: 30, min: 1 })));
  const remove = h('button', { type: 'button', class: 'secondary' }, 'Remove rule');
  remove.addEventListener('click', () => row.remove());
  row.append(remove);
  return row;
}

function definitionOf(rules: HTMLElement, combine: string): unknown {
  const parts = [...rules.querySelectorAll<HTMLElement>('.rule')].map((row) => {
    const value = (name: string) => (row.querySelector(`[name=${name}]`) as HTMLInputElement).value;
    const days = Number(value('within_days'));
    return value('kind') === 'did'
      ? { did: value('event'), at_least: Number(value('at_least')), within_days: days }
      : { did_not: value('event'), within_days: days };
  });
  return { [combine]: parts };
}

export async function cohortsPage(me: Me, project: number): Promise<void> {
  const [names, { cohorts }] = await Promise.all([
    api.get<{ events: string[] }>(onProject('/api/v1/events/names', project)).then((r) => r.events).catch(() => [] as string[]),
    api.get<{ cohorts: Cohort[] }>(onProject('/api/v1/cohorts', project)),
  ]);
  const message = status();
  const rules = h('div', { class: 'rules' }, ruleRow(names));
  const combine = select('combine', ['all', 'any'], 'all', (c) => (c === 'all' ? 'all rules hold' : 'any rule holds'));
  const name = h('input', { name: 'name', required: true, placeholder: 'e.g. Active API users' });
  const add = h('button', { type: 'button', class: 'secondary' }, 'Add rule');
  add.addEventListener('click', () => rules.append(ruleRow(names)));
  const form = h('form', { class: 'controls cohort-builder', 'aria-label': 'New cohort' }, field('Name', name), field('Combine', combine), rules, add, h('button', { type: 'submit' }, 'Save cohort'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const saved = await api.post<Cohort>(onProject('/api/v1/cohorts', project), { name: name.value, definition: definitionOf(rules, combine.value) });
      message.textContent = `Saved cohort “${saved.name}”.`;
      await cohortsPage(me, project);
    } catch (error) {
      message.className = 'status error';
      message.textContent = `Could not save the cohort: ${(error as Error).message}`;
    }
  });
  const members = h('div');
  const list = cohorts.length === 0 ? h('p', { class: 'muted' }, 'No saved cohort yet.') : h('table', { class: 'report text', 'data-testid': 'cohorts' },
    h('thead', {}, h('tr', {}, ...['Cohort', 'Definition', ''].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, ...cohorts.map((c) => h('tr', {}, h('td', {}, c.name), h('td', {}, h('code', {}, JSON.stringify(c.definition))),
      h('td', {}, h('button', { type: 'button', class: 'secondary', disabled: !me.member.can_export, title: me.member.can_export ? '' : 'Listing people needs the export permission',
        onclick: () => showMembers(project, c, members) }, `List members of ${c.name}`))))));
  show('Cohorts', h('h2', {}, 'Saved cohorts'), list, members, h('h2', {}, 'New cohort'), form, message);
}

async function showMembers(project: number, cohort: Cohort, into: HTMLElement): Promise<void> {
  into.replaceChildren(status('Listing…'));
  try {
    const result = await withStepUp(() => api.post<{ count: number; members: string[] }>(onProject('/api/v1/query', project), { report: 'cohort_members', cohort: cohort.id }),
      (text) => into.replaceChildren(status(text)));
    into.replaceChildren(h('h2', {}, `${cohort.name}: ${result.count.toLocaleString('en')} people`),
      h('button', { type: 'button', onclick: () => download(`cohort-${cohort.id}.csv`, new Blob(['distinct_id\n' + result.members.map(csvCell).join('\n') + '\n'], { type: 'text/csv' })) }, 'Download CSV'),
      h('ul', { class: 'events', 'data-testid': 'cohort-members' }, ...result.members.slice(0, 200).map((id) => h('li', {}, h('a', { href: `#/users?id=${encodeURIComponent(id)}` }, id)))));
  } catch (error) {
    into.replaceChildren(status(`Could not list the members: ${(error as Error).message}`, 'error'));
  }
}
