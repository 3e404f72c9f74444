import type { HubConnection } from '../clients/service-clients.js';
import { createRegistry } from '../clients/service-clients.js';
import { deviceConnectionString } from '../clients/device-clients.js';
import { parseConnectionString } from '../clients/connection-string.js';
import { explain } from '../clients/sdk-errors.js';
import { ExitCode, ToolkitError } from '../clients/errors.js';

/**
 * A registered device's connection string, read from the registry with a service connection: what
 * a user would copy from the portal, for device apps started without one.
 */
export async function lookUpDeviceConnection(service: HubConnection, deviceId: string): Promise<HubConnection> {
  const { HostName } = parseConnectionString(service.connectionString, 'service');
  let identity: { authentication?: { symmetricKey?: { primaryKey?: string } } };
  try {
    identity = (await createRegistry(service).get(deviceId)).responseBody;
  } catch (err) {
    const error = explain(err, `looking up device '${deviceId}'`);
    if (error.exitCode !== ExitCode.notFound) throw error;
    throw new ToolkitError(`device '${deviceId}' is not registered: create it with 'iothub-tut create-device -d ${deviceId}'`, ExitCode.notFound);
  }
  const key = identity.authentication?.symmetricKey?.primaryKey;
  if (!key) throw new ToolkitError(`device '${deviceId}' has no symmetric key: pass its connection string with --device-connection-string`, ExitCode.usage);
  return { connectionString: deviceConnectionString(HostName, deviceId, key), transport: service.transport };
}
