import type { IdentityRecord } from '../store/identity-store.js';
import { etagOf, type Registry } from '../registry/registry.js';
import type { Presence } from '../registry/presence.js';
import { parseIdentityInput } from '../registry/identity-input.js';
import { applyBulk } from '../registry/bulk-operations.js';
import { hubErrors } from '../errors.js';
import type { Route } from './router.js';

/** A registry record as the REST API shows a device or a module. */
export function identityJson(record: IdentityRecord): Record<string, unknown> {
  const common = {
    deviceId: record.deviceId,
    generationId: record.generationId,
    etag: etagOf(record),
    connectionState: record.connectionState,
    connectionStateUpdatedTime: record.connectionStateUpdatedTime,
    lastActivityTime: record.lastActivityTime,
    cloudToDeviceMessageCount: 0,
    authentication: authenticationJson(record),
  };
  if (record.moduleId) return { moduleId: record.moduleId, managedBy: record.managedBy ?? '', ...common };
  return {
    ...common,
    status: record.status,
    statusReason: record.statusReason,
    statusUpdatedTime: record.statusUpdatedTime,
    capabilities: record.capabilities,
    ...(record.deviceScope ? { deviceScope: record.deviceScope } : {}),
    parentScopes: record.parentScopes ?? [],
  };
}

/** IoT Hub's AuthenticationMechanism: keys for a SAS identity, thumbprints for a self-signed one, nulls for the rest. */
function authenticationJson(record: IdentityRecord) {
  const type = record.authenticationType ?? 'sas';
  return {
    symmetricKey:
      type === 'sas' ? { primaryKey: record.primaryKey, secondaryKey: record.secondaryKey } : { primaryKey: null, secondaryKey: null },
    x509Thumbprint: { primaryThumbprint: record.primaryThumbprint ?? null, secondaryThumbprint: record.secondaryThumbprint ?? null },
    type,
  };
}

function withEtag(record: IdentityRecord, status = 200) {
  return { status, body: identityJson(record), headers: { ETag: `"${etagOf(record)}"` } };
}

/** The identity registry over HTTPS, as azure-iothub's Registry calls it. */
export function registryRoutes(registry: Registry, presence: Presence): Route[] {
  return [
    {
      operation: 'Devices_GetDevices',
      method: 'GET',
      path: '/devices',
      right: 'RegistryRead',
      handle: ({ query }) => {
        const top = query.has('top') ? Number(query.get('top')) : undefined;
        if (top !== undefined && !(Number.isInteger(top) && top > 0 && top <= 1000))
          throw hubErrors.argumentInvalid('top must be between 1 and 1000');
        return { status: 200, body: registry.listDevices(top ?? 1000).map(identityJson) };
      },
    },
    {
      operation: 'BulkRegistry_UpdateRegistry',
      method: 'POST',
      path: '/devices',
      right: 'RegistryWrite',
      handle: ({ body }) => {
        const result = applyBulk(registry, body);
        return { status: result.isSuccessful ? 200 : 400, body: result };
      },
    },
    {
      operation: 'Devices_CreateOrUpdateIdentity',
      method: 'PUT',
      path: '/devices/:deviceId',
      right: 'RegistryWrite',
      handle: ({ params, headers, body }) => {
        const key = { deviceId: params.deviceId };
        return withEtag(registry.createOrUpdate(key, parseIdentityInput(body, key), headers['if-match']).record);
      },
    },
    {
      operation: 'Devices_GetIdentity',
      method: 'GET',
      path: '/devices/:deviceId',
      right: 'RegistryRead',
      handle: ({ params }) => withEtag(registry.get(params.deviceId)),
    },
    {
      operation: 'Devices_DeleteIdentity',
      method: 'DELETE',
      path: '/devices/:deviceId',
      right: 'RegistryWrite',
      handle: ({ params, headers }) => {
        registry.delete({ deviceId: params.deviceId }, headers['if-match']);
        return { status: 204 };
      },
    },
    {
      operation: 'Modules_GetModulesOnDevice',
      method: 'GET',
      path: '/devices/:deviceId/modules',
      right: 'RegistryRead',
      handle: ({ params }) => ({ status: 200, body: registry.listModules(params.deviceId).map(identityJson) }),
    },
    {
      operation: 'Modules_CreateOrUpdateIdentity',
      method: 'PUT',
      path: '/devices/:deviceId/modules/:moduleId',
      right: 'RegistryWrite',
      handle: ({ params, headers, body }) => {
        const key = { deviceId: params.deviceId, moduleId: params.moduleId };
        return withEtag(registry.createOrUpdate(key, parseIdentityInput(body, key), headers['if-match']).record);
      },
    },
    {
      operation: 'Modules_GetIdentity',
      method: 'GET',
      path: '/devices/:deviceId/modules/:moduleId',
      right: 'RegistryRead',
      handle: ({ params }) => withEtag(registry.get(params.deviceId, params.moduleId)),
    },
    {
      operation: 'Modules_DeleteIdentity',
      method: 'DELETE',
      path: '/devices/:deviceId/modules/:moduleId',
      right: 'RegistryWrite',
      handle: ({ params, headers }) => {
        registry.delete({ deviceId: params.deviceId, moduleId: params.moduleId }, headers['if-match']);
        return { status: 204 };
      },
    },
    {
      operation: 'Statistics_GetDeviceStatistics',
      method: 'GET',
      path: '/statistics/devices',
      right: 'RegistryRead',
      handle: () => {
        const devices = registry.listDevices();
        return {
          status: 200,
          body: {
            totalDeviceCount: devices.length,
            enabledDeviceCount: devices.filter((d) => d.status === 'enabled').length,
            disabledDeviceCount: devices.filter((d) => d.status === 'disabled').length,
          },
        };
      },
    },
    {
      operation: 'Statistics_GetServiceStatistics',
      method: 'GET',
      path: '/statistics/service',
      right: 'ServiceConnect',
      handle: () => ({ status: 200, body: { connectedDeviceCount: presence.connectedDeviceCount() } }),
    },
  ];
}
