import { hubErrors } from '../errors.js';
import type { IdentityRecord } from '../store/identity-store.js';
import type { IdentityInput } from './identity-input.js';

/** An IoT Edge device's scope, as IoT Hub makes it: fixed for the life of that identity (its generation). */
export function edgeScope(record: Pick<IdentityRecord, 'deviceId' | 'generationId'>): string {
  return `ms-azure-iot-edge://${record.deviceId}-${record.generationId}`;
}

const SCOPE = /^ms-azure-iot-edge:\/\/(.+)-(\d+)$/;
// IoT Edge nests gateways at most five layers deep.
const MAX_DEPTH = 5;

export interface Scopes {
  /** undefined for a device without a parent, so that a cleared scope replaces the one it had. */
  deviceScope: string | undefined;
  parentScopes: string[];
}

/**
 * The scopes a device has after a write, validated as IoT Hub does: an IoT Edge device's deviceScope
 * is its own (made by the hub, never changed) and its parentScopes may name one other Edge device (a
 * nested gateway); a leaf device's deviceScope names its parent Edge device, and its parentScopes is
 * that same one scope (giving either sets both). Every scope named must be an Edge device's in this
 * hub; a device has at most one parent, and a chain of parents has no loop. `undefined` in the input
 * keeps what the device had; '' or [] clears it.
 */
export function deviceScopes(
  device: Pick<IdentityRecord, 'deviceId' | 'generationId' | 'capabilities'>,
  input: IdentityInput,
  existing: IdentityRecord | undefined,
  findDevice: (deviceId: string) => IdentityRecord | undefined,
): Scopes {
  const wasEdge = existing?.capabilities.iotEdge === true;
  if (device.capabilities.iotEdge) {
    const own = edgeScope(device);
    if (input.deviceScope && input.deviceScope !== own) {
      throw hubErrors.argumentInvalid(`The deviceScope of an IoT Edge device is its own ('${own}') and cannot be set`);
    }
    const parents = input.parentScopes ?? (wasEdge ? existing?.parentScopes : undefined) ?? [];
    checkParents(device.deviceId, parents, findDevice);
    return { deviceScope: own, parentScopes: parents };
  }
  // A leaf: deviceScope and parentScopes name the same parent; the one given decides.
  const kept = wasEdge ? [] : (existing?.parentScopes ?? []);
  const parents = input.deviceScope !== undefined ? (input.deviceScope ? [input.deviceScope] : []) : (input.parentScopes ?? kept);
  if (input.deviceScope && input.parentScopes?.length && input.parentScopes[0] !== input.deviceScope) {
    throw hubErrors.argumentInvalid("A device's deviceScope and parentScopes must name the same parent IoT Edge device");
  }
  checkParents(device.deviceId, parents, findDevice);
  return { deviceScope: parents[0], parentScopes: parents };
}

function checkParents(deviceId: string, parents: string[], findDevice: (deviceId: string) => IdentityRecord | undefined): void {
  if (parents.length > 1) throw hubErrors.argumentInvalid(`A device has at most one parent; parentScopes names ${parents.length}`);
  let scope: string | undefined = parents[0];
  for (let depth = 0; scope !== undefined; depth++) {
    const parent = edgeDevice(scope, findDevice);
    if (parent.deviceId === deviceId) throw hubErrors.argumentInvalid(`'${deviceId}' cannot be its own parent or ancestor`);
    if (depth >= MAX_DEPTH) throw hubErrors.argumentInvalid(`IoT Edge devices nest at most ${MAX_DEPTH} deep`);
    scope = parent.parentScopes?.[0];
  }
}

function edgeDevice(scope: string, findDevice: (deviceId: string) => IdentityRecord | undefined): IdentityRecord {
  const id = SCOPE.exec(scope)?.[1];
  const parent = id === undefined ? undefined : findDevice(id);
  if (!parent?.capabilities.iotEdge || parent.deviceScope !== scope) {
    throw hubErrors.argumentInvalid(
      `'${scope.slice(0, 200)}' is not the scope of an IoT Edge device in this hub (ms-azure-iot-edge://{deviceId}-{generationId})`,
    );
  }
  return parent;
}
