import type iothub from 'azure-iothub';
import { createRegistry, type HubConnection } from '../clients/service-clients.js';
import { explain } from '../clients/sdk-errors.js';
import { DEFAULT_RETRY, withRetry } from '../clients/retry.js';

/** A twin as the tutorial prints it: its etag and properties. */
export interface TwinSnapshot {
  etag: string;
  properties: { desired: Record<string, unknown>; reported: Record<string, unknown> };
}

export interface UpdateTwinOptions {
  deviceId: string;
  /** Absent: the device's own twin. */
  moduleId?: string;
  desired: Record<string, unknown>;
}

function snapshot(twin: iothub.Twin): TwinSnapshot {
  return { etag: twin.etag, properties: twin.properties as TwinSnapshot['properties'] };
}

/**
 * UpdateModuleTwinDesiredProperties: reads the module twin, then patches its desired properties
 * with the etag it read, so a change made in between is refused (412) instead of overwritten.
 */
export async function updateModuleTwin(connection: HubConnection, options: UpdateTwinOptions): Promise<{ before: TwinSnapshot; after: TwinSnapshot }> {
  const { deviceId, moduleId } = options;
  const what = moduleId ? `module twin '${deviceId}/${moduleId}'` : `device twin '${deviceId}'`;
  const registry = createRegistry(connection);
  let before: iothub.Twin;
  try {
    const read = () => (moduleId ? registry.getModuleTwin(deviceId, moduleId) : registry.getTwin(deviceId));
    before = (await withRetry(read, { ...DEFAULT_RETRY, what: `reading ${what}` })).responseBody;
  } catch (err) {
    throw explain(err, `reading ${what}`);
  }
  const patch = { properties: { desired: options.desired } };
  try {
    // Guarded by the etag, a retried patch cannot overwrite a change made in between.
    const update = () => (moduleId ? registry.updateModuleTwin(deviceId, moduleId, patch, before.etag) : registry.updateTwin(deviceId, patch, before.etag));
    const after = await withRetry(update, { ...DEFAULT_RETRY, what: `updating ${what}` });
    return { before: snapshot(before), after: snapshot(after.responseBody) };
  } catch (err) {
    throw explain(err, `updating ${what}`);
  }
}
