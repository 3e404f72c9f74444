// Desired-property propagation: the service patches the twin (azure-iothub Registry.updateTwin over
// HTTPS) and the device (azure-iot-device over MQTT) gets 'properties.desired'. Both sides live in
// this one process so that one clock times the whole path.
import { createDeviceClient } from '../../src/clients/device-clients.js';
import { createRegistry } from '../../src/clients/service-clients.js';
import type { DeviceConnection, ServiceConnection } from '../../src/clients/connection-string.js';
import { arrival, measureLatency } from '../lib/latency.js';
import { nowMs } from '../lib/stats.js';
import { workerMain } from '../lib/worker-main.js';

workerMain<{ service: ServiceConnection; device: DeviceConnection; deviceId: string; count: number; timeMs: number }>(async (config) => {
  const device = await createDeviceClient(config.device);
  await device.open();
  const twin = await device.getTwin();
  const waiting = new Map<number, () => void>();
  twin.on('properties.desired', (desired: { bench?: { seq?: number } }) => {
    const seq = desired.bench?.seq;
    if (seq !== undefined) waiting.get(seq)?.();
  });
  const registry = createRegistry(config.service);
  // The sample is patch call to device callback; the next patch waits for the HTTP answer too.
  const patch = async (seq: number): Promise<number> => {
    const start = nowMs();
    const arrived = arrival(waiting, seq, start, `patch ${seq} not seen by the device`);
    const [, ms] = await Promise.all([registry.updateTwin(config.deviceId, { properties: { desired: { bench: { seq } } } }, '*'), arrived]);
    return ms;
  };
  await measureLatency((i) => patch(i), { count: 50, lanes: 1, timeMs: config.timeMs });
  const result = await measureLatency((i) => patch(1000 + i), { count: config.count, lanes: 1, timeMs: config.timeMs });
  await device.close();
  return result;
});
