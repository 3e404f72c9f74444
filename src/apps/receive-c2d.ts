import type deviceSdk from 'azure-iot-device';
import { createDeviceClient, openClient, type DeviceTransport } from '../clients/device-clients.js';
import type { DeviceConnection } from '../clients/connection-string.js';
import { explain } from '../clients/sdk-errors.js';
import { Receiving } from './receiving.js';

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

/** azure-iot-device-http names an application property by its HTTP header: this prefix, then the name in lower case. */
const HTTP_PROPERTY_PREFIX = 'iothub-app-';

/**
 * The tutorial's SimulatedDevice, receiving: connects as the device, prints each cloud-to-device
 * message with its properties and completes it (so the hub removes it and sends positive feedback).
 * A message counts once it is completed, so that the last one is settled before the client closes.
 */
export async function receiveC2d(connection: DeviceConnection, options: ReceiveC2dOptions): Promise<{ received: number }> {
  const client = await createDeviceClient(connection, options.transport, { features: ['c2d'] });
  const receiving = new Receiving('cloud-to-device message', options);
  client.on('error', (err) => receiving.fail(explain(err, 'device client')));
  client.on('message', (message: deviceSdk.Message) => {
    const properties: Record<string, string> = {};
    for (let i = 0; i < message.properties.count(); i++) {
      const { key, value } = message.properties.getItem(i);
      const http = options.transport === 'http' && key.startsWith(HTTP_PROPERTY_PREFIX);
      properties[http ? key.slice(HTTP_PROPERTY_PREFIX.length) : key] = value;
    }
    options.onMessage({
      data: message.getData().toString(),
      messageId: message.messageId,
      correlationId: message.correlationId,
      properties,
    });
    client.complete(message).then(
      () => receiving.got(),
      (err) => receiving.fail(explain(err, 'completing a message')),
    );
  });
  try {
    await Promise.race([receiving.done, openClient(client, 'receiving cloud-to-device messages', options.signal)]);
    if (!options.signal?.aborted && !receiving.complete) options.onReady?.();
    await receiving.done;
    return { received: receiving.received };
  } catch (err) {
    throw explain(err, 'receiving cloud-to-device messages');
  } finally {
    receiving.dispose();
    await client.close().catch(() => undefined);
  }
}
