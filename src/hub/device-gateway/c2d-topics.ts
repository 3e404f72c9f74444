import type { C2dRecord } from '../store/c2d-store.js';
import type { DeviceQueues } from '../cloud-to-device/device-queues.js';
import type { DeviceSession, MqttGateway, TopicHandler } from './mqtt-gateway.js';

/**
 * Cloud-to-device messages over MQTT: a device subscribes to devices/{id}/messages/devicebound/#
 * (modules have no queue), and gets its queue in order at QoS 1 on
 * devices/{id}/messages/devicebound/{property bag}, at once and whenever a message is queued; its
 * PUBACK completes the message. A message sent on a connection is checked out to it (DeviceQueues)
 * until then; what a connection did not acknowledge when it closed is sent again, on the next
 * connection or another transport (IoT Hub's MQTT devices cannot reject or abandon), up to the
 * maximum delivery count.
 */
export class C2dTopics implements TopicHandler {
  constructor(
    private readonly queues: DeviceQueues,
    private readonly gateway: MqttGateway,
  ) {
    // A turn later: aedes emits these before its SUBACK or CONNACK is written.
    const deliverSoon = (session: DeviceSession) => setImmediate(() => this.deliver(session));
    gateway
      .on('connected', deliverSoon)
      .on('subscribed', deliverSoon)
      .on('closed', (session: DeviceSession) => queues.release(session));
    queues.on('available', (deviceId: string) => {
      const session = gateway.session({ deviceId });
      if (session) this.deliver(session);
    });
  }

  publishes(): boolean {
    return false;
  }

  subscribes(filter: string, session: DeviceSession): boolean {
    return !session.key.moduleId && filter === deviceboundFilter(session.key.deviceId);
  }

  handle(): void {
    // publishes() claims no topic: never called.
  }

  /** Sends the device what its queue holds and no one has out, oldest first. */
  private deliver(session: DeviceSession): void {
    const { deviceId } = session.key;
    if (!session.subscriptions.has(deviceboundFilter(deviceId)) || this.gateway.session(session.key) !== session) return;
    for (;;) {
      const message = this.queues.checkOut(deviceId, session);
      if (!message) return;
      const { seq } = message;
      const written = this.gateway.sendAtLeastOnce(session, deviceboundTopic(message), message.body, message.deliveryCount > 1, () =>
        this.queues.complete(seq),
      );
      if (!written) return; // the connection is closing (or was just closed for not reading): its end releases what it holds
    }
  }
}

function deviceboundFilter(deviceId: string): string {
  return `devices/${deviceId}/messages/devicebound/#`;
}

/** devices/{id}/messages/devicebound/{property bag}: system properties as `$.` keys, then the application properties. */
export function deviceboundTopic(message: C2dRecord): string {
  const bag: Array<[string, string | undefined]> = [
    ['$.mid', message.messageId],
    ['$.cid', message.correlationId],
    ['$.uid', message.userId],
    ['$.to', `/devices/${message.deviceId}/messages/deviceBound`],
    ['$.ct', message.contentType],
    ['$.ce', message.contentEncoding],
    ['$.exp', new Date(message.expiryMs).toISOString()],
    ['iothub-ack', message.ack],
    ...Object.entries(message.properties),
  ];
  const encoded = bag
    .filter((pair): pair is [string, string] => pair[1] !== undefined)
    .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
  return `devices/${message.deviceId}/messages/devicebound/${encoded.join('&')}`;
}
