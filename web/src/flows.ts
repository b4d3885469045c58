// Flows: what people did after (or before) an event, step by step: the most
// common paths and each step's events, with the drop-off.

import { api, onProject } from './api';
import { csvCell, dayOffset, download, field, h, reportForm, select, show, status } from './dom';
import { downloadRanking } from './png';

interface Result { paths: Array<{ events: string[]; count: number }>; steps: Array<{ step: number; nodes: Array<{ event: string; count: number }>; dropoff: number }> }

export async function flowsPage(project: number, params: URLSearchParams): Promise<void> {
  const names = await api.get<{ events: string[] }>(onProject('/api/v1/events/names', project)).then((r) => r.events).catch(() => [] as string[]);
  const anchor = params.get('anchor') || names[0] || '';
  const direction = params.get('direction') || 'after';
  const steps = Math.min(6, Math.max(1, Number(params.get('steps')) || 3));
  const from = params.get('from') || dayOffset(-29);
  const to = params.get('to') || dayOffset(0);
  const form = reportForm('flows', 'Flow settings',
    field('Anchor event', select('anchor', names, anchor)),
    field('Direction', select('direction', ['after', 'before'], direction)),
    field('Steps', h('input', { type: 'number', name: 'steps', value: steps, min: 1, max: 6 })),
    field('From', h('input', { type: 'date', name: 'from', value: from, required: true })),
    field('To', h('input', { type: 'date', name: 'to', value: to, required: true })));
  const message = status(anchor ? 'Running…' : 'No events yet.');
  const body = h('div');
  show('Flows', form, message, body);
  if (!anchor) return;
  let result: Result;
  try {
    result = await api.post<Result>(onProject('/api/v1/query', project), { report: 'flows', from, to, anchor: { event: anchor }, direction, steps });
  } catch (error) {
    message.replaceWith(status(`The flow failed: ${(error as Error).message}.`, 'error'));
    return;
  }
  const total = result.paths.reduce((a, p) => a + p.count, 0);
  message.textContent = `${total.toLocaleString('en')} paths ${direction} “${anchor}”`;
  body.append(
    h('div', { class: 'flow-steps' }, ...result.steps.map((s) => h('section', { class: 'flow-step' },
      h('h2', {}, `Step ${s.step}`),
      h('ol', {}, ...s.nodes.map((n) => h('li', {}, h('span', { class: 'bar', style: `width: ${Math.max(2, (100 * n.count) / Math.max(1, total))}%` }), `${n.event} · ${n.count.toLocaleString('en')}`))),
      h('p', { class: 'muted' }, `drop-off: ${s.dropoff.toLocaleString('en')}`)))),
    h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => download('flows.csv', new Blob([['path,count', ...result.paths.map((p) => [p.events.join(' → '), p.count].map(csvCell).join(','))].join('\n') + '\n'], { type: 'text/csv' })) }, 'Download CSV'),
      h('button', { type: 'button', onclick: () => downloadRanking(`Paths ${direction} “${anchor}”, ${from} to ${to}`, result.paths.slice(0, 20).map((p) => ({ label: p.events.join(' → '), value: p.count })), 'flows.png') }, 'Download PNG')),
    h('table', { class: 'report text', 'data-testid': 'flow-paths' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Path'), h('th', { scope: 'col' }, 'People'))),
      h('tbody', {}, ...result.paths.slice(0, 50).map((p) => h('tr', {}, h('td', {}, p.events.join(' → ')), h('td', { 'data-count': String(p.count) }, p.count.toLocaleString('en')))))));
}
