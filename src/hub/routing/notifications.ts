// The bodies and properties of IoT Hub's own events (its "non-telemetry events"), after Microsoft's
// "Azure IoT Hub non-telemetry event schemas": connection state, lifecycle and twin change events.

import type { HubEventSource } from '../events/event-log.js';
import { twinProperties } from '../twins/document.js';
import { isJsonObject, type JsonObject } from '../twins/json.js';
import type { TwinWrite } from '../twins/twin-service.js';
import type { TwinState } from '../twins/twin-state.js';
import type { RoutingSource } from './routing-settings.js';

/** One of IoT Hub's own events about an identity, before routing. */
export interface Notification {
  source: RoutingSource & ('TwinChangeEvents' | 'DeviceLifecycleEvents' | 'DeviceConnectionStateEvents');
  deviceId: string;
  moduleId?: string;
  opType: string;
  body: JsonObject;
}

/** `iothub-message-source` and `iothub-message-schema` of each source. */
export const NOTIFICATION_KINDS: Record<Notification['source'], { messageSource: HubEventSource; schema: string }> = {
  TwinChangeEvents: { messageSource: 'twinChangeEvents', schema: 'twinChangeNotification' },
  DeviceLifecycleEvents: { messageSource: 'deviceLifecycleEvents', schema: 'deviceLifecycleNotification' },
  DeviceConnectionStateEvents: { messageSource: 'deviceConnectionStateEvents', schema: 'deviceConnectionStateNotification' },
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
