// IoT Hub's error vocabulary, in one place (the Azurite pattern: one error factory per service).
// Every layer below the gateways throws HubError; the REST side turns it into IoT Hub's error body,
// the MQTT side into a status on the response topic.

export class HubError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HubError';
  }

  /**
   * The JSON body IoT Hub sends with an error. `Message` keeps the classic `ErrorCode:<name>;<text>`
   * form that the SDKs parse; the numeric fields are what newer API versions add beside it.
   */
  toBody(trackingId: string): Record<string, unknown> {
    const timestampUtc = new Date().toISOString();
    return {
      Message: `ErrorCode:${this.code};${this.message}`,
      ExceptionMessage: `Tracking ID:${trackingId}-TimeStamp:${timestampUtc}`,
      errorCode: this.errorCode,
      trackingId,
      message: this.message,
      timestampUtc,
    };
  }
}

export const hubErrors = {
  argumentInvalid: (m: string) => new HubError(400, 400004, 'ArgumentInvalid', m),
  argumentNull: (m: string) => new HubError(400, 400005, 'ArgumentNull', m),
  invalidProtocolVersion: (m: string) => new HubError(400, 400001, 'InvalidProtocolVersion', m),
  deviceInvalidResultCount: (m: string) => new HubError(400, 400003, 'DeviceInvalidResultCount', m),
  invalidContentType: (m: string) => new HubError(400, 400103, 'InvalidContentEncodingOrType', m),
  invalidQuery: (m: string) => new HubError(400, 400020, 'SqlQueryInvalid', m),
  twinTooLarge: (m: string) => new HubError(400, 400012, 'ArgumentInvalid', m),
  messageTooLarge: (m: string) => new HubError(413, 413001, 'MessageTooLarge', m),
  unauthorized: (m: string) => new HubError(401, 401002, 'IotHubUnauthorizedAccess', m),
  forbidden: (m: string) => new HubError(403, 403004, 'IotHubUnauthorizedAccess', m),
  activeFileUploadLimit: (m: string) => new HubError(403, 403006, 'DeviceMaximumActiveFileUploadLimitExceeded', m),
  deviceQueueFull: (m: string) => new HubError(403, 403004, 'DeviceMaximumQueueDepthExceeded', m),
  deviceNotFound: (id: string) => new HubError(404, 404001, 'DeviceNotFound', `Device ${id} not registered`),
  moduleNotFound: (deviceId: string, moduleId: string) =>
    new HubError(404, 404010, 'ModuleNotFound', `Module ${moduleId} on device ${deviceId} not registered`),
  deviceNotOnline: (id: string) => new HubError(404, 404103, 'DeviceNotOnline', `Device ${id} is not online`),
  jobNotFound: (id: string) => new HubError(404, 404002, 'JobNotFound', `Job ${id} not found.`),
  notFound: (m: string) => new HubError(404, 404000, 'NotFound', m),
  methodNotAllowed: (m: string) => new HubError(405, 405000, 'MethodNotAllowed', m),
  deviceAlreadyExists: (id: string) => new HubError(409, 409001, 'DeviceAlreadyExists', `A device with ID '${id}' is already registered.`),
  moduleAlreadyExists: (deviceId: string, moduleId: string) =>
    new HubError(
      409,
      409301,
      'ModuleAlreadyExistsOnDevice',
      `A module with ID '${moduleId}' is already registered on device '${deviceId}'.`,
    ),
  // Automatic device configurations. The names are IoT Hub's (azure-iothub's ErrorCode list); IoT Hub
  // publishes no numbers for them, so these follow its grouping (4xx, then a sequence).
  configurationNotFound: (id: string) => new HubError(404, 404301, 'ConfigurationNotFound', `Configuration '${id}' not found.`),
  configurationAlreadyExists: (id: string) =>
    new HubError(409, 409302, 'ConfigurationAlreadyExists', `A configuration with ID '${id}' already exists.`),
  invalidConfigurationTargetCondition: (m: string) => new HubError(400, 400301, 'InvalidConfigurationTargetCondition', m),
  invalidConfigurationContent: (m: string) => new HubError(400, 400302, 'InvalidConfigurationContent', m),
  cannotModifyImmutableConfigurationContent: (id: string) =>
    new HubError(
      400,
      400303,
      'CannotModifyImmutableConfigurationContent',
      `The content of configuration '${id}' cannot be changed; create a new configuration instead.`,
    ),
  invalidConfigurationCustomMetricsQuery: (m: string) => new HubError(400, 400304, 'InvalidConfigurationCustomMetricsQuery', m),
  configurationCountLimitExceeded: (limit: number) =>
    new HubError(413, 413004, 'ConfigurationCountLimitExceeded', `The hub holds its maximum of ${limit} configurations; delete one first.`),
  // IoT Hub publishes no numeric code for a job id in use; 409 is its status for a conflict.
  jobAlreadyExists: (id: string) => new HubError(409, 409000, 'JobAlreadyExists', `A job with ID '${id}' already exists.`),
  preconditionFailed: (m: string) => new HubError(412, 412002, 'PreconditionFailed', m),
  /** A cloud-to-device message settled with a lock token that has expired, or that names no locked message. */
  deviceMessageLockLost: (m: string) => new HubError(412, 412002, 'DeviceMessageLockLost', m),
  throttled: (m: string) => new HubError(429, 429001, 'ThrottlingException', m),
  tooManyActiveJobs: (m: string) => new HubError(429, 429004, 'ThrottlingMaxActiveJobCountExceeded', m),
  serverError: (m: string) => new HubError(500, 500001, 'ServerError', m),
  notImplemented: (m: string) => new HubError(501, 501000, 'NotImplemented', m),
  serviceUnavailable: (m: string) => new HubError(503, 503001, 'ServiceUnavailable', m),
  gatewayTimeout: (m: string) => new HubError(504, 504101, 'GatewayTimeout', m),
};
