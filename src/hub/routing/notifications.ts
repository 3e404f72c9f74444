// The bodies and properties of IoT Hub's own events (its "non-telemetry events"), after Microsoft's
// "Azure IoT Hub non-telemetry event schemas": connection state, lifecycle and twin change events.

import type { HubEventSource } from '../events/event-log.js';
import { twinProperties } from '../twins/document.js';
import { isDeepStrictEqual } from 'node:util';
import { digitalTwinOf } from '../twins/digital-twin.js';
import { isJsonObject, ownValue, type JsonObject, type JsonValue } from '../twins/json.js';
import type { TwinWrite } from '../twins/twin-service.js';
import type { TwinState } from '../twins/twin-state.js';
import type { RoutingSource } from './routing-settings.js';

/** One of IoT Hub's own events about an identity, before routing. */
export interface Notification {
  source: RoutingSource & ('TwinChangeEvents' | 'DeviceLifecycleEvents' | 'DeviceConnectionStateEvents' | 'DigitalTwinChangeEvents');
  deviceId: string;
  moduleId?: string;
  opType: string;
  body: JsonValue;
  /** The device's model id, on a digital twin change. */
  modelId?: string;
}

/** `iothub-message-source`, `iothub-message-schema` and the body's content type of each source. */
export const NOTIFICATION_KINDS: Record<Notification['source'], { messageSource: HubEventSource; schema: string; contentType: string }> = {
  TwinChangeEvents: { messageSource: 'twinChangeEvents', schema: 'twinChangeNotification', contentType: 'application/json' },
  DeviceLifecycleEvents: { messageSource: 'deviceLifecycleEvents', schema: 'deviceLifecycleNotification', contentType: 'application/json' },
  DeviceConnectionStateEvents: {
    messageSource: 'deviceConnectionStateEvents',
    schema: 'deviceConnectionStateNotification',
    contentType: 'application/json',
  },
  DigitalTwinChangeEvents: {
    messageSource: 'digitalTwinChangeEvents',
    schema: 'digitalTwinChangeNotification',
    contentType: 'application/json-patch+json',
  },
};

interface Identity {
  deviceId: string;
  moduleId?: string;
}

/**
 * A lifecycle event (`createDeviceIdentity`, `deleteDeviceIdentity`, for devices and modules alike): its
 * body is the twin, with its id, etag, version, tags and properties with their metadata.
 */
export function lifecycleNotification(
  key: Identity,
  opType: 'createDeviceIdentity' | 'deleteDeviceIdentity',
  state: TwinState,
): Notification {
  return { source: 'DeviceLifecycleEvents', ...key, opType, body: twinBody(key, state) };
}

/**
 * A twin change event. An update carries the twin's new version and what the write merged, each
 * property section with the metadata of what it touched and its new `$version`; a replace carries the
 * whole twin.
 */
export function twinChangeNotification(key: Identity, write: TwinWrite, state: TwinState): Notification {
  if (write.op === 'replaceTwin') return { source: 'TwinChangeEvents', ...key, opType: 'replaceTwin', body: twinBody(key, state) };
  const properties: JsonObject = {};
  if (write.desired)
    properties.desired = { ...write.desired, $metadata: metadataOf(state.desiredMetadata, write.desired), $version: state.desiredVersion };
  if (write.reported)
    properties.reported = {
      ...write.reported,
      $metadata: metadataOf(state.reportedMetadata, write.reported),
      $version: state.reportedVersion,
    };
  const body: JsonObject = { version: state.version };
  if (write.tags) body.tags = write.tags;
  if (write.desired || write.reported) body.properties = properties;
  return { source: 'TwinChangeEvents', ...key, opType: 'updateTwin', body };
}

/**
 * A connection state event. Its sequence number orders an identity's connects and disconnects: 64 hex
 * digits that compare as strings, as IoT Hub's do (a time, then a counter).
 */
export function connectionStateNotification(key: Identity, connected: boolean, sequenceNumber: string): Notification {
  return {
    source: 'DeviceConnectionStateEvents',
    ...key,
    opType: connected ? 'deviceConnected' : 'deviceDisconnected',
    body: { sequenceNumber },
  };
}

/**
 * A digital twin change event of an IoT Plug and Play device ("Understand IoT Plug and Play digital
 * twins"): what the write changed in its digital twin, as JSON Patch; none when the write changed
 * nothing of it (a tag).
 */
export function digitalTwinChangeNotification(
  deviceId: string,
  modelId: string,
  write: TwinWrite,
  before: TwinState,
  after: TwinState,
): Notification | undefined {
  const operations = jsonPatch(digitalTwinOf(deviceId, modelId, before), digitalTwinOf(deviceId, modelId, after));
  if (operations.length === 0) return undefined;
  return { source: 'DigitalTwinChangeEvents', deviceId, opType: write.op, body: operations, modelId };
}

/**
 * The JSON Patch that turns `from` into `to`, member by member in order of name: `add` for a member
 * that is new or whose value changed (on an existing member, add replaces it), `remove` for one that
 * is gone, and the difference inside objects both hold.
 */
export function jsonPatch(from: JsonObject, to: JsonObject, path = ''): JsonObject[] {
  const operations: JsonObject[] = [];
  for (const name of [...new Set([...Object.keys(from), ...Object.keys(to)])].sort()) {
    const at = `${path}/${name.replaceAll('~', '~0').replaceAll('/', '~1')}`;
    const [was, is] = [ownValue(from, name), ownValue(to, name)];
    if (is === undefined) operations.push({ op: 'remove', path: at });
    else if (isJsonObject(was) && isJsonObject(is)) operations.push(...jsonPatch(was, is, at));
    else if (!isDeepStrictEqual(was, is)) operations.push({ op: 'add', path: at, value: is });
  }
  return operations;
}

/** The twin as these events carry it: its ids, etag, version, tags, and properties with their metadata and versions. */
function twinBody(key: Identity, state: TwinState): JsonObject {
  return {
    deviceId: key.deviceId,
    ...(key.moduleId ? { moduleId: key.moduleId } : {}),
    etag: state.etag,
    version: state.version,
    tags: state.tags,
    properties: twinProperties(state),
  };
}

/** The section's `$metadata` for what `patch` touched: the root's stamps and each patched property's metadata. */
function metadataOf(metadata: JsonObject, patch: JsonObject): JsonObject {
  const touched: JsonObject = {};
  for (const [name, value] of Object.entries(metadata)) {
    if (name.startsWith('$')) touched[name] = value;
    else if (Object.hasOwn(patch, name) && patch[name] !== null && isJsonObject(value)) touched[name] = value;
  }
  return touched;
}

/** Sequence numbers that grow with each call, also across restarts (their time part moves on). */
export function sequenceNumbers(now: () => number = Date.now): () => string {
  let counter = 0;
  return () => {
    counter = (counter + 1) % 0x1_0000_0000;
    return now().toString(16).padStart(16, '0') + counter.toString(16).padStart(8, '0') + '0'.repeat(40);
  };
}
