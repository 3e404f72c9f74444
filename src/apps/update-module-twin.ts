import type iothub from 'azure-iothub';
import { createRegistry } from '../clients/service-clients.js';
import type { ServiceConnection } from '../clients/connection-string.js';
import type { Identity } from '../clients/identity.js';
import { explain } from '../clients/sdk-errors.js';
import { DEFAULT_RETRY, withRetry } from '../clients/retry.js';
import { readTwin, twinName } from './show-twin.js';

/** A twin as the tutorial prints it: its etag and properties. */
export interface TwinSnapshot {
  etag: string;
  properties: { desired: Record<string, unknown>; reported: Record<string, unknown> };
}

/** Whose twin (without moduleId: the device's own) and the desired properties patch. */
export interface UpdateTwinOptions extends Identity {
  desired: Record<string, unknown>;
}

function snapshot(twin: iothub.Twin): TwinSnapshot {
  return { etag: twin.etag, properties: twin.properties as TwinSnapshot['properties'] };
}

/**
 * UpdateModuleTwinDesiredProperties: reads the module twin, then patches its desired properties
 * with the etag it read, so a change made in between is refused (412) instead of overwritten.
 */
export async function updateModuleTwin(
  connection: ServiceConnection,
  options: UpdateTwinOptions,
): Promise<{ before: TwinSnapshot; after: TwinSnapshot }> {
  const { deviceId, moduleId } = options;
  const what = `updating ${twinName(options)}`;
  const registry = createRegistry(connection);
  const before = await readTwin(registry, options);
  const patch = { properties: { desired: options.desired } };
  try {
    // Guarded by the etag, a retried patch cannot overwrite a change made in between.
    const update = () =>
      moduleId ? registry.updateModuleTwin(deviceId, moduleId, patch, before.etag) : registry.updateTwin(deviceId, patch, before.etag);
    const after = await withRetry(update, { ...DEFAULT_RETRY, what });
    return { before: snapshot(before), after: snapshot(after.responseBody) };
  } catch (err) {
    throw explain(err, what, options);
  }
}
