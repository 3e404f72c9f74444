import { hubErrors } from '../errors.js';
import type { Registry } from '../registry/registry.js';
import { etagOfConfiguration, type ConfigurationRecord } from '../configurations/configuration.js';
import { MAX_CONFIGURATIONS, type Configurations } from '../configurations/configurations.js';
import type { Route } from './router.js';

/** Automatic device configurations over HTTPS, as azure-iothub's Registry (addConfiguration, ...) calls them. */
export function configurationRoutes(configurations: Configurations, registry: Registry): Route[] {
  const withEtag = (record: ConfigurationRecord) => ({
    status: 200,
    body: configurations.toJson(record),
    headers: { ETag: `"${etagOfConfiguration(record)}"` },
  });
  return [
    {
      method: 'POST',
      path: '/configurations/testQueries',
      operation: 'Configuration_TestQueries',
      right: 'RegistryRead',
      handle: ({ body }) => ({ status: 200, body: configurations.testQueries(body) }),
    },
    {
      method: 'GET',
      path: '/configurations',
      operation: 'Configuration_GetConfigurations',
      right: 'RegistryRead',
      handle: ({ query }) => {
        const top = query.has('top') ? Number(query.get('top')) : MAX_CONFIGURATIONS;
        // IoT Hub lowers a top above its maximum to the maximum.
        if (!Number.isInteger(top) || top < 1) throw hubErrors.argumentInvalid('top must be a whole number, 1 or more');
        return { status: 200, body: configurations.list(Math.min(top, MAX_CONFIGURATIONS)).map((r) => configurations.toJson(r)) };
      },
    },
    {
      method: 'PUT',
      path: '/configurations/:id',
      operation: 'Configuration_CreateOrUpdate',
      right: 'RegistryWrite',
      handle: ({ params, headers, body }) => withEtag(configurations.createOrUpdate(params.id, body, headers['if-match'])),
    },
    {
      method: 'GET',
      path: '/configurations/:id',
      operation: 'Configuration_Get',
      right: 'RegistryRead',
      handle: ({ params }) => withEtag(configurations.get(params.id)),
    },
    {
      method: 'DELETE',
      path: '/configurations/:id',
      operation: 'Configuration_Delete',
      right: 'RegistryWrite',
      handle: ({ params, headers }) => {
        configurations.delete(params.id, headers['if-match']);
        return { status: 204 };
      },
    },
    {
      method: 'POST',
      path: '/devices/:deviceId/applyConfigurationContent',
      operation: 'Configuration_ApplyOnEdgeDevice',
      right: 'RegistryWrite',
      handle: ({ params, body }) => {
        const device = registry.get(params.deviceId);
        configurations.applyOnEdgeDevice(params.deviceId, device.capabilities.iotEdge, body);
        return { status: 200, body: {} };
      },
    },
  ];
}
