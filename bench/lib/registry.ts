import { createRegistry } from '../../src/clients/service-clients.js';
import { parseConnection, type ServiceConnection } from '../../src/clients/connection-string.js';
import type { HubUnderTest } from './hub.js';
import { BENCH_DEVICE_KEY } from './device-auth.js';

/** The hub's iothubowner connection, with its CA and port, as the toolkit's clients take it. */
export function serviceConnection(hub: HubUnderTest): ServiceConnection {
  return parseConnection('service', hub.serviceConnectionString, { ca: hub.ca, port: hub.port });
}

/** Registers devices with the benchmark key through azure-iothub's Registry, `concurrency` requests at a time. */
export async function registerDevices(hub: HubUnderTest, deviceIds: string[], concurrency = 16, timeoutMs = 300_000): Promise<void> {
  const registry = createRegistry(serviceConnection(hub));
  const deadline = Date.now() + timeoutMs;
  let next = 0;
  const lane = async () => {
    while (next < deviceIds.length) {
      if (Date.now() > deadline) throw new Error(`registering ${deviceIds.length} devices took longer than ${timeoutMs} ms`);
      const deviceId = deviceIds[next++];
      await registry.create({
        deviceId,
        authentication: { symmetricKey: { primaryKey: BENCH_DEVICE_KEY, secondaryKey: BENCH_DEVICE_KEY } },
      } as never);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
}
