import type { DeviceQueues } from '../cloud-to-device/device-queues.js';
import type { Route } from './router.js';

/** A device's cloud-to-device queue over HTTPS: the purge (PurgeMessageQueueResult, as IoT Hub answers it). */
export function c2dRoutes(queues: DeviceQueues): Route[] {
  return [
    {
      operation: 'CloudToDeviceMessages_PurgeCloudToDeviceMessageQueue',
      method: 'DELETE',
      path: '/devices/:deviceId/commands',
      right: 'ServiceConnect',
      handle: ({ params }) => ({
        status: 200,
        body: { totalMessagesPurged: queues.purge(params.deviceId), deviceId: params.deviceId, moduleId: null },
      }),
    },
  ];
}
