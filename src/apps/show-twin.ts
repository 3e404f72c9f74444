import type iothub from 'azure-iothub';
import { createRegistry } from '../clients/service-clients.js';
import type { ServiceConnection } from '../clients/connection-string.js';
import type { Identity } from '../clients/identity.js';
import { explain } from '../clients/sdk-errors.js';
import { DEFAULT_RETRY, withRetry } from '../clients/retry.js';

/** A twin as IoT Hub returns it: ids, etag, status, tags, desired and reported properties with their $metadata and $version. */
export type TwinDocument = Record<string, unknown> & {
  deviceId: string;
  etag: string;
  properties: { desired: Record<string, unknown>; reported: Record<string, unknown> };
};

/** `device twin 'd'` or `module twin 'd/m'`. */
export function twinName(identity: Identity): string {
  return identity.moduleId ? `module twin '${identity.deviceId}/${identity.moduleId}'` : `device twin '${identity.deviceId}'`;
}

/** Reads the twin of a device or module, retrying a busy hub; "not found" says how to create the identity. */
export async function readTwin(registry: iothub.Registry, identity: Identity): Promise<iothub.Twin> {
  const { deviceId, moduleId } = identity;
  const what = `reading ${twinName(identity)}`;
  try {
    const read = () => (moduleId ? registry.getModuleTwin(deviceId, moduleId) : registry.getTwin(deviceId));
    return (await withRetry(read, { ...DEFAULT_RETRY, what })).responseBody;
  } catch (err) {
    throw explain(err, what, identity);
  }
}

/** twin show: the whole twin of a device or module, as the service sees it (az iot hub device-twin show). */
export async function showTwin(connection: ServiceConnection, identity: Identity): Promise<TwinDocument> {
  const twin = await readTwin(createRegistry(connection), identity);
  return twin.toJSON() as unknown as TwinDocument;
}
