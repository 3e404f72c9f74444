import type { IdentityKey, Registry } from '../registry/registry.js';
import type { Presence } from '../registry/presence.js';
import type { Twins } from '../twins/twin-service.js';
import type { TwinState } from '../twins/twin-state.js';
import type { MessageRouting } from './message-routing.js';
import {
  connectionStateNotification,
  digitalTwinChangeNotification,
  lifecycleNotification,
  sequenceNumbers,
  twinChangeNotification,
} from './notifications.js';

/**
 * Hands routing IoT Hub's own events, for the sources a route takes: identities created and deleted,
 * twins written, identities connected and disconnected. Returns what the registry's delete cascade
 * must call inside its transaction, before the twin goes: a deleted identity's lifecycle event carries
 * its twin, which is gone once the delete commits.
 */
export function routeHubEvents(routing: MessageRouting, registry: Registry, twins: Twins, presence: Presence): (key: IdentityKey) => void {
  const deletedTwins = new Map<string, TwinState>();
  if (routing.wants('DeviceLifecycleEvents')) {
    registry.on('created', (key) => {
      const state = twins.find(key);
      if (state) routing.notify(() => lifecycleNotification(key, 'createDeviceIdentity', state));
    });
    registry.on('deleted', (key) => {
      const state = deletedTwins.get(idOf(key));
      deletedTwins.delete(idOf(key));
      if (state) routing.notify(() => lifecycleNotification(key, 'deleteDeviceIdentity', state));
    });
  }
  if (routing.wants('TwinChangeEvents')) {
    twins.on('written', (key, write) => {
      const state = twins.find(key);
      if (state) routing.notify(() => twinChangeNotification(key, write, state));
    });
  }
  if (routing.wants('DigitalTwinChangeEvents')) {
    // IoT Plug and Play devices only: the digital twin is a device's, by its model.
    twins.on('written', (key, write, before) => {
      const modelId = key.moduleId ? undefined : registry.find(key.deviceId)?.modelId;
      const state = modelId && twins.find(key);
      if (modelId && state) routing.notify(() => digitalTwinChangeNotification(key.deviceId, modelId, write, before, state));
    });
  }
  if (routing.wants('DeviceConnectionStateEvents')) {
    const next = sequenceNumbers();
    presence.on('changed', (key) => routing.notify(() => connectionStateNotification(key, presence.isConnected(key), next())));
  }
  return (key) => {
    const state = routing.wants('DeviceLifecycleEvents') ? twins.find(key) : undefined;
    if (state) deletedTwins.set(idOf(key), state);
  };
}

function idOf(key: IdentityKey): string {
  return `${key.deviceId}/${key.moduleId ?? ''}`;
}
