import { parseInvocation, type DirectMethods } from '../methods/direct-methods.js';
import type { Route } from './router.js';

/** Direct method invocation over HTTPS, as azure-iothub's Client.invokeDeviceMethod calls it. */
export function methodRoutes(methods: DirectMethods): Route[] {
  return [
    {
      operation: 'Devices_InvokeMethod',
      method: 'POST',
      path: '/twins/:deviceId/methods',
      right: 'ServiceConnect',
      handle: async ({ params, body }) => ({
        status: 200,
        body: await methods.invoke({ deviceId: params.deviceId }, parseInvocation(body)),
      }),
    },
    {
      operation: 'Modules_InvokeMethod',
      method: 'POST',
      path: '/twins/:deviceId/modules/:moduleId/methods',
      right: 'ServiceConnect',
      handle: async ({ params, body }) => ({
        status: 200,
        body: await methods.invoke({ deviceId: params.deviceId, moduleId: params.moduleId }, parseInvocation(body)),
      }),
    },
  ];
}
