import { randomUUID } from 'node:crypto';
import type { Registry } from '../registry/registry.js';
import type { Twins } from '../twins/twin-service.js';
import type { DirectMethods } from '../methods/direct-methods.js';
import { parseInvocation } from '../methods/direct-methods.js';
import { desiredPatchOf, digitalTwinOf } from '../twins/digital-twin.js';
import type { Right } from '../auth/policies.js';
import type { RequestContext, Route, RouteResult } from './router.js';

const READ: Right[] = ['ServiceConnect', 'RegistryRead'];

/**
 * IoT Plug and Play's digital twin API over HTTPS, as azure-iothub's DigitalTwinClient calls it: a
 * device's twin seen as a digital twin, updated with a JSON Patch (its desired properties), and its
 * commands, which are direct methods: `{command}` at the root, `{component}*{command}` in a component.
 */
export function digitalTwinRoutes(registry: Registry, twins: Twins, methods: DirectMethods): Route[] {
  const command = async ({ params, query, body }: RequestContext): Promise<RouteResult> => {
    const methodName = params.componentName ? `${params.componentName}*${params.commandName}` : params.commandName;
    const invocation = parseInvocation({
      methodName,
      payload: body ?? null,
      responseTimeoutInSeconds: secondsParameter(query.get('responseTimeoutInSeconds')),
      connectTimeoutInSeconds: secondsParameter(query.get('connectTimeoutInSeconds')),
    });
    const result = await methods.invoke({ deviceId: params.id }, invocation);
    return {
      status: 200,
      body: result.payload,
      headers: { 'x-ms-command-statuscode': String(result.status), 'x-ms-request-id': randomUUID() },
    };
  };
  return [
    {
      method: 'GET',
      path: '/digitaltwins/:id',
      operation: 'DigitalTwin_GetDigitalTwin',
      right: READ,
      handle: ({ params }) => {
        const record = registry.get(params.id);
        const state = twins.get({ deviceId: params.id });
        return { status: 200, body: digitalTwinOf(params.id, record.modelId, state), headers: { ETag: `"${state.etag}"` } };
      },
    },
    {
      method: 'PATCH',
      path: '/digitaltwins/:id',
      operation: 'DigitalTwin_UpdateDigitalTwin',
      right: 'ServiceConnect',
      handle: ({ params, body, headers }) => {
        registry.get(params.id);
        const key = { deviceId: params.id };
        const desired = desiredPatchOf(body, twins.get(key).desired);
        const next = twins.patchFromService(key, { properties: { desired } }, headers['if-match']);
        return { status: 202, headers: { ETag: `"${next.etag}"`, Location: `/digitaltwins/${encodeURIComponent(params.id)}` } };
      },
    },
    {
      method: 'POST',
      path: '/digitaltwins/:id/commands/:commandName',
      operation: 'DigitalTwin_InvokeRootLevelCommand',
      right: 'ServiceConnect',
      handle: command,
    },
    {
      method: 'POST',
      path: '/digitaltwins/:id/components/:componentName/commands/:commandName',
      operation: 'DigitalTwin_InvokeComponentCommand',
      right: 'ServiceConnect',
      handle: command,
    },
  ];
}

/** A timeout query parameter: a number when it is one, else the text, which parseInvocation refuses with IoT Hub's 400. */
function secondsParameter(value: string | null): number | string | undefined {
  if (value === null) return undefined;
  return /^\d+$/.test(value) ? Number(value) : value;
}
