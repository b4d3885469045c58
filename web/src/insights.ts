// Insights: events over time, by measure, broken down by a property, as a
// line or bar chart (uPlot) and a table; CSV and PNG downloads. The whole
// report lives in the URL, so a link reopens it.

import uPlot from 'uplot';
import { api, onProject } from './api';
import { saveControl } from './dashboards';
import { csvCell, dayOffset, download, field, h, reportForm, select, show, status } from './dom';
import { filterControls, filtersFrom } from './filters';
import { downloadChart } from './png';

interface Series { event: string; measure: string; segment?: unknown; points: Record<string, number | null>; total?: number | null }
interface FormulaSeries { name: string; expression: string; segment?: unknown; points: Record<string, number | null> }
interface Result { series: Series[]; formulas?: FormulaSeries[]; previous?: Result }

const MEASURES = ['total', 'uniques', 'dau', 'wau', 'mau'] as const;
const INTERVALS = ['hour', 'day', 'week', 'month'] as const;
const PALETTE = ['#3b6fd8', '#d8573b', '#2e9d6a', '#9b59b6', '#c99a06', '#17a2b8', '#e83e8c', '#6c757d'];


export interface InsightsState { event: string; measure: string; second: string; formula: string; compare: boolean; breakdown: string; interval: string; from: string; to: string; view: string }

export function stateFrom(params: URLSearchParams): InsightsState {
  return {
    event: params.get('event') || '$any',
    measure: params.get('measure') || 'total',
    second: params.get('second') || '',
    formula: params.get('formula') || '',
    compare: params.get('compare') === 'on',
    breakdown: params.get('breakdown') || '',
    interval: params.get('interval') || 'day',
    from: params.get('from') || dayOffset(-29),
    to: params.get('to') || dayOffset(0),
    view: params.get('view') || 'line',
  };
}

function label(series: Series | FormulaSeries): string {
  if ('expression' in series) {
    const segment = series.segment === undefined ? '' : ` · ${series.segment === null ? '(none)' : typeof series.segment === 'string' ? series.segment : JSON.stringify(series.segment)}`;
    return `${series.name} = ${series.expression}${segment}`;
  }
  const segment = series.segment === undefined ? '' : ` · ${series.segment === null ? '(none)' : typeof series.segment === 'string' ? series.segment : JSON.stringify(series.segment)}`;
  return `${series.event} (${series.measure})${segment}`;
}

export async function insightsPage(project: number, params: URLSearchParams): Promise<void> {
  const state = stateFrom(params);
  const names = await api.get<{ events: string[] }>(onProject('/api/v1/events/names', project)).then((r) => r.events).catch(() => [] as string[]);
  const eventLabel = (o: string) => (o === '$any' ? 'Any event' : o);
  const form = reportForm('insights', 'Report settings',
    field('Event', select('event', ['$any', ...names], state.event, eventLabel)),
    field('Measure', select('measure', MEASURES, state.measure)),
    field('B (optional)', select('second', ['', '$any', ...names], state.second, (o) => (o ? eventLabel(o) : '(none)'))),
    field('Formula', h('input', { name: 'formula', value: state.formula, placeholder: 'e.g. A / B', size: 10 })),
    field('Breakdown', h('input', { name: 'breakdown', value: state.breakdown, placeholder: 'property, e.g. mp_country_code' })),
    field('Interval', select('interval', INTERVALS, state.interval)),
    field('From', h('input', { type: 'date', name: 'from', value: state.from, required: true })),
    field('To', h('input', { type: 'date', name: 'to', value: state.to, required: true })),
    field('View', select('view', ['line', 'bar', 'table'], state.view)),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'compare', checked: state.compare }), 'compare to the previous period'),
    filterControls(filtersFrom(params)),
  );
  const message = status('Running…');
  const chart = h('div', { class: 'chart', role: 'img', 'aria-label': 'Chart of the report' });
  const table = h('div', { class: 'table-wrap' });
  const actions = h('div', { class: 'actions' });
  show('Insights', form, message, actions, chart, table);

  const spec: Record<string, unknown> = {
    report: 'insights', from: state.from, to: state.to, interval: state.interval,
    events: [{ event: state.event, measure: state.measure }, ...(state.second ? [{ event: state.second, measure: state.measure }] : [])],
  };
  if (state.formula) spec.formulas = [{ name: 'formula', expression: state.formula }];
  const filters = filtersFrom(params);
  if (filters.length) spec.where = filters;
  if (state.compare) spec.compare = 'previous_period';
  if (state.breakdown) Object.assign(spec, { breakdown: state.breakdown, limit: 8 });
  const started = performance.now();
  let result: Result;
  try {
    result = await api.post<Result>(onProject('/api/v1/query', project), spec);
  } catch (error) {
    message.replaceWith(status(`The report failed: ${(error as Error).message}. Check the event, the dates, the breakdown property and the filters.`, 'error'));
    return;
  }
  const buckets = [...new Set(result.series.flatMap((s) => Object.keys(s.points)))].sort();
  const shown: Array<Series | FormulaSeries> = [...result.series, ...(result.formulas ?? [])];
  message.textContent = `${shown.length} series, ${buckets.length} ${state.interval}s, in ${Math.round(performance.now() - started)} ms`;
  table.append(renderTable(shown, buckets));
  if (result.previous) {
    // The previous period has its own dates: shown against this period's positions.
    const earlier = [...new Set(result.previous.series.flatMap((s) => Object.keys(s.points)))].sort();
    const shifted = result.previous.series.map((s) => ({ ...s, event: `${s.event} (previous period)`, points: Object.fromEntries(buckets.map((b, i) => [b, s.points[earlier[i] ?? ''] ?? null])) }));
    table.append(h('p', { class: 'muted' }, `Previous period: ${earlier[0] ?? ''} to ${earlier.at(-1) ?? ''}`), renderTable(shifted, buckets, 'previous-table'));
    shown.push(...shifted);
  }
  if (state.view !== 'table' && buckets.length > 0) renderChart(chart, shown, buckets, state.view === 'bar');
  actions.append(
    h('button', { type: 'button', onclick: () => download('insights.csv', new Blob([toCsv(shown, buckets)], { type: 'text/csv' })) }, 'Download CSV'),
    h('button', { type: 'button', disabled: state.view === 'table', onclick: () => downloadChart(chart, 'insights.png') }, 'Download PNG'),
    saveControl(project, `insights?${params.toString()}`, `${state.event === '$any' ? 'Any event' : state.event} (${state.measure})${state.breakdown ? ` by ${state.breakdown}` : ''}`) ?? '',
  );
}

function renderTable(series: Array<Series | FormulaSeries>, buckets: string[], testId = 'insights-table'): HTMLElement {
  return h('table', { class: 'report', 'data-testid': testId },
    h('caption', {}, 'Values per interval'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Series'), ...buckets.map((b) => h('th', { scope: 'col' }, b)), h('th', { scope: 'col' }, 'Total'))),
    h('tbody', {}, ...series.map((s) => {
      const values = buckets.map((b) => s.points[b] ?? null);
      const total = ('total' in s && s.total !== undefined && s.total !== null) ? s.total : values.reduce<number>((sum, v) => sum + (v ?? 0), 0);
      // A formula's values do not add up (a sum of ratios means nothing).
      const totalCell = 'expression' in s ? h('td', { class: 'total' }, '–') : h('td', { class: 'total', 'data-total': String(total) }, total.toLocaleString('en'));
      return h('tr', {}, h('th', { scope: 'row' }, label(s)), ...values.map((v) => h('td', {}, v === null ? '–' : v.toLocaleString('en'))), totalCell);
    })));
}

function renderChart(target: HTMLElement, series: Array<Series | FormulaSeries>, buckets: string[], bars: boolean): void {
  const xs = buckets.map((b) => Date.parse(b.length === 10 ? `${b}T00:00:00Z` : b) / 1000);
  const data: uPlot.AlignedData = [xs, ...series.map((s) => buckets.map((b) => s.points[b] ?? null))];
  const width = Math.max(320, (target.parentElement?.clientWidth ?? 840) - 24);
  // Several series as bars stand side by side in each bucket, not on top of one another.
  const step = xs.length > 1 ? xs[1] - xs[0] : 86400;
  const barWidth = (step * 0.8) / Math.max(1, series.length);
  const barPaths = (i: number) => {
    if (series.length < 2) return uPlot.paths.bars!({ size: [0.8, 40] });
    const shifted = xs.map((x) => x + (i - (series.length - 1) / 2) * barWidth);
    const disp = { x0: { unit: 1, values: () => shifted }, size: { unit: 1, values: () => [barWidth] } };
    return uPlot.paths.bars!({ size: [0.8, 40], disp } as unknown as Parameters<NonNullable<typeof uPlot.paths.bars>>[0]);
  };
  new uPlot({
    width, height: 320,
    scales: { x: { time: true } },
    series: [{}, ...series.map((s, i) => ({ label: label(s), stroke: PALETTE[i % PALETTE.length], fill: bars ? PALETTE[i % PALETTE.length] + '99' : undefined, width: 2, paths: bars ? barPaths(i) : undefined,
      dash: label(s).includes('(previous period)') ? [6, 4] : undefined }))],
    axes: [{}, { size: 60 }],
  }, data, target);
}

function toCsv(series: Array<Series | FormulaSeries>, buckets: string[]): string {
  const rows = [['series', ...buckets].map(csvCell).join(',')];
  for (const s of series) rows.push([label(s), ...buckets.map((b) => s.points[b] ?? '')].map(csvCell).join(','));
  return rows.join('\n') + '\n';
}
