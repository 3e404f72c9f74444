// The device-to-cloud stream as the hub's event log has it: body, application and system properties,
// enqueued time; filtered by device and by text, pausable, with a live chart of its numeric fields.

import { field, fill, formatTime, h } from '../dom.js';
import { lineChart, type Series } from '../chart.js';
import { identityPicker } from '../identity-picker.js';
import { identityLabel, messageKey, on, state, type TelemetryMessage } from '../live.js';
import { identityParam, type View } from '../view.js';

/** Messages listed (newest first) and charted, of those that pass the filters. */
const LISTED = 100;
const CHARTED = 300;
const MAX_SERIES = 8;

export function telemetryView(params: URLSearchParams): View {
  const linked = identityParam(params);
  let device = linked ? identityLabel(linked) : '';
  let text = '';
  /** While paused, the page shows this copy and counts what arrives meanwhile. */
  let frozen: TelemetryMessage[] | undefined;
  let waiting = 0;
  const hiddenFields = new Set<string>();

  const picker = identityPicker({
    selected: device,
    all: 'All devices',
    onChange: (label) => {
      device = label;
      render();
    },
  });
  const filter = h('input', {
    type: 'search',
    name: 'filter',
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: 'text in the body or properties',
  });
  filter.addEventListener('input', () => {
    text = filter.value.trim().toLowerCase();
    render();
  });
  const pause = h('button', { type: 'button', 'aria-pressed': 'false' }, 'Pause');
  const counts = h('p', { class: 'counts', role: 'status', 'aria-live': 'polite' });
  const fields = h('fieldset', { class: 'fields' });
  const chart = h('div', { class: 'chart-area' });
  const list = h('ol', { class: 'stream', 'aria-label': 'Messages, newest first' });

  pause.addEventListener('click', () => {
    frozen = frozen ? undefined : [...state.messages];
    waiting = 0;
    pause.textContent = frozen ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(!!frozen));
    render();
  });

  // A device shows its own messages and its modules'; a module, its own.
  const matches = (m: TelemetryMessage) =>
    (!device || (device.includes('/') ? identityLabel(m) === device : m.deviceId === device)) && (!text || searchText(m).includes(text));

  const render = () => {
    const shown = (frozen ?? state.messages).filter(matches);
    const newest = shown.slice(-LISTED).reverse();
    fill(
      list,
      ...(newest.length
        ? newest.map(messageItem)
        : [h('li', { class: 'empty' }, 'No messages yet. Run iothub-tut send-telemetry in another terminal.')]),
    );
    const series = numericSeries(shown.slice(-CHARTED), !device);
    renderFieldChoices(fields, [...new Set(series.map((s) => s.field))], hiddenFields, render);
    fill(
      chart,
      lineChart(series.filter((s) => !hiddenFields.has(s.field)).slice(0, MAX_SERIES), 'Numeric fields of the messages over time'),
    );
    const status = frozen ? `Paused: ${waiting} new message${waiting === 1 ? '' : 's'} waiting.` : 'Live.';
    counts.textContent = `${shown.length} message${shown.length === 1 ? '' : 's'} shown. ${status}`;
  };

  // A burst of messages is drawn once per frame.
  let frame: number | undefined;
  const off = on('telemetry', (messages) => {
    if (frozen) {
      waiting += messages.filter(matches).length;
      counts.textContent = `${frozen.filter(matches).length} messages shown. Paused: ${waiting} new message${waiting === 1 ? '' : 's'} waiting.`;
      return;
    }
    frame ??= requestAnimationFrame(() => {
      frame = undefined;
      render();
    });
  });
  render();

  const element = h(
    'section',
    { class: 'view', 'aria-labelledby': 'telemetry-title' },
    h('h2', { id: 'telemetry-title' }, 'Telemetry'),
    h('div', { class: 'inline-form toolbar' }, field('Device', picker.select), field('Filter', filter), pause),
    counts,
    h(
      'div',
      { class: 'telemetry-body' },
      h('figure', { class: 'panel' }, h('figcaption', {}, h('h3', {}, 'Numeric fields over time')), fields, chart),
      h('section', { class: 'stream-box', 'aria-labelledby': 'stream-title' }, h('h3', { id: 'stream-title' }, 'Messages'), list),
    ),
  );
  return {
    element,
    dispose: () => {
      off();
      picker.dispose();
      if (frame !== undefined) cancelAnimationFrame(frame);
    },
  };
}

function searchText(m: TelemetryMessage): string {
  return [identityLabel(m), m.body.text ?? '', JSON.stringify(m.properties), JSON.stringify(m.systemProperties)].join('\n').toLowerCase();
}

function messageItem(m: TelemetryMessage): HTMLLIElement {
  const body = m.body.json !== undefined ? JSON.stringify(m.body.json, null, 2) : (m.body.text ?? `(binary, base64) ${m.body.base64}`);
  const application = Object.entries(m.properties);
  const system = Object.entries(m.systemProperties);
  return h(
    'li',
    { class: 'message', 'data-key': messageKey(m) },
    h(
      'div',
      { class: 'message-head' },
      h('time', { datetime: m.enqueuedTime }, formatTime(m.enqueuedTime)),
      h('strong', {}, identityLabel(m)),
      h(
        'span',
        { class: 'muted' },
        `#${m.sequenceNumber} in partition ${m.partition} · ${m.body.bytes} bytes${m.body.truncated ? ' (shown in part)' : ''}`,
      ),
    ),
    h('pre', { class: 'json body' }, body),
    application.length
      ? h(
          'ul',
          { class: 'chips', 'aria-label': 'Application properties' },
          ...application.map(([k, v]) => h('li', {}, h('code', {}, `${k}=${v}`))),
        )
      : null,
    h('details', {}, h('summary', {}, `System properties (${system.length})`), propertyList(system)),
  );
}

function propertyList(entries: Array<[string, string]>): HTMLDListElement {
  return h('dl', { class: 'properties-list' }, ...entries.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, h('code', {}, v))]));
}

/** One series per identity and numeric field of the JSON bodies (nested fields as a.b). */
function numericSeries(messages: TelemetryMessage[], byDevice: boolean): Array<Series & { field: string }> {
  const series = new Map<string, Series & { field: string }>();
  for (const m of messages) {
    const time = Date.parse(m.enqueuedTime);
    for (const [name, value] of numericFields(m.body.json)) {
      const key = `${identityLabel(m)}\n${name}`;
      let s = series.get(key);
      if (!s) series.set(key, (s = { name: byDevice ? `${identityLabel(m)} ${name}` : name, field: name, points: [] }));
      s.points.push([time, value]);
    }
  }
  return [...series.values()];
}

function numericFields(json: unknown, prefix = '', depth = 0): Array<[string, number]> {
  if (typeof json !== 'object' || json === null || Array.isArray(json) || depth > 2) return [];
  return Object.entries(json).flatMap(([key, value]): Array<[string, number]> => {
    const name = prefix ? `${prefix}.${key}` : key;
    if (typeof value === 'number' && Number.isFinite(value)) return [[name, value]];
    return numericFields(value, name, depth + 1);
  });
}

/** A checkbox per numeric field: which ones the chart draws. */
function renderFieldChoices(fieldset: HTMLFieldSetElement, names: string[], hidden: Set<string>, changed: () => void): void {
  const current = [...fieldset.querySelectorAll('input')].map((input) => input.value).join('\n');
  if (current === names.join('\n')) return;
  fill(
    fieldset,
    h('legend', {}, names.length ? 'Fields on the chart' : 'No numeric fields yet'),
    ...names.map((name) => {
      const box = h('input', { type: 'checkbox', value: name, checked: !hidden.has(name) });
      box.addEventListener('change', () => {
        if (box.checked) hidden.delete(name);
        else hidden.add(name);
        changed();
      });
      return h('label', { class: 'check' }, box, name);
    }),
  );
}
