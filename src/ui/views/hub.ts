// The hub itself: where it listens, how long it has run, how busy it is, and what went wrong lately.

import { HubCallError, post } from '../api.js';
import { fill, formatTime, h, report, statusLine } from '../dom.js';
import { on, state, type HubOverview } from '../live.js';
import type { View } from '../view.js';

export function hubView(): View {
  const cards = h('dl', { class: 'cards' });
  const problems = h('div');
  const render = (hub: HubOverview | undefined) => {
    if (!hub) return fill(cards, h('p', { class: 'muted' }, 'Waiting for the hub…'));
    const c2dDevices = Object.keys(hub.cloudToDevice).length;
    const pieces: Array<[string, string, string]> = [
      ['Address', `${hub.hostName}:${hub.ports.tls}`, 'REST, MQTT and MQTT over WebSockets, over TLS'],
      ['Event Hub-compatible endpoint', `AMQP port ${hub.ports.eventHub}`, 'where monitor-events and @azure/event-hubs read'],
      ['Uptime', duration(hub.uptimeSeconds), `since ${formatTime(hub.startedAt)}`],
      [
        'Identities',
        `${hub.counts.devices} device${plural(hub.counts.devices)}`,
        `${hub.counts.modules} module${plural(hub.counts.modules)}`,
      ],
      [
        'Connected',
        `${hub.connections.devices}`,
        `devices and modules over MQTT; ${hub.connections.dashboardStreams} dashboard page${plural(hub.connections.dashboardStreams)} open`,
      ],
      ['Messages per second', hub.telemetry.perSecond.toFixed(1), `over the last 10 s; ${hub.telemetry.sinceStart} since the hub started`],
      ['Direct methods in flight', String(hub.methodsInFlight), 'waiting for a device to answer'],
      [
        'Cloud-to-device',
        `${queued(hub.cloudToDevice)} queued`,
        `messages for ${c2dDevices} device${plural(c2dDevices)}, waiting to be received`,
      ],
    ];
    fill(
      cards,
      ...pieces.map(([name, value, detail]) =>
        h('div', { class: 'card' }, h('dt', {}, name), h('dd', {}, h('strong', {}, value), h('span', { class: 'muted' }, detail))),
      ),
    );
    const lines = [...hub.recentProblems].reverse();
    fill(
      problems,
      lines.length === 0
        ? h('p', { class: 'muted' }, 'No warnings or errors since the hub started.')
        : h(
            'table',
            { class: 'log' },
            h('thead', {}, h('tr', {}, ...['Time', 'Level', 'Part', 'Message'].map((name) => h('th', { scope: 'col' }, name)))),
            h(
              'tbody',
              {},
              ...lines.map((line) =>
                h(
                  'tr',
                  { class: line.level },
                  h('td', {}, formatTime(line.time)),
                  h('td', {}, h('span', { class: `badge ${line.level}` }, line.level)),
                  h('td', {}, line.area),
                  h('td', {}, h('code', {}, line.message)),
                ),
              ),
            ),
          ),
    );
  };
  render(state.overview);
  const off = on('hub', render);

  const linkLine = statusLine();
  const link = h('code', { class: 'secret-value', hidden: true });
  const makeLink = h('button', { type: 'button' }, 'Link for another browser');
  makeLink.addEventListener('click', async () => {
    try {
      link.textContent = (await post<{ url: string }>('login-link')).url;
      link.hidden = false;
      report(linkLine, 'ok', "A new link: it signs in one browser, once, with this page's rights (iothubowner).");
    } catch (err) {
      report(linkLine, 'error', err instanceof HubCallError ? err.describe() : String(err));
    }
  });

  const element = h(
    'section',
    { class: 'view', 'aria-labelledby': 'hub-title' },
    h('h2', { id: 'hub-title' }, 'Hub'),
    cards,
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'problems-title' },
      h('h3', { id: 'problems-title' }, 'Recent warnings and errors'),
      problems,
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'link-title' },
      h('h3', { id: 'link-title' }, 'Sign in another browser'),
      makeLink,
      link,
      linkLine,
    ),
  );
  return { element, dispose: off };
}

function queued(depths: Record<string, number>): number {
  return Object.values(depths).reduce((sum, depth) => sum + depth, 0);
}

function plural(n: number): string {
  return n === 1 ? '' : 's';
}

function duration(seconds: number): string {
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  if (hours > 0) return `${hours} h ${minutes} min`;
  return minutes > 0 ? `${minutes} min ${seconds % 60} s` : `${seconds} s`;
}
