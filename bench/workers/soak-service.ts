// The soak's service side (azure-iothub over HTTPS): direct-method calls and desired-property patches
// on the soak's SDK devices, each at a steady rate (one call in flight per kind), for the duration.
import { createRegistry, createServiceClient } from '../../src/clients/service-clients.js';
import type { ServiceConnection } from '../../src/clients/connection-string.js';
import { measureLatency } from '../lib/latency.js';
import { nowMs } from '../lib/stats.js';
import { workerMain } from '../lib/worker-main.js';

workerMain<{ service: ServiceConnection; deviceIds: string[]; perSecond: number; durationMs: number }>(async (config) => {
  const client = createServiceClient(config.service);
  const registry = createRegistry(config.service);
  const payload = { ping: 'x'.repeat(64) };
  // Each call timed alone; the pause that keeps the rate comes after.
  const paced =
    (call: (i: number) => Promise<void>) =>
    async (i: number): Promise<number> => {
      const start = nowMs();
      await call(i);
      const ms = nowMs() - start;
      const wait = 1000 / config.perSecond - ms;
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      return ms;
    };
  const device = (i: number) => config.deviceIds[i % config.deviceIds.length]!;
  const invoke = async (i: number) => {
    const { result } = await client.invokeDeviceMethod(device(i), {
      methodName: 'echo',
      payload,
      responseTimeoutInSeconds: 10,
      connectTimeoutInSeconds: 10,
    });
    if ((result as { status?: number }).status !== 200) throw new Error(`status ${JSON.stringify(result)}`);
  };
  const patch = async (i: number) => {
    await registry.updateTwin(device(i), { properties: { desired: { soak: { seq: i } } } }, '*');
  };
  const bound = { count: Number.MAX_SAFE_INTEGER, lanes: 1, timeMs: config.durationMs };
  const [methods, patches] = await Promise.all([measureLatency(paced(invoke), bound), measureLatency(paced(patch), bound)]);
  return { methods, patches };
});
