// The soak's SDK devices (azure-iot-device over MQTT): each answers the 'echo' direct method and
// reports every desired patch it gets back as a reported patch, until the soak stops.
import { createDeviceClient, type DeviceClient } from '../../src/clients/device-clients.js';
import type { DeviceConnection } from '../../src/clients/connection-string.js';
import { workerMain } from '../lib/worker-main.js';

workerMain<{ devices: DeviceConnection[] }>(async ({ devices }, ctx) => {
  const tally = { methods: 0, desired: 0, reported: 0, reportErrors: 0, firstError: undefined as string | undefined };
  const clients: DeviceClient[] = [];
  for (const connection of devices) {
    const client = await createDeviceClient(connection);
    await client.open();
    client.onDeviceMethod('echo', (request, response) => {
      tally.methods++;
      response.send(200, request.payload, () => {});
    });
    const twin = await client.getTwin();
    twin.on('properties.desired', (desired: { soak?: { seq?: number } }) => {
      const seq = desired.soak?.seq;
      if (seq === undefined) return;
      tally.desired++;
      twin.properties.reported.update({ soak: { seen: seq } }, (err?: Error) => {
        if (err) {
          tally.reportErrors++;
          tally.firstError ??= err.message;
        } else tally.reported++;
      });
    });
    clients.push(client);
  }
  ctx.report({ type: 'ready' });
  await new Promise((resolve) => ctx.stopping.addEventListener('abort', resolve));
  await Promise.allSettled(clients.map((c) => c.close()));
  return tally;
});
