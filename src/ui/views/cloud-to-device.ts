// Cloud-to-device messages: the hub takes them; this view does not send them yet.

import { h } from '../dom.js';
import type { View } from '../view.js';

export function cloudToDeviceView(): View {
  return {
    element: h(
      'section',
      { class: 'view', 'aria-labelledby': 'c2d-title' },
      h('h2', { id: 'c2d-title' }, 'Cloud-to-device'),
      h(
        'div',
        { class: 'panel notice', role: 'note' },
        h(
          'p',
          {},
          h('strong', {}, 'Not available yet.'),
          ' This view does not send cloud-to-device messages yet; the hub takes them from the service SDK.',
        ),
        h('p', { class: 'muted' }, 'Send one with iothub-tut send-c2d, and receive it as the device with iothub-tut receive-c2d.'),
      ),
    ),
  };
}
