// Funnels: ordered steps within a window; each step's people, conversion
// from the start and from the step before, and median time to convert; as
// bars and as a table, with a CSV download.

import { api, onProject } from './api';
import { saveControl } from './dashboards';
import { csvCell, dayOffset, download, field, h, reportForm, select, show, status } from './dom';
import { filterControls, filtersFrom } from './filters';
import { downloadFunnel } from './png';

interface Step { event: string; count: number; conversion_from_start: number; conversion_from_previous: number; median_time_from_previous_ms: number | null }
interface Segment { segment: unknown; steps: Step[] }
interface Result { steps: Step[]; segments?: Segment[] }

const percent = (x: number) => `${(x * 100).toFixed(1)}%`;
const duration = (ms: number | null) => {
  if (ms === null) return '–';
  const minutes = ms / 60_000;
  return minutes < 120 ? `${minutes.toFixed(1)} min` : minutes < 2880 ? `${(minutes / 60).toFixed(1)} h` : `${(minutes / 1440).toFixed(1)} d`;
};

export async function funnelsPage(project: number, params: URLSearchParams): Promise<void> {
  const names = await api.get<{ events: string[] }>(onProject('/api/v1/events/names', project)).then((r) => r.events).catch(() => [] as string[]);
  const steps = params.getAll('step').filter(Boolean);
  const chosen = steps.length >= 2 ? steps : names.slice(0, 2);
  const window = params.get('window') || '7d';
  const from = params.get('from') || dayOffset(-29);
  const to = params.get('to') || dayOffset(0);
  const counting = params.get('counting') || 'uniques';
  const entry = params.get('entry') || 'first';
  const breakdown = params.get('breakdown') || '';
  const filters = filtersFrom(params);
  const stepFields = [...chosen, ''].slice(0, 8).map((event, i) => field(`Step ${i + 1}`, select('step', ['', ...names], event, (o) => o || (i < 2 ? 'choose…' : '(none)'))));
  const form = reportForm('funnels', 'Funnel settings', ...stepFields,
    field('Window', h('input', { name: 'window', value: window, pattern: '[0-9]+[dhm]', size: 5, title: 'e.g. 7d, 12h, 30m' })),
    field('Counting', select('counting', ['uniques', 'totals'], counting)),
    field('From', h('input', { type: 'date', name: 'from', value: from, required: true })),
    field('To', h('input', { type: 'date', name: 'to', value: to, required: true })),
    field('Entry', select('entry', ['first', 'any'], entry, (o) => (o === 'first' ? 'first time only' : 'every attempt'))),
    field('Breakdown', h('input', { name: 'breakdown', value: breakdown, placeholder: 'property, e.g. plan' })),
    filterControls(filters));
  const message = status(chosen.length >= 2 ? 'Running…' : 'Choose at least two steps.');
  const body = h('div');
  show('Funnels', form, message, body);
  if (chosen.length < 2) return;
  let result: Result;
  try {
    result = await api.post<Result>(onProject('/api/v1/query', project), { report: 'funnel', from, to, window, counting, entry, steps: chosen.map((event) => ({ event })), ...(breakdown ? { breakdown, limit: 12 } : {}), ...(filters.length ? { where: filters } : {}) });
  } catch (error) {
    message.replaceWith(status(`The funnel failed: ${(error as Error).message}. Steps need event names; the window is like 7d.`, 'error'));
    return;
  }
  if (result.segments) {
    renderSegments(body, result.segments, chosen, breakdown);
    message.textContent = `${result.segments.length} segments of ${breakdown}`;
    return;
  }
  const top = Math.max(1, result.steps[0]?.count ?? 1);
  message.textContent = `${result.steps[0]?.count ?? 0} entered, ${result.steps.at(-1)?.count ?? 0} converted (${percent(result.steps.at(-1)?.conversion_from_start ?? 0)})`;
  body.append(
    h('div', { class: 'funnel', role: 'img', 'aria-label': 'Funnel bars' }, ...result.steps.map((s, i) => h('div', { class: 'funnel-step' },
      h('div', { class: 'funnel-bar', style: `height: ${Math.max(2, (s.count / top) * 220)}px` }),
      h('div', { class: 'funnel-label' }, `${i + 1}. ${s.event}`),
      h('div', { class: 'muted' }, `${s.count.toLocaleString('en')} · ${percent(s.conversion_from_start)}`)))),
    h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => download('funnel.csv', new Blob([toCsv(result)], { type: 'text/csv' })) }, 'Download CSV'),
      h('button', { type: 'button', onclick: () => downloadFunnel(`Funnel ${from} to ${to}, within ${window}`, result.steps, 'funnel.png') }, 'Download PNG'),
      saveControl(project, `funnels?${params.toString()}`, `Funnel: ${chosen.join(' → ')}`) ?? ''),
    h('table', { class: 'report', 'data-testid': 'funnel-table' },
      h('thead', {}, h('tr', {}, ...['Step', 'People', 'From start', 'From previous', 'Median time from previous'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, ...result.steps.map((s, i) => h('tr', {},
        h('th', { scope: 'row' }, `${i + 1}. ${s.event}`), h('td', { 'data-count': String(s.count) }, s.count.toLocaleString('en')),
        h('td', {}, percent(s.conversion_from_start)), h('td', {}, percent(s.conversion_from_previous)), h('td', {}, duration(s.median_time_from_previous_ms)))))));
}

const segmentLabel = (segment: unknown) => (segment === null ? '(none)' : typeof segment === 'string' ? segment : JSON.stringify(segment));

/** A funnel broken down: one row per segment, each step's people and the overall conversion. */
function renderSegments(body: HTMLElement, segments: Segment[], steps: string[], breakdown: string): void {
  const csv = [['segment', ...steps.map((s, i) => `${i + 1}. ${s}`), 'conversion'].map(csvCell).join(','),
    ...segments.map((g) => [segmentLabel(g.segment), ...g.steps.map((s) => s.count), g.steps.at(-1)?.conversion_from_start ?? 0].map(csvCell).join(','))].join('\n') + '\n';
  body.append(
    h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => download('funnel-segments.csv', new Blob([csv], { type: 'text/csv' })) }, 'Download CSV')),
    h('table', { class: 'report', 'data-testid': 'funnel-segments' },
      h('caption', {}, `People at each step, by ${breakdown}`),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, breakdown), ...steps.map((s, i) => h('th', { scope: 'col' }, `${i + 1}. ${s}`)), h('th', { scope: 'col' }, 'Conversion'))),
      h('tbody', {}, ...segments.map((g) => h('tr', {},
        h('th', { scope: 'row' }, segmentLabel(g.segment)),
        ...g.steps.map((s) => h('td', { 'data-count': String(s.count) }, s.count.toLocaleString('en'))),
        h('td', {}, percent(g.steps.at(-1)?.conversion_from_start ?? 0)))))));
}

function toCsv(result: Result): string {
  const rows = ['step,event,count,conversion_from_start,conversion_from_previous,median_time_from_previous_ms'];
  result.steps.forEach((s, i) => rows.push([i + 1, s.event, s.count, s.conversion_from_start, s.conversion_from_previous, s.median_time_from_previous_ms ?? ''].map(csvCell).join(',')));
  return rows.join('\n') + '\n';
}
