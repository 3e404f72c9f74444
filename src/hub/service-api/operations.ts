import type { ThrottleKind } from '../throttling.js';

/**
 * IoT Hub's REST operations, named by the operation ids of its service API (those azure-iothub's
 * generated client is built from), each with the throttle it counts against ("IoT Hub quotas and
 * throttling"). Every route names its operation; throttling and the request log key off it.
 */
export const OPERATIONS = {
  Devices_GetDevices: { throttle: 'registry' },
  Devices_GetIdentity: { throttle: 'registry' },
  Devices_CreateOrUpdateIdentity: { throttle: 'registry' },
  Devices_DeleteIdentity: { throttle: 'registry' },
  BulkRegistry_UpdateRegistry: { throttle: 'registry' },
  Modules_GetModulesOnDevice: { throttle: 'registry' },
  Modules_GetIdentity: { throttle: 'registry' },
  Modules_CreateOrUpdateIdentity: { throttle: 'registry' },
  Modules_DeleteIdentity: { throttle: 'registry' },
  Statistics_GetDeviceStatistics: { throttle: 'registry' },
  Statistics_GetServiceStatistics: {},
  Devices_GetTwin: { throttle: 'twinRead' },
  Devices_UpdateTwin: { throttle: 'twinUpdate' },
  Devices_ReplaceTwin: { throttle: 'twinUpdate' },
  Modules_GetTwin: { throttle: 'twinRead' },
  Modules_UpdateTwin: { throttle: 'twinUpdate' },
  Modules_ReplaceTwin: { throttle: 'twinUpdate' },
  Query_GetTwins: { throttle: 'queries' },
  Devices_InvokeMethod: { throttle: 'methods' },
  Modules_InvokeMethod: { throttle: 'methods' },
  DigitalTwin_GetDigitalTwin: { throttle: 'twinRead' },
  DigitalTwin_UpdateDigitalTwin: { throttle: 'twinUpdate' },
  DigitalTwin_InvokeRootLevelCommand: { throttle: 'methods' },
  DigitalTwin_InvokeComponentCommand: { throttle: 'methods' },
  CloudToDeviceMessages_PurgeCloudToDeviceMessageQueue: {},
  Configuration_GetConfigurations: {},
  Configuration_Get: {},
  Configuration_CreateOrUpdate: {},
  Configuration_Delete: {},
  Configuration_TestQueries: {},
  Configuration_ApplyOnEdgeDevice: {},
  // IoT Hub's "jobs operations" throttle counts import/export and scheduled jobs alike.
  Jobs_CreateImportExportJob: { throttle: 'jobs' },
  Jobs_GetImportExportJobs: { throttle: 'jobs' },
  Jobs_GetImportExportJob: { throttle: 'jobs' },
  Jobs_CancelImportExportJob: { throttle: 'jobs' },
  Jobs_CreateScheduledJob: { throttle: 'jobs' },
  Jobs_GetScheduledJob: { throttle: 'jobs' },
  Jobs_CancelScheduledJob: { throttle: 'jobs' },
  Jobs_QueryScheduledJobs: { throttle: 'jobs' },
} as const satisfies Record<string, { throttle?: ThrottleKind }>;

export type OperationId = keyof typeof OPERATIONS;

/** The throttle an operation counts against; undefined for one IoT Hub does not throttle this way. */
export function throttleOf(operation: OperationId): ThrottleKind | undefined {
  return (OPERATIONS[operation] as { throttle?: ThrottleKind }).throttle;
}
