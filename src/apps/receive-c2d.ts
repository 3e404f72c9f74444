import type deviceSdk from 'azure-iot-device';
import { createDeviceClient, openClient, type DeviceTransport } from '../clients/device-clients.js';
import type { DeviceConnection } from '../clients/connection-string.js';
import { ExitCode, ToolkitError } from '../clients/errors.js';
import { explain } from '../clients/sdk-errors.js';

/** A cloud-to-device message as the device got it. */
export interface ReceivedC2d {
  data: string;
  messageId?: string;
  correlationId?: string;
  properties: Record<string, string>;
}

export interface ReceiveC2dOptions {
  /** The device SDK's transport (default MQTT). */
  transport?: DeviceTransport;
  /** Stop after this many messages; absent: until aborted or timed out. */
  count?: number;
  /** Give up (ExitCode.timeout) when the messages have not all arrived in time. */
  timeoutSeconds?: number;
  signal?: AbortSignal;
  onReady?: () => void;
  onMessage(message: ReceivedC2d): void;
}

/**
 * The tutorial's SimulatedDevice, receiving: connects as the device, prints each cloud-to-device
 * message with its properties and completes it (so the hub removes it and sends positive feedback).
 */
export async function receiveC2d(connection: DeviceConnection, options: ReceiveC2dOptions): Promise<{ received: number }> {
  let received = 0;
  let finish!: () => void;
  let fail!: (err: unknown) => void;
  const done = new Promise<void>((resolve, reject) => ((finish = resolve), (fail = reject)));
  done.catch(() => undefined);
  const timer =
    options.timeoutSeconds === undefined
      ? undefined
      : setTimeout(
          () =>
            fail(
              new ToolkitError(
                `no${received ? ' further' : ''} cloud-to-device message within ${options.timeoutSeconds} s (received ${received})`,
                ExitCode.timeout,
              ),
            ),
          options.timeoutSeconds * 1000,
        );
  const onAbort = () => finish();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) finish();

  const client = await createDeviceClient(connection, options.transport, { features: ['c2d'] });
  client.on('error', (err) => fail(explain(err, 'device client')));
  client.on('message', (message: deviceSdk.Message) => {
    const properties: Record<string, string> = {};
    for (let i = 0; i < message.properties.count(); i++) {
      const { key, value } = message.properties.getItem(i);
      properties[key] = value;
    }
    received += 1;
    options.onMessage({
      data: message.getData().toString(),
      messageId: message.messageId,
      correlationId: message.correlationId,
      properties,
    });
    client.complete(message).catch((err) => fail(explain(err, 'completing a message')));
    if (options.count !== undefined && received >= options.count) finish();
  });
  try {
    await Promise.race([done, openClient(client, 'receiving cloud-to-device messages', options.signal)]);
    if (!options.signal?.aborted && received < (options.count ?? Infinity)) options.onReady?.();
    await done;
    return { received };
  } catch (err) {
    throw explain(err, 'receiving cloud-to-device messages');
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    await client.close().catch(() => undefined);
  }
}
