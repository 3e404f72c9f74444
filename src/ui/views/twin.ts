// A device's or module's twin: desired, reported and tags with their versions and $metadata times,
// reloaded as the hub announces each write; desired properties edited with the twin's etag, so that a
// write on top of a twin that changed since it was read is refused (412) and says so.

import { HubCallError, identityPath, rest } from '../api.js';
import { field, fill, formatTime, h, report, statusLine } from '../dom.js';
import { identityPicker, parseLabel } from '../identity-picker.js';
import { identityLabel, on } from '../live.js';
import { identityParam, viewLink, type View } from '../view.js';

type Json = Record<string, unknown>;
type Section = Json & { $metadata?: Json; $version: number };

interface TwinDocument {
  deviceId: string;
  moduleId?: string;
  etag: string;
  version: number;
  status: string;
  connectionState: string;
  lastActivityTime: string;
  modelId: string;
  tags?: Json;
  properties: { desired: Section; reported: Section };
}

export function twinView(params: URLSearchParams): View {
  const picker = identityPicker({
    selected: identityLabel(identityParam(params) ?? { deviceId: '' }),
    onChange: (label) => location.assign(viewLink('twin', parseLabel(label))),
  });
  const identity = parseLabel(picker.value());
  const heading = h('h2', { id: 'twin-title' }, 'Twin');
  const element = h(
    'section',
    { class: 'view', 'aria-labelledby': 'twin-title' },
    heading,
    h('div', { class: 'inline-form' }, field('Device or module', picker.select)),
  );
  if (!identity) {
    element.append(h('p', { class: 'empty' }, 'Choose a device or module to see its twin.'));
    return { element, dispose: picker.dispose };
  }
  heading.textContent = `Twin of ${identityLabel(identity)}`;

  const summary = h('dl', { class: 'facts' });
  const desired = h('div', { class: 'panel' });
  const reported = h('div', { class: 'panel' });
  const tags = h('div', { class: 'panel' });
  const raw = h('pre', { class: 'json' });
  const loadLine = statusLine();
  const editor = desiredEditor(identity, () => load());
  let shown: TwinDocument | undefined;

  const load = async () => {
    try {
      const twin = (await rest<TwinDocument>('GET', identityPath('twins', identity.deviceId, identity.moduleId))).body;
      shown = twin;
      fill(
        summary,
        fact('Twin version', String(twin.version)),
        fact('Etag', twin.etag),
        fact('Status', twin.status),
        fact('Connection', twin.connectionState),
        fact('Last activity', formatTime(twin.lastActivityTime)),
        fact('Model ID', twin.modelId || '—'),
      );
      fill(desired, ...sectionTable('Desired properties', twin.properties.desired, true));
      fill(reported, ...sectionTable('Reported properties', twin.properties.reported, false));
      fill(
        tags,
        h('h3', {}, 'Tags'),
        twin.tags ? h('pre', { class: 'json' }, JSON.stringify(twin.tags, null, 2)) : h('p', { class: 'muted' }, 'No tags.'),
      );
      raw.textContent = JSON.stringify(twin, null, 2);
      editor.loaded(twin);
      fill(loadLine);
    } catch (err) {
      report(loadLine, 'error', err instanceof HubCallError ? err.describe() : String(err));
    }
  };

  // Each write the hub announces for this twin is shown as it lands (one reload per burst).
  let pending: number | undefined;
  const off = on('twin', (change) => {
    if (change.deviceId !== identity.deviceId || (change.moduleId ?? '') !== (identity.moduleId ?? '')) return;
    if (shown && change.version <= shown.version) return;
    clearTimeout(pending);
    pending = window.setTimeout(load, 100);
  });
  void load();

  element.append(
    loadLine,
    summary,
    h('div', { class: 'columns' }, desired, reported),
    editor.element,
    tags,
    h('details', {}, h('summary', {}, 'The whole twin, as GET /twins returns it'), raw),
  );
  return {
    element,
    dispose: () => {
      off();
      picker.dispose();
      clearTimeout(pending);
    },
  };
}

function fact(name: string, value: string): HTMLElement {
  return h('div', {}, h('dt', {}, name), h('dd', {}, value));
}

/** A section's values, one row per leaf, with $metadata's time (and, for desired, version) of each. */
function sectionTable(title: string, section: Section, desired: boolean): HTMLElement[] {
  const rows = leaves(section, section.$metadata);
  const updated = (section.$metadata as { $lastUpdated?: string } | undefined)?.$lastUpdated;
  const head = ['Property', 'Value', 'Last updated', ...(desired ? ['In version'] : [])];
  return [
    h('h3', {}, `${title} `, h('span', { class: 'version' }, `$version ${section.$version}`)),
    h('p', { class: 'muted' }, `Last updated ${formatTime(updated)}`),
    rows.length === 0
      ? h('p', { class: 'muted' }, 'None yet.')
      : h(
          'table',
          { class: 'properties' },
          h('thead', {}, h('tr', {}, ...head.map((name) => h('th', { scope: 'col' }, name)))),
          h(
            'tbody',
            {},
            ...rows.map((row) =>
              h(
                'tr',
                {},
                h('th', { scope: 'row' }, h('code', {}, row.path)),
                h('td', {}, h('code', {}, row.value)),
                h('td', {}, formatTime(row.lastUpdated)),
                desired ? h('td', {}, row.lastUpdatedVersion === undefined ? '—' : String(row.lastUpdatedVersion)) : null,
              ),
            ),
          ),
        ),
  ];
}

interface Leaf {
  path: string;
  value: string;
  lastUpdated?: string;
  lastUpdatedVersion?: number;
}

function leaves(section: Json, metadata: Json | undefined, prefix = ''): Leaf[] {
  return Object.keys(section)
    .filter((key) => !key.startsWith('$'))
    .flatMap((key): Leaf[] => {
      const value = section[key];
      const meta = metadata?.[key] as (Json & { $lastUpdated?: string; $lastUpdatedVersion?: number }) | undefined;
      const path = prefix ? `${prefix}.${key}` : key;
      if (isObject(value) && Object.keys(value).length > 0) return leaves(value, meta, path);
      return [{ path, value: JSON.stringify(value), lastUpdated: meta?.$lastUpdated, lastUpdatedVersion: meta?.$lastUpdatedVersion }];
    });
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The desired-properties editor. It writes with If-Match: the etag of the twin as it was when the
 * user began editing. A twin that changes while the editor is untouched moves the etag along; once
 * the user has typed, it stays, and the page says that applying will be refused.
 */
function desiredEditor(identity: { deviceId: string; moduleId?: string }, reload: () => Promise<void>) {
  const text = h('textarea', { name: 'desired', rows: 6, spellcheck: 'false', 'aria-describedby': 'desired-hint desired-etag' });
  const etagLine = h('p', { id: 'desired-etag', class: 'hint' });
  const stale = h('p', { class: 'status-line info', hidden: true });
  const result = statusLine();
  const apply = h('button', { type: 'submit' }, 'Apply patch');
  const reloadButton = h('button', { type: 'button' }, 'Reload twin');
  const form = h(
    'form',
    { class: 'panel editor', 'aria-labelledby': 'desired-editor-title' },
    h('h3', { id: 'desired-editor-title' }, 'Update desired properties'),
    field('Patch of properties.desired (JSON)', text),
    h(
      'p',
      { id: 'desired-hint', class: 'hint' },
      'A JSON merge patch: the keys given are set, a key set to null is removed. The device gets it as a desired-properties patch.',
    ),
    etagLine,
    stale,
    h('div', { class: 'button-row' }, apply, reloadButton),
    result,
  );
  let editEtag = '';
  let editVersion = 0;
  let dirty = false;
  text.addEventListener('input', () => (dirty = true));

  const describeEtag = () => (etagLine.textContent = `Sent with If-Match: "${editEtag}" (the twin at version ${editVersion}).`);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    let patch: unknown;
    try {
      patch = JSON.parse(text.value);
    } catch (err) {
      return report(result, 'error', `Not applied: the patch is not valid JSON (${(err as Error).message}).`);
    }
    if (!isObject(patch)) return report(result, 'error', 'Not applied: the patch must be a JSON object, like {"telemetryInterval": 122}.');
    try {
      const path = identityPath('twins', identity.deviceId, identity.moduleId);
      const twin = (await rest<TwinDocument>('PATCH', path, { properties: { desired: patch } }, { 'If-Match': `"${editEtag}"` })).body;
      dirty = false;
      editEtag = twin.etag;
      editVersion = twin.version;
      describeEtag();
      report(result, 'ok', `Applied: desired $version ${twin.properties.desired.$version}, twin version ${twin.version}.`);
    } catch (err) {
      if (err instanceof HubCallError && err.status === 412) {
        return report(
          result,
          'error',
          `Not applied: the twin changed since it was read at version ${editVersion} (412 PreconditionFailed). ` +
            'Reload the twin to see what changed; your patch stays here to apply again.',
        );
      }
      report(result, 'error', `Not applied: ${err instanceof HubCallError ? err.describe() : String(err)}`);
    }
  });
  reloadButton.addEventListener('click', () => {
    dirty = false;
    fill(result);
    void reload();
  });

  return {
    element: form,
    /** A twin was (re)loaded: an untouched editor follows it; an edited one keeps the etag it began with. */
    loaded(twin: TwinDocument) {
      if (!dirty) {
        editEtag = twin.etag;
        editVersion = twin.version;
        const { $metadata: _metadata, $version: _version, ...values } = twin.properties.desired;
        if (text.value.trim() === '' || document.activeElement !== text) text.value = JSON.stringify(values, null, 2);
        describeEtag();
      }
      stale.hidden = twin.etag === editEtag;
      stale.textContent = `The twin changed (now version ${twin.version}) since you began editing at version ${editVersion}: applying will be refused with 412 unless you reload first.`;
    },
  };
}
