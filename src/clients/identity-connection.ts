import { createRegistry, type HubConnection } from './service-clients.js';
import { deviceConnectionString, parseConnectionString } from './connection-string.js';
import { explain } from './sdk-errors.js';
import { DEFAULT_RETRY, withRetry } from './retry.js';

/**
 * The connection of a device or module, built from its primary key as the registry has it (the
 * portal's "connection string" field), reached with the same transport as the service connection.
 */
export async function identityConnection(service: HubConnection, key: { deviceId: string; moduleId?: string }): Promise<HubConnection> {
  const hostName = parseConnectionString(service.connectionString, 'service').HostName;
  const registry = createRegistry(service);
  const what = key.moduleId ? `module '${key.deviceId}/${key.moduleId}'` : `device '${key.deviceId}'`;
  try {
    const read = () => (key.moduleId ? registry.getModule(key.deviceId, key.moduleId) : registry.get(key.deviceId));
    const identity = (await withRetry(read, { ...DEFAULT_RETRY, what: `looking up ${what}` })).responseBody;
    const primaryKey = identity.authentication?.symmetricKey?.primaryKey;
    if (!primaryKey) throw new Error(`${what} has no symmetric key`);
    return { connectionString: deviceConnectionString(hostName, key.deviceId, primaryKey, key.moduleId), transport: service.transport };
  } catch (err) {
    throw explain(err, `looking up ${what}`);
  }
}
