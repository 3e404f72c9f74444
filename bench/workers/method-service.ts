// The service side of direct methods: azure-iothub's Client.invokeDeviceMethod over HTTPS.
import { createServiceClient } from '../../src/clients/service-clients.js';
import type { ServiceConnection } from '../../src/clients/connection-string.js';
import { measureLatency, type LatencySummary } from '../lib/latency.js';
import { workerMain } from '../lib/worker-main.js';

export interface MethodServiceConfig {
  service: ServiceConnection;
  deviceIds: string[];
  sequential: number;
  concurrent: number;
  inFlight: number;
  timeMs: number;
}

workerMain<MethodServiceConfig>(async (config) => {
  const client = createServiceClient(config.service);
  const payload = { ping: 'x'.repeat(64) };
  const invoke = async (deviceId: string) => {
    const { result } = await client.invokeDeviceMethod(deviceId, {
      methodName: 'echo',
      payload,
      responseTimeoutInSeconds: 10,
      connectTimeoutInSeconds: 10,
    });
    if ((result as { status?: number }).status !== 200) throw new Error(`status ${JSON.stringify(result)}`);
  };
  // Warm-up: every device is subscribed (connectTimeoutInSeconds waits for it) and every path is hot.
  for (const deviceId of config.deviceIds) await invoke(deviceId);
  await measureLatency(() => invoke(config.deviceIds[0]), { count: 100, lanes: 1, timeMs: config.timeMs });
  const sequential: LatencySummary = await measureLatency(() => invoke(config.deviceIds[0]), {
    count: config.sequential,
    lanes: 1,
    timeMs: config.timeMs,
  });
  const concurrent: LatencySummary = await measureLatency((i) => invoke(config.deviceIds[i % config.deviceIds.length]), {
    count: config.concurrent,
    lanes: config.inFlight,
    timeMs: config.timeMs,
  });
  return { sequential, concurrent };
});
