// Dashboards: saved reports side by side. A tile is a report's own link, so
// it reruns on current data; a dashboard is shared by its link too.

import { api, onProject } from './api';
import { h, inTile, renderInto, show, status } from './dom';

export interface Tile { title: string; report: string }
interface Dashboard { id: number; name: string; tiles: Tile[]; created_by: string; updated_ms: number }
type Page = (project: number, params: URLSearchParams) => Promise<void>;

/** "Add to dashboard" for the report on screen (not inside a tile). */
export function saveControl(project: number, report: string, title: string): HTMLElement | null {
  if (inTile()) return null;
  const message = status();
  const choice = h('select', { 'aria-label': 'Dashboard' }, h('option', { value: '' }, 'New dashboard…'));
  const name = h('input', { 'aria-label': 'New dashboard name', placeholder: 'New dashboard name' });
  void api.get<{ dashboards: Dashboard[] }>(onProject('/api/v1/dashboards', project)).then(({ dashboards }) => {
    for (const d of dashboards) choice.append(h('option', { value: String(d.id) }, d.name));
  }).catch(() => null);
  choice.addEventListener('change', () => { name.hidden = choice.value !== ''; });
  const save = h('button', { type: 'button', class: 'secondary' }, 'Add to dashboard');
  save.addEventListener('click', async () => {
    try {
      const tile = { title, report };
      let saved: Dashboard;
      if (choice.value) {
        const current = await api.get<Dashboard>(onProject(`/api/v1/dashboards/${choice.value}`, project));
        saved = await api.put<Dashboard>(onProject(`/api/v1/dashboards/${current.id}`, project), { name: current.name, tiles: [...current.tiles, tile] });
      } else {
        if (!name.value.trim()) throw new Error('name the new dashboard');
        saved = await api.post<Dashboard>(onProject('/api/v1/dashboards', project), { name: name.value.trim(), tiles: [tile] });
      }
      message.replaceChildren('Saved to ', h('a', { href: `#/dashboard?id=${saved.id}` }, saved.name), '.');
    } catch (error) {
      message.className = 'status error';
      message.textContent = `Could not save: ${(error as Error).message}`;
    }
  });
  return h('div', { class: 'save' }, choice, name, save, message);
}

export async function dashboardsPage(project: number): Promise<void> {
  const { dashboards } = await api.get<{ dashboards: Dashboard[] }>(onProject('/api/v1/dashboards', project));
  show('Dashboards', dashboards.length === 0
    ? h('p', { class: 'muted' }, 'No dashboard yet: run a report and add it to a new dashboard.')
    : h('ul', { class: 'dashboards' }, ...dashboards.map((d) => h('li', {}, h('a', { href: `#/dashboard?id=${d.id}` }, d.name), ` · ${d.tiles.length} report(s)`))));
}

export async function dashboardPage(project: number, id: string, pages: Record<string, Page>): Promise<void> {
  const dashboard = await api.get<Dashboard>(onProject(`/api/v1/dashboards/${encodeURIComponent(id)}`, project));
  const tiles = dashboard.tiles.map((tile) => ({ tile, body: h('div', { class: 'tile-body' }, h('p', { class: 'muted' }, 'Running…')) }));
  show(dashboard.name, h('p', { class: 'muted' }, 'Share this page’s link: every tile reruns on current data.'),
    h('div', { class: 'tiles' }, ...tiles.map(({ tile, body }) => h('section', { class: 'tile', 'data-testid': 'tile' },
      h('h2', {}, h('a', { href: `#/${tile.report}` }, tile.title)), body))));
  for (const { tile, body } of tiles) {
    const [page, query] = tile.report.split('?');
    const render = pages[page ?? ''];
    if (!render) {
      body.replaceChildren(status(`Unknown report ${page}`, 'error'));
      continue;
    }
    await renderInto(body, () => render(project, new URLSearchParams(query ?? '')));
  }
}
