import type { Twin } from 'azure-iot-device';
import { createDeviceClient, openClient, type DeviceTransport } from '../clients/device-clients.js';
import { onReconnect } from '../clients/reconnect.js';
import type { DeviceConnection } from '../clients/connection-string.js';
import { explain } from '../clients/sdk-errors.js';
import { Receiving } from './receiving.js';

/** A desired-properties patch as IoT Hub sends it: the changed properties and the new `$version`. */
export type DesiredPatch = Record<string, unknown> & { $version: number };

/** The connection dropped and the receiver is back, with a fresh subscription and twin read. */
export type TwinPatchEvent = { event: 'reconnected' };

export interface ReceiveTwinPatchOptions {
  /** The device SDK's transport (default MQTT). */
  transport?: DeviceTransport;
  /** Stop after this many patches; absent: until aborted or timed out. */
  count?: number;
  /** Give up (ExitCode.timeout) when the patches have not all arrived in time. */
  timeoutSeconds?: number;
  /** Aborting closes the client and resolves with what has been received. */
  signal?: AbortSignal;
  /** Called once the device is subscribed to desired-property patches. */
  onReady?: () => void;
  onPatch(patch: DesiredPatch): void;
  onEvent?: (event: TwinPatchEvent) => void;
}

/**
 * ReceiveModuleTwinDesiredPropertiesPatch: connects as the device or module of the connection
 * string, reads its twin and reports every desired-properties patch as it arrives.
 *
 * After a dropped connection the SDK reconnects and its persistent MQTT session keeps the twin
 * subscription, but patches written meanwhile are not sent again. So on a reconnect the receiver
 * reads the twin, and a desired `$version` newer than the last one reported is reported as the
 * whole desired section (the docs' advice: compare versions after reconnecting): nothing is missed.
 */
export async function receiveTwinPatch(connection: DeviceConnection, options: ReceiveTwinPatchOptions): Promise<{ received: number }> {
  // The SDK replays the whole desired section when a listener is added and after every twin read;
  // a patch is what carries a newer $version than the one already seen.
  let seen = 0;
  const report = (desired: DesiredPatch) => {
    if (!(desired.$version > seen)) return;
    seen = desired.$version;
    options.onPatch(structuredClone(desired)); // the SDK keeps merging later patches into the object it passed
    receiving.got();
  };

  const client = await createDeviceClient(connection, options.transport, { features: ['twin'] });
  const receiving = new Receiving('desired property patch', options);
  const { done } = receiving;
  client.on('error', (err) => receiving.fail(explain(err, 'device client')));
  let twin: Twin | undefined;
  onReconnect(client, () => {
    options.onEvent?.({ event: 'reconnected' });
    // Patches written while the device was away are not sent again: read the twin and compare versions.
    twin?.get().catch(() => undefined);
  });
  /** Opens, subscribes, then reads the twin (so a patch between read and subscribe is not lost); false when ended first. */
  const connect = async (): Promise<boolean> => {
    // Every step races the end, so a timeout or Ctrl-C also cuts a connect that hangs.
    await Promise.race([done, openClient(client, 'receiving desired property patches', options.signal)]);
    twin = (await Promise.race([done.then(() => undefined), client.getTwin()])) as Twin | undefined;
    if (!twin) return false;
    const subscribed = twin;
    seen = Number(subscribed.properties.desired.$version ?? 0);
    subscribed.on('properties.desired', report);
    await Promise.race([
      done,
      new Promise<void>((resolve, reject) => subscribed.enableTwinDesiredPropertiesUpdates((err) => (err ? reject(err) : resolve()))),
    ]);
    await Promise.race([done, subscribed.get()]);
    return true;
  };

  try {
    if ((await connect()) && !options.signal?.aborted) options.onReady?.();
    await done;
    return { received: receiving.received };
  } catch (err) {
    throw explain(err, 'receiving desired property patches');
  } finally {
    receiving.dispose();
    await client.close().catch(() => undefined);
  }
}
