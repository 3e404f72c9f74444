// Devices and modules: the registry with live connection states; create, disable, delete; a
// connection string on request (masked until shown).

import { HubCallError, identityPath, post, rest } from '../api.js';
import { field, fill, formatTime, h, report, statusLine } from '../dom.js';
import { identityLabel, on, state, type IdentityView } from '../live.js';
import { viewLink, type View } from '../view.js';

const MASK = '••••••••••••••••';

export function devicesView(): View {
  const message = statusLine();
  const secret = connectionStringPanel();
  const rows = new Map<string, Row>();
  const tbody = h('tbody');
  const empty = h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No devices yet. Create one above, or run iothub-tut create-device.'));

  const actions: RowActions = {
    showConnectionString: (identity) => secret.open(identity),
    setStatus: (identity, status) =>
      act(message, `${status === 'disabled' ? 'Disabled' : 'Enabled'} ${identity.deviceId}.`, () =>
        rest('PUT', identityPath('devices', identity.deviceId), { deviceId: identity.deviceId, status }, { 'If-Match': '*' }),
      ),
    remove: (identity) => {
      const label = identityLabel(identity);
      const also = identity.moduleId ? '' : ' and its modules';
      if (!confirm(`Delete ${label}${also}? Its keys and twin are deleted too.`)) return;
      void act(message, `Deleted ${label}.`, () =>
        rest('DELETE', identityPath('devices', identity.deviceId, identity.moduleId), undefined, { 'If-Match': '*' }),
      );
    },
  };

  const render = (identities: IdentityView[]) => {
    const keys = identities.map(identityLabel);
    for (const [key, row] of rows) {
      if (keys.includes(key)) continue;
      row.element.remove();
      rows.delete(key);
    }
    identities.forEach((identity, i) => {
      let row = rows.get(keys[i]);
      if (!row) rows.set(keys[i], (row = createRow(identity, actions)));
      row.update(identity);
    });
    // Rows are moved only when the order changed, so that a focused button keeps its focus.
    const inOrder = [...tbody.children].filter((r) => r !== empty).map((r) => (r as HTMLElement).dataset.key);
    if (inOrder.join('\n') !== keys.join('\n')) fill(tbody, ...keys.map((key) => rows.get(key)!.element));
    if (identities.length === 0) fill(tbody, empty);
  };

  const deviceId = h('input', { name: 'deviceId', required: true, autocomplete: 'off', spellcheck: 'false', maxlength: 128 });
  const moduleId = h('input', { name: 'moduleId', autocomplete: 'off', spellcheck: 'false', maxlength: 128 });
  const form = h(
    'form',
    { class: 'inline-form', 'aria-label': 'Create a device or module' },
    field('Device ID', deviceId),
    field('Module ID (optional)', moduleId),
    h('button', { type: 'submit' }, 'Create'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const identity = { deviceId: deviceId.value.trim(), ...(moduleId.value.trim() ? { moduleId: moduleId.value.trim() } : {}) };
    void act(message, `Created ${identityLabel(identity)}.`, async () => {
      await rest('PUT', identityPath('devices', identity.deviceId, identity.moduleId), identity);
      form.reset();
    });
  });

  render(state.devices);
  const off = on('devices', render);
  const element = h(
    'section',
    { class: 'view', 'aria-labelledby': 'devices-title' },
    h('h2', { id: 'devices-title' }, 'Devices and modules'),
    form,
    message,
    h(
      'div',
      { class: 'table-scroll' },
      h(
        'table',
        { class: 'identities' },
        h('caption', { class: 'visually-hidden' }, 'Devices, each followed by its modules. The connection state is live.'),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['Identity', 'Status', 'Connection', 'Last activity', 'Auth', 'Model ID', 'Twin', 'Actions'].map((name) =>
              h('th', { scope: 'col' }, name),
            ),
          ),
        ),
        tbody,
      ),
    ),
    secret.element,
  );
  return { element, dispose: off };
}

interface Row {
  element: HTMLTableRowElement;
  update(identity: IdentityView): void;
}

interface RowActions {
  showConnectionString(identity: IdentityView): void;
  setStatus(identity: IdentityView, status: 'enabled' | 'disabled'): Promise<void>;
  remove(identity: IdentityView): void;
}

function createRow(first: IdentityView, actions: RowActions): Row {
  let identity = first;
  const label = identityLabel(first);
  const cells = { status: h('td'), connection: h('td'), activity: h('td'), auth: h('td'), model: h('td'), twin: h('td') };
  const toggle = h('button', { type: 'button', class: 'small' });
  toggle.addEventListener('click', () => void actions.setStatus(identity, identity.status === 'disabled' ? 'enabled' : 'disabled'));
  const name = first.moduleId
    ? h('th', { scope: 'row', class: 'module' }, h('span', { class: 'muted' }, `${first.deviceId}/`), first.moduleId)
    : h('th', { scope: 'row' }, first.deviceId);
  const element = h(
    'tr',
    { 'data-key': label, class: first.moduleId ? 'module-row' : 'device-row' },
    name,
    cells.status,
    cells.connection,
    cells.activity,
    cells.auth,
    cells.model,
    cells.twin,
    h(
      'td',
      {},
      h(
        'div',
        { class: 'actions' },
        h('a', { href: viewLink('twin', first), 'aria-label': `Twin of ${label}` }, 'Twin'),
        h('a', { href: viewLink('method', first), 'aria-label': `Direct method on ${label}` }, 'Method'),
        h('a', { href: viewLink('telemetry', first), 'aria-label': `Telemetry of ${label}` }, 'Telemetry'),
        h(
          'button',
          {
            type: 'button',
            class: 'small',
            'aria-label': `Connection string of ${label}`,
            onclick: () => actions.showConnectionString(identity),
          },
          'Connection string',
        ),
        first.moduleId ? null : toggle,
        h(
          'button',
          { type: 'button', class: 'small danger', 'aria-label': `Delete ${label}`, onclick: () => actions.remove(identity) },
          'Delete',
        ),
      ),
    ),
  );
  const update = (next: IdentityView) => {
    identity = next;
    const connected = next.connectionState === 'Connected';
    fill(
      cells.status,
      next.status
        ? h('span', { class: `badge ${next.status}` }, next.status)
        : h('span', { class: 'muted', title: 'Modules have no status of their own' }, '—'),
    );
    fill(
      cells.connection,
      h('span', { class: `connection ${connected ? 'connected' : 'disconnected'}` }, connected ? 'Connected' : 'Disconnected'),
    );
    cells.activity.textContent = formatTime(next.lastActivityTime);
    cells.auth.textContent = next.authenticationType === 'sas' ? 'SAS key' : next.authenticationType;
    cells.model.textContent = next.modelId || '—';
    cells.twin.textContent = `v${next.twinVersion}`;
    toggle.textContent = next.status === 'disabled' ? 'Enable' : 'Disable';
    toggle.setAttribute('aria-label', `${next.status === 'disabled' ? 'Enable' : 'Disable'} ${label}`);
  };
  return { element, update };
}

/** Runs a call to the hub and reports its outcome in the view's status line. */
async function act(line: HTMLElement, done: string, call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
    report(line, 'ok', done);
  } catch (err) {
    report(line, 'error', err instanceof HubCallError ? err.describe() : String(err));
  }
}

/** One identity's connection string: masked until "Show", fetched from the hub only then (or on "Copy"). */
function connectionStringPanel() {
  let identity: IdentityView | undefined;
  let revealed: string | undefined;
  const title = h('h3', { id: 'secret-title' });
  const value = h('code', { class: 'secret-value' });
  const show = h('button', { type: 'button', 'aria-pressed': 'false' }, 'Show');
  const copy = h('button', { type: 'button' }, 'Copy');
  const close = h('button', { type: 'button' }, 'Close');
  const message = statusLine();
  const element = h(
    'section',
    { class: 'panel secret', hidden: true, 'aria-labelledby': 'secret-title' },
    title,
    h('p', {}, value),
    h('div', { class: 'button-row' }, show, copy, close),
    message,
    h(
      'p',
      { class: 'hint' },
      "A device app takes it as its device connection string (the iothub-tut device commands with -c). Apps other than iothub-tut also need ;GatewayHostName=localhost:<port> and the hub's CA.",
    ),
  );

  const masked = (i: IdentityView) =>
    `HostName=…;DeviceId=${i.deviceId};${i.moduleId ? `ModuleId=${i.moduleId};` : ''}SharedAccessKey=${MASK}`;
  const fetchIt = async (): Promise<string> => {
    revealed ??= (
      await post<{ connectionString: string }>('connection-string', { deviceId: identity!.deviceId, moduleId: identity!.moduleId })
    ).connectionString;
    return revealed;
  };
  const mask = () => {
    revealed = undefined;
    value.textContent = identity ? masked(identity) : '';
    show.textContent = 'Show';
    show.setAttribute('aria-pressed', 'false');
  };

  show.addEventListener('click', async () => {
    if (show.getAttribute('aria-pressed') === 'true') return mask();
    try {
      value.textContent = await fetchIt();
      show.textContent = 'Hide';
      show.setAttribute('aria-pressed', 'true');
    } catch (err) {
      report(message, 'error', err instanceof HubCallError ? err.describe() : String(err));
    }
  });
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(await fetchIt());
      report(message, 'ok', 'Copied to the clipboard.');
    } catch (err) {
      report(message, 'error', err instanceof HubCallError ? err.describe() : `Could not copy (${String(err)}): use Show, then select it.`);
    }
  });
  close.addEventListener('click', () => {
    mask();
    element.hidden = true;
  });

  return {
    element,
    open(next: IdentityView) {
      identity = next;
      title.textContent = `Connection string of ${identityLabel(next)}`;
      mask();
      fill(message);
      element.hidden = false;
      show.focus();
    },
  };
}
