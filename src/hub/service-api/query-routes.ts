import { executeQuery, type QuerySource } from '../query/index.js';
import { parseQuery } from '../query/parser.js';
import { hubErrors } from '../errors.js';
import type { Registry } from '../registry/registry.js';
import type { Twins } from '../twins/twin-service.js';
import type { TwinKey } from '../twins/twin-state.js';
import type { ScheduledJobs } from '../jobs/scheduled-jobs.js';
import { twinIdentity } from './twin-routes.js';
import type { Route } from './router.js';

/**
 * The twins as the query language reads them: every device twin, or every module twin, as a document;
 * and every device's part of the scheduled jobs (`devices.jobs`), where there are jobs.
 */
export function twinQuerySource(registry: Registry, twins: Twins, jobs?: () => ScheduledJobs): QuerySource {
  const identityOf = (key: TwinKey) => twinIdentity(registry.get(key.deviceId, key.moduleId));
  // The twins' documents are plain JSON objects; the query side reads them as records.
  type Documents = ReturnType<QuerySource['devices']>;
  return {
    devices: () => twins.allDocuments('devices', identityOf) as unknown as Documents,
    modules: () => twins.allDocuments('modules', identityOf) as unknown as Documents,
    jobs: () => (jobs?.().deviceJobs() ?? []) as unknown as Documents,
  };
}

/** Twin and device job queries over HTTPS, as azure-iothub's Registry.createQuery pages through them. */
export function queryRoutes(source: QuerySource): Route[] {
  return [
    {
      operation: 'Query_GetTwins',
      method: 'POST',
      path: '/devices/query',
      right: ['RegistryRead', 'ServiceConnect'],
      handle: ({ headers, body }) => {
        const text = (body as { query?: unknown } | undefined)?.query;
        if (typeof text !== 'string' || !text.trim()) throw hubErrors.argumentInvalid('The body must be {"query": "<query text>"}');
        const maxItems = headers['x-ms-max-item-count'];
        const continuation = headers['x-ms-continuation'];
        const ast = parseQuery(text);
        const page = executeQuery(text, source, {
          pageSize: maxItems === undefined ? undefined : Number(maxItems),
          continuationToken: typeof continuation === 'string' ? continuation : undefined,
        });
        return {
          status: 200,
          body: page.items,
          headers: {
            // Whole twins for SELECT *, rows otherwise: what IoT Hub tells clients to deserialize.
            'x-ms-item-type': ast.from === 'devices.jobs' ? 'DeviceJob' : ast.select ? 'Raw' : 'Twin',
            ...(page.continuationToken ? { 'x-ms-continuation': page.continuationToken } : {}),
          },
        };
      },
    },
  ];
}
