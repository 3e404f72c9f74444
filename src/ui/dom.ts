// Building DOM nodes without innerHTML: device ids, message bodies and property values come from
// devices, so every text goes in as a text node and can never become markup.

export type Child = Node | string | number | null | undefined | false;
export type Attributes = Record<string, string | number | boolean | null | undefined | ((event: Event) => void)>;

function apply(element: Element, attributes: Attributes, children: Child[]): void {
  for (const [name, value] of Object.entries(attributes)) {
    if (typeof value === 'function') element.addEventListener(name.slice(2).toLowerCase(), value);
    else if (value === true) element.setAttribute(name, '');
    else if (value !== false && value !== null && value !== undefined) element.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === 'object' ? child : String(child));
  }
}

/** An HTML element; attributes named on... are event listeners. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  apply(element, attributes, children);
  return element;
}

/** An SVG element. */
export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): SVGElementTagNameMap[K] {
  const element = document.createElementNS('http://www.w3.org/2000/svg', tag);
  apply(element, attributes, children);
  return element;
}

/** Replaces an element's children. */
export function fill(element: Element, ...children: Child[]): void {
  element.replaceChildren();
  apply(element, {}, children);
}

/** A time as the page shows it: local time of day, with the date when it is not today; '—' for IoT Hub's "never". */
export function formatTime(iso: string | undefined): string {
  if (!iso || iso.startsWith('0001-')) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const time = date.toLocaleTimeString(undefined, { hour12: false });
  return date.toDateString() === new Date().toDateString() ? time : `${date.toLocaleDateString()} ${time}`;
}

/** A labelled form field: the label wraps its control, so it is named for assistive technology. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLLabelElement {
  return h('label', { class: 'field' }, h('span', { class: 'label' }, label), control, hint ? h('span', { class: 'hint' }, hint) : null);
}

/** A polite live region for the outcome of an action. */
export function statusLine(): HTMLParagraphElement {
  return h('p', { class: 'status-line', role: 'status', 'aria-live': 'polite' });
}

/** Shows an outcome in a status line: 'ok' or 'error' styles it (and errors are announced assertively). */
export function report(line: HTMLElement, kind: 'ok' | 'error' | 'info', text: string): void {
  line.className = `status-line ${kind}`;
  line.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  line.textContent = text;
}
