// Retention: cohorts by birth bucket and the share of each that came back in
// each later period, as a heat-mapped table and an average curve (uPlot).

import uPlot from 'uplot';
import { api, onProject } from './api';
import { saveControl } from './dashboards';
import { csvCell, dayOffset, download, field, h, reportForm, select, show, status } from './dom';
import { downloadHeatmap } from './png';

interface Cohort { start: string; size: number; counts: number[] }
interface Result { cohorts: Cohort[] }

export async function retentionPage(project: number, params: URLSearchParams): Promise<void> {
  const names = await api.get<{ events: string[] }>(onProject('/api/v1/events/names', project)).then((r) => r.events).catch(() => [] as string[]);
  const born = params.get('born') || names[0] || '';
  const back = params.get('return') || '$any';
  const unit = params.get('unit') || 'day';
  const periods = Math.min(30, Math.max(2, Number(params.get('periods')) || 8));
  const from = params.get('from') || dayOffset(-13);
  const to = params.get('to') || dayOffset(0);
  const form = reportForm('retention', 'Retention settings',
    field('Born with', select('born', names, born)),
    field('Came back with', select('return', ['$any', ...names], back, (o) => (o === '$any' ? 'Any event' : o))),
    field('Unit', select('unit', ['day', 'week', 'month'], unit)),
    field('Periods', h('input', { type: 'number', name: 'periods', value: periods, min: 2, max: 30 })),
    field('From', h('input', { type: 'date', name: 'from', value: from, required: true })),
    field('To', h('input', { type: 'date', name: 'to', value: to, required: true })));
  const message = status(born ? 'Running…' : 'No events yet.');
  const chart = h('div', { class: 'chart', role: 'img', 'aria-label': 'Average retention curve' });
  const body = h('div', { class: 'table-wrap' });
  show('Retention', form, message, chart, body);
  if (!born) return;
  let result: Result;
  try {
    result = await api.post<Result>(onProject('/api/v1/query', project), { report: 'retention', from, to, unit, periods, born: { event: born }, return: { event: back } });
  } catch (error) {
    message.replaceWith(status(`The retention report failed: ${(error as Error).message}.`, 'error'));
    return;
  }
  const people = result.cohorts.reduce((a, c) => a + c.size, 0);
  message.textContent = `${result.cohorts.length} cohorts, ${people.toLocaleString('en')} people`;
  const average = Array.from({ length: periods }, (_, k) => {
    const size = result.cohorts.reduce((a, c) => a + c.size, 0);
    return size ? (100 * result.cohorts.reduce((a, c) => a + (c.counts[k] ?? 0), 0)) / size : null;
  });
  const heatRows = result.cohorts.map((c) => ({ label: c.start, size: c.size, counts: c.counts }));
  body.append(h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => download('retention.csv', new Blob([toCsv(result)], { type: 'text/csv' })) }, 'Download CSV'),
    h('button', { type: 'button', onclick: () => downloadHeatmap(`Retention: ${born} then ${back === '$any' ? 'any event' : back}, ${from} to ${to}`, unit, heatRows, 'retention.png') }, 'Download PNG'),
    saveControl(project, `retention?${params.toString()}`, `Retention: ${born} → ${back === '$any' ? 'any event' : back}`) ?? ''),
    h('table', { class: 'report heat', 'data-testid': 'retention-table' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Cohort'), h('th', { scope: 'col' }, 'People'), ...average.map((_, k) => h('th', { scope: 'col' }, `${unit} ${k}`)))),
      h('tbody', {}, ...result.cohorts.map((c) => h('tr', {},
        h('th', { scope: 'row' }, c.start), h('td', { 'data-size': String(c.size) }, c.size.toLocaleString('en')),
        ...c.counts.map((n) => {
          const share = c.size ? n / c.size : 0;
          // Dark text on every shade: the darkest keeps a contrast above 6:1 (WCAG AA).
          return h('td', { style: `background: rgba(59, 111, 216, ${(0.06 + share * 0.6).toFixed(2)})`, 'data-count': String(n), title: `${n} of ${c.size}` }, `${(share * 100).toFixed(0)}%`);
        }))))));
  if (result.cohorts.length > 0) {
    new uPlot({
      width: Math.max(320, (document.getElementById('main')?.clientWidth ?? 840) - 60), height: 240,
      scales: { x: { time: false }, y: { range: [0, 100] } },
      series: [{ label: unit }, { label: 'retained %', stroke: '#3b6fd8', width: 2 }],
      axes: [{}, { size: 50 }],
    }, [average.map((_, k) => k), average], chart);
  }
}

function toCsv(result: Result): string {
  const periods = Math.max(0, ...result.cohorts.map((c) => c.counts.length));
  const rows = [['cohort', 'size', ...Array.from({ length: periods }, (_, k) => `period_${k}`)].join(',')];
  for (const c of result.cohorts) rows.push([c.start, c.size, ...c.counts].map(csvCell).join(','));
  return rows.join('\n') + '\n';
}
