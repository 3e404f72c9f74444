import { createRegistry } from './service-clients.js';
import { identityConnectionWithKey, type DeviceConnection, type ServiceConnection } from './connection-string.js';
import { describeIdentity, type Identity } from './identity.js';
import { explain } from './sdk-errors.js';
import { DEFAULT_RETRY, withRetry } from './retry.js';

/**
 * The connection of a device or module, built from its primary key as the registry has it (the
 * portal's "connection string" field), reached with the same transport as the service connection.
 */
export async function identityConnection(service: ServiceConnection, identity: Identity): Promise<DeviceConnection> {
  const registry = createRegistry(service);
  const what = `looking up ${describeIdentity(identity)}`;
  try {
    const read = () => (identity.moduleId ? registry.getModule(identity.deviceId, identity.moduleId) : registry.get(identity.deviceId));
    const found = (await withRetry(read, { ...DEFAULT_RETRY, what })).responseBody;
    const primaryKey = found.authentication?.symmetricKey?.primaryKey;
    if (!primaryKey) throw new Error(`${describeIdentity(identity)} has no symmetric key`);
    return identityConnectionWithKey(service, identity, primaryKey);
  } catch (err) {
    throw explain(err, what, identity);
  }
}
