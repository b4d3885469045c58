// Report filters: rows of "property, operator, value", the report API's
// `where` (docs/reports.md, Filters). Each row keeps its filter as JSON in a
// hidden `filter` field, so that the report form puts it in the URL like any
// other setting and a link reopens the report with its filters.

import { h } from './dom';

export interface FilterRow { property: string; op: string; value?: unknown }

const OPERATORS: Array<[string, string]> = [
  ['eq', 'is'], ['neq', 'is not'], ['contains', 'contains'], ['not_contains', 'does not contain'],
  ['in', 'is one of (a, b)'], ['gt', '>'], ['gte', '≥'], ['lt', '<'], ['lte', '≤'], ['set', 'is set'], ['not_set', 'is not set'],
];
const WITHOUT_VALUE = new Set(['set', 'not_set']);

/** The filters of a report link. Malformed ones are left out. */
export function filtersFrom(params: URLSearchParams): FilterRow[] {
  return params.getAll('filter').flatMap((text) => {
    try {
      const row = JSON.parse(text) as FilterRow;
      return typeof row.property === 'string' && row.property && OPERATORS.some(([op]) => op === row.op) ? [row] : [];
    } catch {
      return [];
    }
  });
}

/** A typed value from what was typed: numbers and booleans as such, lists for `in`. */
function typed(op: string, text: string): unknown {
  const one = (t: string): unknown => (/^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t === 'true' ? true : t === 'false' ? false : t);
  if (WITHOUT_VALUE.has(op)) return undefined;
  if (op === 'in') return text.split(',').map((t) => one(t.trim())).filter((v) => v !== '');
  if (['gt', 'gte', 'lt', 'lte'].includes(op)) return Number(text);
  if (op === 'contains' || op === 'not_contains') return text;
  return one(text.trim());
}

function shown(value: unknown): string {
  if (value === undefined || value === null) return '';
  return Array.isArray(value) ? value.join(', ') : String(value);
}

function row(filter: FilterRow, index: number): HTMLElement {
  const hidden = h('input', { type: 'hidden', name: 'filter' });
  const property = h('input', { value: filter.property, placeholder: 'property, e.g. plan', 'aria-label': `Filter ${index + 1} property`, size: 14 });
  const op = h('select', { 'aria-label': `Filter ${index + 1} operator` }, ...OPERATORS.map(([value, text]) => h('option', { value, selected: value === filter.op }, text)));
  const value = h('input', { value: shown(filter.value), placeholder: 'value', 'aria-label': `Filter ${index + 1} value`, size: 12 });
  const sync = () => {
    value.disabled = WITHOUT_VALUE.has(op.value);
    const property_ = property.value.trim();
    hidden.value = property_ ? JSON.stringify({ property: property_, op: op.value, value: typed(op.value, value.value) }) : '';
  };
  for (const control of [property, op, value]) control.addEventListener('input', sync);
  sync();
  const element = h('div', { class: 'filter-row', role: 'group', 'aria-label': `Filter ${index + 1}` }, property, op, value, hidden,
    h('button', { type: 'button', class: 'secondary', 'aria-label': `Remove filter ${index + 1}`, onclick: () => element.remove() }, '×'));
  return element;
}

/** The filter rows of a report form, with a button that adds one. */
export function filterControls(filters: FilterRow[]): HTMLElement {
  const rows = h('div', { class: 'filter-rows' }, ...filters.map(row));
  const add = h('button', { type: 'button', class: 'secondary', onclick: () => {
    rows.append(row({ property: '', op: 'eq' }, rows.children.length));
    (rows.lastElementChild?.querySelector('input') as HTMLInputElement | null)?.focus();
  } }, 'Add filter');
  return h('fieldset', { class: 'filters' }, h('legend', {}, 'Filters (all must hold)'), rows, add);
}
