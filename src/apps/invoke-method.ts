import { createMethodInvoker } from '../clients/service-clients.js';
import type { ServiceConnection } from '../clients/connection-string.js';
import { describeIdentity, type Identity } from '../clients/identity.js';
import { explain } from '../clients/sdk-errors.js';
import { DEFAULT_RETRY, withRetry } from '../clients/retry.js';

/** Which device or module, which method, with what. */
export interface InvokeMethodOptions extends Identity {
  methodName: string;
  /** Any JSON value; absent: null. */
  payload?: unknown;
  /** Seconds IoT Hub waits for the device's answer: 5 to 300, 30 when absent. */
  responseTimeout?: number;
  /** Seconds IoT Hub waits for an offline device to connect: 0 (it must be online, when absent) to 300. */
  connectTimeout?: number;
}

/** The device's answer: its status code and payload. */
export interface MethodResult {
  status: number;
  payload: unknown;
}

/**
 * Invokes a direct method on a device or module through the hub (azure-iothub's DeviceMethod,
 * REST) and returns the device's answer. A hub that is busy or unreachable is retried; a call the
 * hub took is never sent twice. Unanswered in time is 504101 (exit 5), device offline 404103 (exit 6).
 */
export async function invokeMethod(connection: ServiceConnection, options: InvokeMethodOptions): Promise<MethodResult> {
  const { deviceId, moduleId, methodName } = options;
  const params = {
    methodName,
    payload: options.payload ?? null,
    responseTimeoutInSeconds: options.responseTimeout,
    connectTimeoutInSeconds: options.connectTimeout,
  };
  const what = `invoking ${methodName} on ${describeIdentity(options)}`;
  const invoke = createMethodInvoker(connection);
  try {
    return (await withRetry(() => invoke(deviceId, moduleId, params), { ...DEFAULT_RETRY, what })) as MethodResult;
  } catch (err) {
    throw explain(err, what, options);
  }
}
