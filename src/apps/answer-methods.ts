import type { DeviceMethodRequest, DeviceMethodResponse } from 'azure-iot-device';
import type { DeviceConnection } from '../clients/connection-string.js';
import { createDeviceClient, openClient, type DeviceTransport } from '../clients/device-clients.js';
import { onReconnect } from '../clients/reconnect.js';
import { explain } from '../clients/sdk-errors.js';
import { Receiving } from './receiving.js';

export type AnswerEvent =
  | { event: 'ready'; deviceId: string; methods: string[] }
  | { event: 'call'; methodName: string; payload: unknown; status: number }
  | { event: 'reconnected' };

export interface AnswerMethodsOptions {
  /** The direct methods to answer; calls to any other get 404, as in reboot-device. */
  methods: string[];
  /** The canned answer to every call. */
  status: number;
  /** Absent: the answer has no payload (the tutorial's response.send(200)). */
  payload?: unknown;
  /** The device SDK's transport (default MQTT). */
  transport?: DeviceTransport;
  /** Stop after this many calls; absent: until aborted or timed out. */
  count?: number;
  /** Give up (ExitCode.timeout) when the calls have not all come in time. */
  timeoutSeconds?: number;
  signal?: AbortSignal;
  onEvent?: (event: AnswerEvent) => void;
}

/**
 * A device that answers named direct methods with a canned status and payload, as the "Schedule and
 * broadcast jobs" tutorial's device answers lockDoor. Each call is answered at once, then reported.
 */
export async function answerMethods(connection: DeviceConnection, options: AnswerMethodsOptions): Promise<{ calls: number }> {
  const { methods, status, payload, signal, onEvent = () => {} } = options;
  const { deviceId } = connection;
  const what = `answering ${methods.join(', ')}`;
  const receiving = new Receiving('direct method call', options);
  // Ready once the SDK's method subscription, made in the background by onDeviceMethod, is in place.
  let onMethodsEnabled!: (err?: Error) => void;
  const enabled = new Promise<void>((resolve, reject) => {
    onMethodsEnabled = (err) => (err ? reject(explain(err, `subscribing to ${methods.join(', ')}`)) : resolve());
  });
  enabled.catch((err) => receiving.fail(err));
  const client = await createDeviceClient(connection, options.transport, {
    features: ['methods'],
    unknownMethod: { status: 404, payload: { Response: 'Unknown method' } },
    onMethodsEnabled,
  });
  onReconnect(client, () => onEvent({ event: 'reconnected' }));
  client.on('error', (err) => receiving.fail(explain(err, what)));
  try {
    const opened = await Promise.race([receiving.done.then(() => false), openClient(client, `connecting device '${deviceId}'`, signal)]);
    if (opened && !signal?.aborted) {
      for (const method of methods) {
        client.onDeviceMethod(method, (request: DeviceMethodRequest, response: DeviceMethodResponse) => {
          response.send(status, payload).then(
            () => {
              onEvent({ event: 'call', methodName: request.methodName, payload: request.payload ?? null, status });
              receiving.got();
            },
            (err) => receiving.fail(explain(err, `answering ${request.methodName}`)),
          );
        });
      }
      await Promise.race([receiving.done, enabled]);
      if (!signal?.aborted && !receiving.complete) onEvent({ event: 'ready', deviceId, methods });
    }
    await receiving.done;
    return { calls: receiving.received };
  } catch (err) {
    throw explain(err, what);
  } finally {
    receiving.dispose();
    await client.close().catch(() => undefined);
  }
}
