// Devices on azure-iot-device (MQTT, or the transport given) that answer the 'echo' direct method with its payload.
import { createDeviceClient, type DeviceClient, type DeviceTransport } from '../../src/clients/device-clients.js';
import type { DeviceConnection } from '../../src/clients/connection-string.js';
import { workerMain } from '../lib/worker-main.js';

workerMain<{ devices: DeviceConnection[]; transport?: DeviceTransport }>(async ({ devices, transport }, ctx) => {
  const clients: DeviceClient[] = [];
  for (const connection of devices) {
    const client = await createDeviceClient(connection, transport);
    await client.open();
    client.onDeviceMethod('echo', (request, response) => response.send(200, request.payload, () => {}));
    clients.push(client);
  }
  ctx.report({ type: 'ready' });
  await new Promise((resolve) => ctx.stopping.addEventListener('abort', resolve));
  await Promise.allSettled(clients.map((c) => c.close()));
});
