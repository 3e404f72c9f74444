// A <select> of the hub's devices and modules, kept current as identities come and go.

import { h } from './dom.js';
import { identityLabel, on, state, type IdentityView } from './live.js';

export interface IdentityPicker {
  select: HTMLSelectElement;
  /** The chosen identity's label (deviceId or deviceId/moduleId), '' for "all" or none. */
  value(): string;
  dispose(): void;
}

export function identityPicker(options: { selected?: string; all?: string; onChange(label: string): void }): IdentityPicker {
  const select = h('select', { name: 'identity' });
  let chosen = options.selected ?? '';
  const render = (identities: IdentityView[]) => {
    const labels = identities.map(identityLabel);
    // An identity named in the link but not (or not yet) listed stays choosable.
    if (chosen && !labels.includes(chosen)) labels.unshift(chosen);
    const entries: Array<[string, string]> = labels.map((label) => [label, label]);
    if (options.all !== undefined) entries.unshift(['', options.all]);
    else if (!chosen) entries.unshift(['', entries.length > 0 ? 'Choose one…' : 'No devices yet']);
    const current = [...select.options].map((o) => `${o.value}\t${o.text}`).join('\n');
    if (current === entries.map(([v, t]) => `${v}\t${t}`).join('\n')) return;
    select.replaceChildren(...entries.map(([value, text]) => h('option', { value, selected: value === chosen }, text)));
  };
  select.addEventListener('change', () => {
    chosen = select.value;
    options.onChange(chosen);
  });
  render(state.devices);
  const off = on('devices', render);
  return { select, value: () => chosen, dispose: off };
}

/** The identity a picker label names. */
export function parseLabel(label: string): { deviceId: string; moduleId?: string } | undefined {
  if (!label) return undefined;
  const slash = label.indexOf('/');
  return slash < 0 ? { deviceId: label } : { deviceId: label.slice(0, slash), moduleId: label.slice(slash + 1) };
}
