// Cloud-to-device messages: the view waits for the hub to take them.

import { h } from '../dom.js';
import type { View } from '../view.js';

export function cloudToDeviceView(): View {
  return {
    element: h('section', { class: 'view', 'aria-labelledby': 'c2d-title' },
      h('h2', { id: 'c2d-title' }, 'Cloud-to-device'),
      h('div', { class: 'panel notice', role: 'note' },
        h('p', {}, h('strong', {}, 'Not available yet.'), ' The local hub does not take cloud-to-device messages yet, so there is nothing to send them with.'),
        h('p', { class: 'muted' }, 'Direct methods (the Direct method view) and desired properties (the Twin view) reach a device today.'),
      ),
    ),
  };
}
