import { createRegistry } from '../clients/service-clients.js';
import type { ServiceConnection } from '../clients/connection-string.js';
import { describeIdentity } from '../clients/identity.js';
import { explain } from '../clients/sdk-errors.js';
import { ExitCode, ToolkitError } from '../clients/errors.js';
import { DEFAULT_RETRY, withRetry } from '../clients/retry.js';
import { REBOOT_METHOD } from './reboot-device.js';
import { invokeMethod, type InvokeMethodOptions, type MethodResult } from './invoke-method.js';

/** The reboot call (the tutorial's payload is {"method_number":"42"}) and how long to watch for its rebootTime. */
export interface InvokeRebootOptions extends Omit<InvokeMethodOptions, 'methodName'> {
  /** Seconds to watch the twin for the new rebootTime; 0 skips watching. */
  waitSeconds?: number;
  signal?: AbortSignal;
  onEvent?: (event: InvokeRebootEvent) => void;
}

export type InvokeRebootEvent = { event: 'response'; status: number; payload: unknown } | { event: 'waiting' };

export interface InvokeRebootResult extends MethodResult {
  /** The reported rebootTime that is newer than the invocation, when one was seen. */
  rebootTime?: string;
}

export const TUTORIAL_PAYLOAD = { method_number: '42' };
const POLL_MS = 500;

/**
 * dmpatterns_getstarted_service: invokes rebootDevice, shows the device's answer, then watches the
 * device twin (through a twin query) until the device reports a rebootTime later than the call.
 */
export async function invokeReboot(connection: ServiceConnection, options: InvokeRebootOptions): Promise<InvokeRebootResult> {
  const { waitSeconds = 60, onEvent = () => {} } = options;
  const invokedAt = Date.now();
  const result = await invokeMethod(connection, { ...options, methodName: REBOOT_METHOD, payload: options.payload ?? TUTORIAL_PAYLOAD });
  onEvent({ event: 'response', ...result });
  // Only a device that accepted the call is going to reboot.
  if (result.status < 200 || result.status >= 300 || waitSeconds === 0) return result;
  onEvent({ event: 'waiting' });
  const rebootTime = await watchRebootTime(connection, options, invokedAt, describeIdentity(options));
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
async function watchRebootTime(
  connection: ServiceConnection,
  options: InvokeRebootOptions,
  since: number,
  target: string,
): Promise<string> {
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
      twins = (await withRetry(() => registry.createQuery(sql).nextAsTwin(), { ...DEFAULT_RETRY, what: `querying the twin of ${target}` }))
        .result;
    } catch (err) {
      throw explain(err, `querying the twin of ${target}`);
    }
    const rebootTime = twins[0]?.properties?.reported?.rebootTime;
    if (typeof rebootTime === 'string' && Date.parse(rebootTime) >= since) return rebootTime;
    if (Date.now() >= deadline) throw new ToolkitError(`${target} reported no new rebootTime within ${waitSeconds} s`, ExitCode.timeout);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
