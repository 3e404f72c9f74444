import type { C2dRecord } from '../store/c2d-store.js';
import type { DeviceQueues } from '../cloud-to-device/device-queues.js';
import type { DeviceSession, MqttGateway, TopicHandler } from './mqtt-gateway.js';

/**
 * Cloud-to-device messages over MQTT: a device subscribes to devices/{id}/messages/devicebound/#
 * (modules have no queue), and gets its queue in order at QoS 1 on
 * devices/{id}/messages/devicebound/{property bag}, at once and whenever a message is queued; its
 * PUBACK completes the message. What a connection did not acknowledge is sent again on the next
 * connection (IoT Hub's MQTT devices cannot reject or abandon), up to the maximum delivery count.
 */
export class C2dTopics implements TopicHandler {
  /** Per connection: the messages sent on it and not yet acknowledged. */
  private readonly inFlight = new WeakMap<DeviceSession, Set<number>>();

  constructor(
    private readonly queues: DeviceQueues,
    private readonly gateway: MqttGateway,
  ) {
    // A turn later: aedes emits these before its SUBACK or CONNACK is written.
    const deliverSoon = (session: DeviceSession) => setImmediate(() => this.deliver(session));
    gateway.on('connected', deliverSoon).on('subscribed', deliverSoon);
    queues.on('enqueued', (deviceId: string) => {
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

  /** Sends the device what its queue holds and this connection has not been sent yet, oldest first. */
  private deliver(session: DeviceSession): void {
    const { deviceId } = session.key;
    if (!session.subscriptions.has(deviceboundFilter(deviceId)) || this.gateway.session(session.key) !== session) return;
    let sent = this.inFlight.get(session);
    if (!sent) this.inFlight.set(session, (sent = new Set()));
    for (const { seq } of this.queues.pending(deviceId)) {
      if (sent.has(seq)) continue;
      const message = this.queues.startDelivery(seq);
      if (!message) continue;
      sent.add(seq);
      const written = this.gateway.sendAtLeastOnce(session, deviceboundTopic(message), message.body, message.deliveryCount > 1, () => {
        sent.delete(seq);
        this.queues.complete(seq);
      });
      if (!written) return;
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
