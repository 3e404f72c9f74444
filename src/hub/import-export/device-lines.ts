// The lines of devices.txt, one JSON identity per line, as IoT Hub exports and imports them
// (ExportImportDevice): registry fields, keys (or null with excludeKeysInExport), and the twin.

import { hubErrors, HubError } from '../errors.js';
import { etagOf, type Registry } from '../registry/registry.js';
import { parseIdentityInput } from '../registry/identity-input.js';
import type { IdentityRecord } from '../store/identity-store.js';
import type { TwinDocument } from '../twins/document.js';
import { isJsonObject, type JsonObject } from '../twins/json.js';
import type { Twins } from '../twins/twin-service.js';
import type { TwinKey } from '../twins/twin-state.js';

/** One identity with its twin, as a line of devices.txt. */
export function exportLine(record: IdentityRecord, twin: TwinDocument, excludeKeys: boolean): string {
  return JSON.stringify({
    id: record.deviceId,
    ...(record.moduleId ? { moduleId: record.moduleId } : {}),
    eTag: etagOf(record),
    ...(record.moduleId ? {} : { status: record.status, ...(record.statusReason !== null ? { statusReason: record.statusReason } : {}) }),
    ...(record.moduleId && record.managedBy ? { managedBy: record.managedBy } : {}),
    authentication: {
      symmetricKey: excludeKeys
        ? { primaryKey: null, secondaryKey: null }
        : { primaryKey: record.primaryKey, secondaryKey: record.secondaryKey },
      x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null },
      type: 'sas',
    },
    twinETag: twin.etag,
    tags: twin.tags ?? {},
    properties: twin.properties,
    ...(record.moduleId ? {} : { capabilities: record.capabilities }),
  });
}

const IMPORT_MODES = [
  'create',
  'createOrUpdate',
  'createOrUpdateIfMatchETag',
  'update',
  'updateIfMatchETag',
  'delete',
  'deleteIfMatchETag',
  'updateTwin',
  'updateTwinIfMatchETag',
] as const;
type ImportMode = (typeof IMPORT_MODES)[number];

/** A line IoT Hub could not read: its DeserializationError. */
export function invalidLine(line: string, why: string): HubError {
  return new HubError(400, 400012, 'DeserializationError', `Invalid device format in line: ${line.slice(0, 512)}. ${why}`);
}

/**
 * Applies one line of an import file with its importMode (createOrUpdate when absent), as IoT Hub
 * defines them: the identity through the registry (etags as If-Match), then the twin's tags and
 * desired properties when the line has them. A failure throws the HubError the REST API would answer.
 */
export function importLine(registry: Registry, twins: Twins, text: string): void {
  let line: unknown;
  try {
    line = JSON.parse(text);
  } catch {
    throw invalidLine(text, 'It is not JSON.');
  }
  if (!isJsonObject(line)) throw invalidLine(text, 'It is not a JSON object.');
  const { id, moduleId } = line;
  if (typeof id !== 'string' || !id) throw invalidLine(text, 'It has no id.');
  if (moduleId !== undefined && moduleId !== null && (typeof moduleId !== 'string' || !moduleId))
    throw invalidLine(text, 'Its moduleId is not a string.');
  const key: TwinKey = typeof moduleId === 'string' ? { deviceId: id, moduleId } : { deviceId: id };
  const mode = importMode(line.importMode, text);
  const etag = (name: 'eTag' | 'twinETag'): string => {
    const value = line[name];
    if (typeof value !== 'string' || !value) throw hubErrors.argumentInvalid(`importMode ${mode} needs ${name} (device ${id})`);
    return value;
  };
  const identity = () => parseIdentityInput({ ...line, deviceId: id, moduleId: key.moduleId, managedBy: line.managedBy }, key);
  const exists = registry.find(key.deviceId, key.moduleId) !== undefined;
  const mustExist = () => {
    if (!exists) registry.get(key.deviceId, key.moduleId); // throws DeviceNotFound / ModuleNotFound
  };

  switch (mode) {
    case 'delete':
    case 'deleteIfMatchETag':
      registry.delete(key, mode === 'delete' ? '*' : etag('eTag'));
      return;
    case 'updateTwin':
    case 'updateTwinIfMatchETag':
      mustExist();
      writeTwin(twins, key, line, mode === 'updateTwin' ? '*' : etag('twinETag'));
      return;
    case 'create':
      registry.createOrUpdate(key, identity(), undefined);
      break;
    case 'createOrUpdate':
      registry.createOrUpdate(key, identity(), '*');
      break;
    case 'createOrUpdateIfMatchETag':
      registry.createOrUpdate(key, identity(), exists ? etag('eTag') : undefined);
      break;
    case 'update':
    case 'updateIfMatchETag':
      mustExist();
      registry.createOrUpdate(key, identity(), mode === 'update' ? '*' : etag('eTag'));
      break;
  }
  writeTwin(twins, key, line, '*');
}

function importMode(value: unknown, text: string): ImportMode {
  if (value === undefined || value === null) return 'createOrUpdate';
  const mode = typeof value === 'string' ? IMPORT_MODES.find((m) => m.toLowerCase() === value.toLowerCase()) : undefined;
  if (!mode) throw invalidLine(text, `importMode must be one of ${IMPORT_MODES.join(', ')}.`);
  return mode;
}

/** The line's tags and desired properties replace the twin's; a section the line leaves out stays. Reported properties belong to the device. */
function writeTwin(twins: Twins, key: TwinKey, line: JsonObject, ifMatch: string): void {
  const tags = isJsonObject(line.tags) ? line.tags : undefined;
  const properties = isJsonObject(line.properties) ? line.properties : {};
  const desired = isJsonObject(properties.desired) ? properties.desired : undefined;
  if (!tags && !desired) return;
  const current = twins.get(key);
  twins.replaceFromService(key, { tags: tags ?? current.tags, properties: { desired: desired ?? current.desired } }, ifMatch);
}
