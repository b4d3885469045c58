// Live view: events as they arrive (what and where, never who), polled every
// few seconds while the page is open.

import { api, onProject } from './api';
import { h, show, status } from './dom';

interface LiveEvent { event: string; time_ms: number; properties: Record<string, unknown> }

const POLL_MS = 3000;

export async function livePage(project: number): Promise<void> {
  const message = status('Waiting for events…');
  const rows = h('tbody');
  const table = h('table', { class: 'report text', 'data-testid': 'live' },
    h('thead', {}, h('tr', {}, ...['Time (UTC)', 'Event', 'Country', 'Browser', 'OS', 'Page', 'Library'].map((t) => h('th', { scope: 'col' }, t)))), rows);
  show('Live view', h('p', { class: 'muted' }, 'The latest events of today and yesterday, newest first. Identities are not shown here.'), message, table);
  let newest = 0;
  let seen = 0;
  const text = (v: unknown) => (v === undefined || v === null ? '–' : String(v));
  while (document.body.contains(table)) {
    try {
      const { events } = await api.get<{ events: LiveEvent[] }>(onProject(`/api/v1/events/live${newest ? `?after_ms=${newest}` : ''}`, project));
      if (events.length > 0) {
        newest = Math.max(newest, ...events.map((e) => e.time_ms));
        seen += events.length;
        rows.prepend(...events.map((e) => h('tr', {},
          h('td', {}, new Date(e.time_ms).toISOString().replace('T', ' ').slice(0, 19)), h('td', {}, e.event), h('td', {}, text(e.properties.mp_country_code)),
          h('td', {}, text(e.properties.$browser)), h('td', {}, text(e.properties.$os)), h('td', {}, text(e.properties.$current_url)), h('td', {}, text(e.properties.mp_lib)))));
        while (rows.children.length > 200) rows.lastElementChild?.remove();
        message.textContent = `${seen} event(s) shown; refreshed ${new Date().toISOString().slice(11, 19)} UTC`;
      }
    } catch (error) {
      message.className = 'status error';
      message.textContent = `The live view stopped: ${(error as Error).message}. Reload the page to resume.`;
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
