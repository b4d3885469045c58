// A few lines of DOM building: elements with attributes and children, text
// always as text (never HTML), so nothing from the data can run as script.

type Child = Node | string | number | null | undefined | false;
type Attributes = Record<string, string | number | boolean | EventListener | null | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Attributes = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.replace(/^on/, ''), value);
    // Through the CSSOM: the CSP (style-src 'self') refuses style attributes.
    else if (name === 'style') element.style.cssText = String(value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === 'string' || typeof child === 'number' ? String(child) : child);
  }
  // Boxes that may scroll sideways on a narrow screen take the keyboard focus,
  // so that the arrow keys scroll them (WCAG 2.1.1; axe's scrollable-region-focusable).
  if (!element.hasAttribute('tabindex') && (tag === 'pre' || ['report', 'table-wrap', 'chart', 'funnel'].some((name) => element.classList.contains(name)))) element.tabIndex = 0;
  return element;
}

let tile: HTMLElement | null = null;

/** Runs a page with `show` drawing into `into` (a dashboard tile) instead of the main area. */
export async function renderInto(into: HTMLElement, page: () => Promise<void>): Promise<void> {
  tile = into;
  try {
    await page();
  } finally {
    tile = null;
  }
}

/** True while a page draws into a dashboard tile. */
export const inTile = (): boolean => tile !== null;

/** Replaces the main area's content and moves focus there (screen readers hear the new page). */
export function show(title: string, ...content: Child[]): HTMLElement {
  const children = content.filter((c): c is Node | string => c !== null && c !== undefined && c !== false).map((c) => (typeof c === 'number' ? String(c) : c));
  if (tile) {
    tile.replaceChildren(...children);
    return tile;
  }
  const main = document.getElementById('main') as HTMLElement;
  main.replaceChildren(h('h1', {}, title), ...children);
  document.title = `${title} · Hearth`;
  main.focus({ preventScroll: true });
  return main;
}

/** A message region that screen readers announce. */
export function status(text = '', kind: 'info' | 'error' = 'info'): HTMLElement {
  return h('p', { class: `status ${kind}`, role: kind === 'error' ? 'alert' : 'status', 'aria-live': 'polite' }, text);
}

export function download(name: string, blob: Blob): void {
  const url = URL.createObjectURL(blob);
  const link = h('a', { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** A labelled control. */
export function field(text: string, control: HTMLElement): HTMLLabelElement {
  return h('label', {}, h('span', {}, text), control);
}

export function select(name: string, options: readonly string[], value: string, labels: (o: string) => string = (o) => o): HTMLSelectElement {
  return h('select', { name }, ...options.map((o) => h('option', { value: o, selected: o === value }, labels(o))));
}

/** A form whose submission rewrites the URL's hash to `#/page?fields`, so the report is its link. */
export function reportForm(page: string, label: string, ...controls: HTMLElement[]): HTMLFormElement {
  const form = h('form', { class: 'controls', 'aria-label': label }, ...controls, h('button', { type: 'submit' }, 'Run'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(form).entries()) if (String(value)) next.append(key, String(value));
    location.hash = `#/${page}?${next.toString()}`;
  });
  return form;
}

export const dayOffset = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
