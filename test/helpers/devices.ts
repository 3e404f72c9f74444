import { createRegistry } from '../../src/clients/service-clients.js';
import { createDeviceClient, type DeviceClient, type DeviceTransport } from '../../src/clients/device-clients.js';
import { identityConnectionWithKey, type DeviceConnection } from '../../src/clients/connection-string.js';
import type { TestHub } from './hub.js';

/** Registers a device (and a module on it, when given) and returns its connection, with the hub's transport. */
export async function registerIdentity(t: TestHub, deviceId: string, moduleId?: string): Promise<DeviceConnection> {
  const registry = createRegistry(t.connection);
  let identity: any = (await registry.create({ deviceId })).responseBody;
  if (moduleId) identity = (await registry.addModule({ deviceId, moduleId })).responseBody;
  const key = identity.authentication.symmetricKey.primaryKey;
  return identityConnectionWithKey(t.connection, { deviceId, moduleId }, key);
}

/** An opened azure-iot-device client for a registered identity. */
export async function openDevice(connection: DeviceConnection, protocol: DeviceTransport = 'mqtt'): Promise<DeviceClient> {
  const client = await createDeviceClient(connection, protocol);
  await client.open();
  return client;
}

/** Polls a condition (bounded), for state that has no event to wait on. */
export async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
