// The first run: an empty project shows exactly how to point each official
// Mixpanel SDK at this server, and turns live when the first event lands.

import { api, onProject, Project } from './api';
import { h, show, status } from './dom';

export function snippets(project: Project): Record<string, string> {
  const host = location.origin;
  return {
    'Browser (mixpanel-browser)': `import mixpanel from 'mixpanel-browser';\n\nmixpanel.init('${project.token}', { api_host: '${host}' });\nmixpanel.track('Signed Up', { plan: 'free' });`,
    'Python (mixpanel)': `from mixpanel import Mixpanel, Consumer\n\nbase = '${host}'\nmp = Mixpanel('${project.token}', consumer=Consumer(events_url=f'{base}/track', people_url=f'{base}/engage',\n                                           groups_url=f'{base}/groups', import_url=f'{base}/import'))\nmp.track('user-1', 'Signed Up', {'plan': 'free'})`,
    'Node (mixpanel)': `const Mixpanel = require('mixpanel');\n\nconst mp = Mixpanel.init('${project.token}', { host: '${location.host}', protocol: '${location.protocol.replace(':', '')}' });\nmp.track('Signed Up', { distinct_id: 'user-1', plan: 'free' });`,
  };
}

/** Shows the snippets; resolves once the project has its first event. */
export async function firstRun(project: Project): Promise<void> {
  const waiting = status('Waiting for the first event…');
  const blocks = Object.entries(snippets(project)).map(([name, code]) => h('section', { class: 'snippet' },
    h('h2', {}, name),
    h('pre', {}, h('code', {}, code)),
    h('button', { type: 'button', onclick: () => navigator.clipboard?.writeText(code) }, `Copy the ${name} snippet`)));
  show(`Send your first event to ${project.name}`,
    h('p', {}, 'Point an official Mixpanel SDK at this server: only its host changes. Your public project token is ', h('code', {}, project.token), '.'),
    waiting, ...blocks);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    if (!document.body.contains(waiting)) return;
    const { events } = await api.get<{ events: string[] }>(onProject('/api/v1/events/names', project.id)).catch(() => ({ events: [] as string[] }));
    if (events.length > 0) {
      waiting.textContent = `Live: “${events[0]}” arrived.`;
      waiting.classList.add('live');
      return;
    }
  }
}
