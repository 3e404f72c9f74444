// Cloud-to-device messages, as the tutorial's SendCloudToDeviceMessage sends them: a device, a
// message, the feedback asked for; then each device's queue depth, live, as devices receive.

import { HubCallError, post } from '../api.js';
import { field, fill, h, report, statusLine } from '../dom.js';
import { identityPicker, parseLabel } from '../identity-picker.js';
import { identityLabel, on, state, type HubOverview } from '../live.js';
import { identityParam, type View } from '../view.js';

const ACKS = ['none', 'positive', 'negative', 'full'];

export function cloudToDeviceView(params: URLSearchParams): View {
  const picker = identityPicker({ selected: identityLabel(identityParam(params) ?? { deviceId: '' }), onChange: () => undefined });
  const message = h('textarea', { name: 'message', rows: 3, spellcheck: 'false', required: true }, 'Cloud to device message.');
  const ack = h('select', { name: 'ack' }, ...ACKS.map((value) => h('option', { value, selected: value === 'none' }, value)));
  const send = h('button', { type: 'submit' }, 'Send message');
  const line = statusLine();
  const form = h(
    'form',
    { class: 'panel', 'aria-labelledby': 'c2d-form-title' },
    h('h3', { id: 'c2d-form-title' }, 'Send'),
    h(
      'div',
      { class: 'grid-fields' },
      field('Device', picker.select, 'modules have no cloud-to-device queue'),
      field('Feedback (ack)', ack, 'what delivery feedback the service gets (send-c2d --wait-feedback prints it)'),
    ),
    field('Message', message),
    h('div', { class: 'button-row' }, send),
    line,
  );

  const queues = h('div');
  let depths: Record<string, number> = {};
  const render = () => {
    const rows = Object.entries(depths).sort(([a], [b]) => a.localeCompare(b));
    fill(
      queues,
      rows.length === 0
        ? h('p', { class: 'muted' }, 'Every queue is empty: the devices have received all their messages.')
        : h(
            'table',
            { class: 'queues' },
            h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Device'), h('th', { scope: 'col' }, 'Messages queued'))),
            h('tbody', {}, ...rows.map(([deviceId, depth]) => h('tr', {}, h('td', {}, deviceId), h('td', {}, String(depth))))),
          ),
    );
  };
  const fromHub = (hub: HubOverview | undefined) => {
    depths = { ...(hub?.cloudToDevice ?? {}) };
    render();
  };
  fromHub(state.overview);
  const off = on('hub', fromHub);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const target = parseLabel(picker.value());
    if (!target) return report(line, 'error', 'Choose a device first.');
    if (target.moduleId) return report(line, 'error', 'Modules have no cloud-to-device queue: choose a device.');
    send.disabled = true;
    try {
      const sent = await post<{ messageId: string; depth: number }>('c2d', {
        deviceId: target.deviceId,
        message: message.value,
        ack: ack.value,
      });
      depths[target.deviceId] = sent.depth;
      render();
      report(line, 'ok', `Queued message ${sent.messageId} for ${target.deviceId}; its queue holds ${sent.depth}.`);
    } catch (err) {
      report(line, 'error', `The message was not sent: ${err instanceof HubCallError ? err.describe() : String(err)}`);
    } finally {
      send.disabled = false;
    }
  });

  const element = h(
    'section',
    { class: 'view', 'aria-labelledby': 'c2d-title' },
    h('h2', { id: 'c2d-title' }, 'Cloud-to-device'),
    form,
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'c2d-queues-title' },
      h('h3', { id: 'c2d-queues-title' }, 'Device queues'),
      h('p', { class: 'muted' }, 'IoT Hub keeps at most 50 messages a device; a device receives them with iothub-tut receive-c2d.'),
      queues,
    ),
  );
  return {
    element,
    dispose: () => {
      off();
      picker.dispose();
    },
  };
}
