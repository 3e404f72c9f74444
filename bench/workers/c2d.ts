// Cloud-to-device messages: the service sends (azure-iothub's Client over AMQPS, as the tutorial's
// SendCloudToDeviceMessage) and the device (azure-iot-device over MQTT) receives. Both sides live in
// this one process so that one clock times the whole path.
import deviceSdk from 'azure-iot-device';
import { createDeviceClient } from '../../src/clients/device-clients.js';
import { createServiceClient } from '../../src/clients/service-clients.js';
import type { DeviceConnection, ServiceConnection } from '../../src/clients/connection-string.js';
import { arrival, measureLatency } from '../lib/latency.js';
import { nowMs } from '../lib/stats.js';
import { workerMain } from '../lib/worker-main.js';

workerMain<{ service: ServiceConnection; device: DeviceConnection; deviceId: string; count: number; inFlight: number; timeMs: number }>(
  async (config) => {
    const device = await createDeviceClient(config.device);
    const waiting = new Map<string, () => void>();
    device.on('message', (message: deviceSdk.Message) => {
      waiting.get(String(message.messageId))?.();
      void device.complete(message);
    });
    await device.open();
    const service = createServiceClient(config.service);
    await service.open();
    // The sample is send call to the device's 'message'; the next send on a lane waits for the
    // accepted disposition too, so at most `lanes` messages are queued (IoT Hub keeps 50 a device).
    const send = async (id: string): Promise<number> => {
      const start = nowMs();
      const arrived = arrival(waiting, id, start, `message ${id} not received by the device`);
      const message = new deviceSdk.Message(`{"bench":"${id}"}`);
      message.messageId = id;
      const [, ms] = await Promise.all([service.send(config.deviceId, message), arrived]);
      return ms;
    };
    await measureLatency((i) => send(`warm-${i}`), { count: 50, lanes: 1, timeMs: config.timeMs });
    const sequential = await measureLatency((i) => send(`seq-${i}`), { count: config.count, lanes: 1, timeMs: config.timeMs });
    const concurrent = await measureLatency((i) => send(`con-${i}`), {
      count: config.count,
      lanes: config.inFlight,
      timeMs: config.timeMs,
    });
    await service.close();
    await device.close();
    return { sequential, concurrent };
  },
);
