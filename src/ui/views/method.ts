// A direct method call, as azure-iothub's invokeDeviceMethod makes it: name, payload, timeouts; then
// the device's answer and its status (or IoT Hub's error: not online, timed out...).

import { HubCallError, identityPath, rest } from '../api.js';
import { field, fill, h, report, statusLine } from '../dom.js';
import { identityPicker, parseLabel } from '../identity-picker.js';
import { identityLabel } from '../live.js';
import { identityParam, type View } from '../view.js';

export function methodView(params: URLSearchParams): View {
  const picker = identityPicker({ selected: identityLabel(identityParam(params) ?? { deviceId: '' }), onChange: () => undefined });
  const name = h('input', {
    name: 'methodName',
    required: true,
    value: 'rebootDevice',
    autocomplete: 'off',
    spellcheck: 'false',
    pattern: '[^/#+?\\s]+',
  });
  const payload = h('textarea', { name: 'payload', rows: 4, spellcheck: 'false' }, '{}');
  const responseTimeout = h('input', { name: 'responseTimeout', type: 'number', min: 5, max: 300, step: 1, value: 30, required: true });
  const connectTimeout = h('input', { name: 'connectTimeout', type: 'number', min: 0, max: 300, step: 1, value: 0, required: true });
  const invoke = h('button', { type: 'submit' }, 'Invoke method');
  const line = statusLine();
  const answer = h('div', { class: 'panel answer', hidden: true, 'aria-labelledby': 'method-answer-title' });

  const form = h(
    'form',
    { class: 'panel', 'aria-labelledby': 'method-form-title' },
    h('h3', { id: 'method-form-title' }, 'Call'),
    h(
      'div',
      { class: 'grid-fields' },
      field('Device or module', picker.select),
      field('Method name', name, 'the reboot-device command answers rebootDevice'),
      field('Response timeout (s)', responseTimeout, '5 to 300: how long the hub waits for the answer'),
      field('Connect timeout (s)', connectTimeout, '0 to 300: how long it waits for the device to come online'),
    ),
    field('Payload (JSON)', payload),
    h('div', { class: 'button-row' }, invoke),
    line,
  );

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const target = parseLabel(picker.value());
    if (!target) return report(line, 'error', 'Choose a device or module first.');
    let body: unknown;
    try {
      body = JSON.parse(payload.value || 'null');
    } catch (err) {
      return report(line, 'error', `The payload is not valid JSON (${(err as Error).message}).`);
    }
    const call = {
      methodName: name.value.trim(),
      payload: body,
      responseTimeoutInSeconds: Number(responseTimeout.value),
      connectTimeoutInSeconds: Number(connectTimeout.value),
    };
    invoke.disabled = true;
    report(line, 'info', `Invoking ${call.methodName} on ${identityLabel(target)}…`);
    const started = performance.now();
    try {
      const result = (
        await rest<{ status: number; payload: unknown }>('POST', `${identityPath('twins', target.deviceId, target.moduleId)}/methods`, call)
      ).body;
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      report(line, 'ok', `${identityLabel(target)} answered ${call.methodName} in ${seconds} s.`);
      showAnswer(answer, `Status ${result.status}`, result.status >= 200 && result.status < 300 ? 'ok' : 'error', result.payload);
    } catch (err) {
      report(line, 'error', `The call failed: ${err instanceof HubCallError ? err.describe() : String(err)}`);
      answer.hidden = true;
    } finally {
      invoke.disabled = false;
    }
  });

  const element = h(
    'section',
    { class: 'view', 'aria-labelledby': 'method-title' },
    h('h2', { id: 'method-title' }, 'Direct method'),
    form,
    answer,
  );
  return { element, dispose: picker.dispose };
}

function showAnswer(panel: HTMLElement, status: string, kind: 'ok' | 'error', payload: unknown): void {
  fill(
    panel,
    h('h3', { id: 'method-answer-title' }, 'Answer'),
    h('p', { class: `answer-status ${kind}` }, status),
    h('pre', { class: 'json' }, JSON.stringify(payload, null, 2)),
  );
  panel.hidden = false;
}
