import { setTimeout as delay } from 'node:timers/promises';
import type { DeviceMethodRequest, DeviceMethodResponse } from 'azure-iot-device';
import type { DeviceConnection } from '../clients/connection-string.js';
import { createDeviceClient, openClient, type DeviceClient, type DeviceTransport } from '../clients/device-clients.js';
import { onReconnect } from '../clients/reconnect.js';
import { explain } from '../clients/sdk-errors.js';

export type RebootEvent =
  | { event: 'ready'; deviceId: string }
  | { event: 'request'; methodName: string; payload: unknown }
  | { event: 'rebooting'; seconds: number }
  | { event: 'rebooted' }
  | { event: 'reported'; rebootTime: string }
  | { event: 'reportFailed'; error: string }
  | { event: 'reconnected' };

export interface RebootDeviceOptions {
  /** The device SDK's transport (default MQTT). */
  transport?: DeviceTransport;
  /** How long the simulated reboot takes (the tutorial's time.sleep(20)). */
  rebootSeconds?: number;
  /** Stop after this many reboots; without it, serve until aborted. */
  count?: number;
  signal?: AbortSignal;
  onEvent?: (event: RebootEvent) => void;
}

export const REBOOT_METHOD = 'rebootDevice';

/**
 * dmpatterns_getstarted_device: answers the rebootDevice direct method, simulates a reboot, then
 * reports the time it finished as the reported property rebootTime. Other methods get 404.
 * After a dropped connection the SDK reconnects and subscribes to methods again by itself.
 */
export async function rebootDevice(connection: DeviceConnection, options: RebootDeviceOptions = {}): Promise<{ reboots: number }> {
  const { rebootSeconds = 20, count, signal, onEvent = () => {} } = options;
  const { deviceId } = connection;
  // Ready once the SDK's method subscription, made in the background by onDeviceMethod, is in place.
  let onMethodsEnabled!: (err?: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    onMethodsEnabled = (err) => (err ? reject(explain(err, `subscribing to ${REBOOT_METHOD}`)) : resolve());
  });
  const unknownMethod = { status: 404, payload: { Response: 'Unknown method' } };
  const client = await createDeviceClient(connection, options.transport, {
    features: ['methods', 'twin'],
    unknownMethod,
    onMethodsEnabled,
  });
  onReconnect(client, () => onEvent({ event: 'reconnected' }));
  let reboots = 0;
  try {
    const what = `connecting device '${deviceId}'`;
    const opened = await openClient(client, what, signal).catch((err) => {
      throw explain(err, what);
    });
    if (!opened) return { reboots };
    await new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return resolve();
      signal?.addEventListener('abort', () => resolve(), { once: true });
      const reboot = async () => {
        onEvent({ event: 'rebooting', seconds: rebootSeconds });
        // An abort (Ctrl-C) ends the simulated reboot early, and nothing is reported.
        if (!(await delay(rebootSeconds * 1000, true, { signal }).catch(() => false))) return;
        onEvent({ event: 'rebooted' });
        await reportRebootTime(client, onEvent);
        if (++reboots === count) resolve();
      };
      // Every call is answered at once (the caller's timeout is shorter than a reboot); reboots run one at a time.
      let rebooting = Promise.resolve();
      client.onDeviceMethod(REBOOT_METHOD, (request: DeviceMethodRequest, response: DeviceMethodResponse) => {
        onEvent({ event: 'request', methodName: request.methodName, payload: request.payload });
        response.send(200, { Response: 'Rebooting device' }).then(() => (rebooting = rebooting.then(reboot).catch(reject)), reject);
      });
      // onDeviceMethod subscribes in the background; its failure arrives as an 'error' event.
      client.on('error', (err) => reject(explain(err, `listening for ${REBOOT_METHOD}`)));
      ready.then(() => onEvent({ event: 'ready', deviceId }), reject);
    });
  } finally {
    await client.close().catch(() => undefined);
  }
  return { reboots };
}

// A twin request cut by a dropped connection may never be answered: the report gives up after this.
const REPORT_TIMEOUT_MS = 30_000;

/** The tutorial patches reported properties after the reboot; the device keeps serving if that fails. */
async function reportRebootTime(client: DeviceClient, onEvent: (event: RebootEvent) => void): Promise<void> {
  const rebootTime = new Date().toISOString();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the hub within ${REPORT_TIMEOUT_MS / 1000} s`)), REPORT_TIMEOUT_MS);
  });
  try {
    const report = async () => {
      const twin = await client.getTwin();
      await new Promise<void>((resolve, reject) =>
        twin.properties.reported.update({ rebootTime }, (err?: Error) => (err ? reject(err) : resolve())),
      );
    };
    await Promise.race([report(), timeout]);
    onEvent({ event: 'reported', rebootTime });
  } catch (err) {
    onEvent({ event: 'reportFailed', error: explain(err, 'reporting rebootTime').message });
  } finally {
    clearTimeout(timer);
  }
}
