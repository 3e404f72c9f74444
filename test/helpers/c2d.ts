import deviceSdk from 'azure-iot-device';
import type { ServiceConnection } from '../../src/clients/connection-string.js';
import type { DeviceClient } from '../../src/clients/device-clients.js';
import { createServiceClient } from '../../src/clients/service-clients.js';
import { within } from './events.js';

const { Message } = deviceSdk;
type Message = deviceSdk.Message;

/** A cloud-to-device message as the service sends it: text, system fields, application properties. */
export function c2dMessage(
  text: string,
  fields: Partial<Pick<Message, 'messageId' | 'ack' | 'expiryTimeUtc' | 'correlationId'>> = {},
  properties: Record<string, string> = {},
): Message {
  const message = new Message(text);
  Object.assign(message, fields);
  for (const [k, v] of Object.entries(properties)) message.properties.add(k, v);
  return message;
}

/** The next feedback batch the service's feedback receiver gets (bounded). */
export function nextFeedback(
  receiver: { on(event: 'message', l: (m: Message) => void): void; removeListener(event: string, l: (m: Message) => void): void },
  timeoutMs = 20_000,
): Promise<any[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no feedback arrived')), timeoutMs);
    const listener = (m: Message) => {
      clearTimeout(timer);
      receiver.removeListener('message', listener);
      resolve(JSON.parse(m.getData().toString()));
    };
    receiver.on('message', listener);
  });
}

/** Sends `text` to an opened device client from azure-iothub's Client; the body the device received (and completed), bounded. */
export async function c2dRoundTrip(device: DeviceClient, connection: ServiceConnection, deviceId: string, text: string): Promise<string> {
  const got = new Promise<Message>((resolve) =>
    device.on('message', (m: Message) => {
      void device.complete(m);
      resolve(m);
    }),
  );
  const service = createServiceClient(connection);
  await service.open();
  try {
    await service.send(deviceId, new Message(text));
  } finally {
    await service.close();
  }
  return (await within(30_000, 'the cloud-to-device message', got)).getData().toString();
}
