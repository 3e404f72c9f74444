import deviceSdk from 'azure-iot-device';

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
