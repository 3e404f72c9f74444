// The page: its header, the navigation between views (by the URL's hash, so the back button and
// links work), and the live connection to the hub.

import { post, signedOut } from './api.js';
import { connectLive, on, state, type LiveState } from './live.js';
import type { View } from './view.js';
import { devicesView } from './views/devices.js';
import { twinView } from './views/twin.js';
import { methodView } from './views/method.js';
import { telemetryView } from './views/telemetry.js';
import { cloudToDeviceView } from './views/cloud-to-device.js';
import { hubView } from './views/hub.js';

const VIEWS: Record<string, { title: string; create(params: URLSearchParams): View }> = {
  devices: { title: 'Devices', create: devicesView },
  twin: { title: 'Twin', create: twinView },
  method: { title: 'Direct method', create: methodView },
  telemetry: { title: 'Telemetry', create: telemetryView },
  c2d: { title: 'Cloud-to-device', create: cloudToDeviceView },
  hub: { title: 'Hub', create: hubView },
};

const main = document.getElementById('main')!;
let current: View | undefined;

function showView(moveFocus: boolean): void {
  const [name = '', query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const key = name in VIEWS ? name : 'devices';
  current?.dispose?.();
  current = VIEWS[key].create(new URLSearchParams(query));
  main.replaceChildren(current.element);
  document.title = `${VIEWS[key].title} · Local IoT Hub`;
  for (const link of document.querySelectorAll<HTMLAnchorElement>('nav.views a')) {
    if (link.getAttribute('href') === `#/${key}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  // After a click in the navigation, a screen reader (and the keyboard) continue in the view.
  if (moveFocus) main.focus();
}

const LIVE_TEXT: Record<LiveState, string> = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…' };

function showConnection(connection: LiveState): void {
  const pill = document.getElementById('live-status')!;
  pill.textContent = LIVE_TEXT[connection];
  pill.dataset.state = connection;
}

function setUpHeader(): void {
  const projector = document.getElementById('projector')!;
  const setProjector = (on: boolean) => {
    document.documentElement.classList.toggle('projector', on);
    projector.setAttribute('aria-pressed', String(on));
    localStorage.setItem('iothub-tut-projector', on ? '1' : '0');
  };
  setProjector(localStorage.getItem('iothub-tut-projector') === '1');
  projector.addEventListener('click', () => setProjector(projector.getAttribute('aria-pressed') !== 'true'));
  document.getElementById('sign-out')!.addEventListener('click', () => post('sign-out').finally(signedOut));
  on('connection', showConnection);
  on('hub', (overview) => {
    document.getElementById('hub-address')!.textContent = `${overview.hostName}:${overview.ports.tls}`;
  });
  showConnection(state.connection);
}

setUpHeader();
window.addEventListener('hashchange', () => showView(true));
showView(false);
connectLive();
