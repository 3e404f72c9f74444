import type { HubConnection } from '../clients/service-clients.js';
import { createRegistry, createServiceClient } from '../clients/service-clients.js';
import { explain } from '../clients/sdk-errors.js';
import { ExitCode, ToolkitError } from '../clients/errors.js';
import { DEFAULT_RETRY, withRetry } from '../clients/retry.js';
import { REBOOT_METHOD } from './reboot-device.js';

export interface InvokeRebootOptions {
  deviceId: string;
  moduleId?: string;
  /** The method payload; the tutorial sends {"method_number":"42"}. */
  payload?: unknown;
  /** Seconds IoT Hub waits for the device's answer (5..300). */
  responseTimeout?: number;
  /** Seconds IoT Hub waits for an offline device to connect (0..300). */
  connectTimeout?: number;
  /** Seconds to watch the twin for the new rebootTime; 0 skips watching. */
  waitSeconds?: number;
  signal?: AbortSignal;
  onEvent?: (event: InvokeRebootEvent) => void;
}

export type InvokeRebootEvent =
  | { event: 'response'; status: number; payload: unknown }
  | { event: 'waiting' };

export interface InvokeRebootResult {
  status: number;
  payload: unknown;
  /** The reported rebootTime that is newer than the invocation, when one was seen. */
  rebootTime?: string;
}

export const TUTORIAL_PAYLOAD = { method_number: '42' };
const POLL_MS = 500;

/**
 * dmpatterns_getstarted_service: invokes rebootDevice, shows the device's answer, then watches the
 * device twin (through a twin query) until the device reports a rebootTime later than the call.
 */
export async function invokeReboot(connection: HubConnection, options: InvokeRebootOptions): Promise<InvokeRebootResult> {
  const { deviceId, moduleId, waitSeconds = 60, onEvent = () => {} } = options;
  const target = moduleId ? `module '${moduleId}' on device '${deviceId}'` : `device '${deviceId}'`;
  const params = {
    methodName: REBOOT_METHOD,
    payload: options.payload ?? TUTORIAL_PAYLOAD,
    responseTimeoutInSeconds: options.responseTimeout ?? 30,
    connectTimeoutInSeconds: options.connectTimeout ?? 0,
  };
  const invokedAt = Date.now();
  const client = createServiceClient(connection);
  let result: { status: number; payload: unknown };
  try {
    // Retried only when the hub did not take the call (throttled, unavailable, refused): never twice on the device.
    const call = () => (moduleId ? client.invokeDeviceMethod(deviceId, moduleId, params) : client.invokeDeviceMethod(deviceId, params));
    result = (await withRetry(call, { ...DEFAULT_RETRY, what: `invoking ${REBOOT_METHOD} on ${target}` })).result as { status: number; payload: unknown };
  } catch (err) {
    throw explain(err, `invoking ${REBOOT_METHOD} on ${target}`);
  }
  onEvent({ event: 'response', ...result });
  // Only a device that accepted the call is going to reboot.
  if (result.status < 200 || result.status >= 300 || waitSeconds === 0) return result;
  onEvent({ event: 'waiting' });
  const rebootTime = await watchRebootTime(connection, options, invokedAt, target);
  return { ...result, rebootTime };
}

/** A string literal of the IoT Hub query language. */
function quoted(text: string): string {
  return `'${text.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/**
 * Polls the twin with a twin query, as the tutorial does, until reported.rebootTime is later
 * than `since`; bounded by waitSeconds.
 */
async function watchRebootTime(connection: HubConnection, options: InvokeRebootOptions, since: number, target: string): Promise<string> {
  const registry = createRegistry(connection);
  const waitSeconds = options.waitSeconds ?? 60;
  const deadline = Date.now() + waitSeconds * 1000;
  const sql = options.moduleId
    ? `SELECT * FROM devices.modules WHERE deviceId = ${quoted(options.deviceId)} AND moduleId = ${quoted(options.moduleId)}`
    : `SELECT * FROM devices WHERE deviceId = ${quoted(options.deviceId)}`;
  for (;;) {
    if (options.signal?.aborted) throw new ToolkitError('stopped before the device reported rebootTime', ExitCode.failure);
    let twins: Array<{ properties?: { reported?: { rebootTime?: unknown } } }>;
    try {
      twins = (await withRetry(() => registry.createQuery(sql).nextAsTwin(), { ...DEFAULT_RETRY, what: `querying the twin of ${target}` })).result;
    } catch (err) {
      throw explain(err, `querying the twin of ${target}`);
    }
    const rebootTime = twins[0]?.properties?.reported?.rebootTime;
    if (typeof rebootTime === 'string' && Date.parse(rebootTime) >= since) return rebootTime;
    if (Date.now() >= deadline) throw new ToolkitError(`${target} reported no new rebootTime within ${waitSeconds} s`, ExitCode.timeout);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
