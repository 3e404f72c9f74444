import type { Delivery, EventContext, Message, Sender } from 'rhea';
import { rhea } from '../amqp/rhea.js';
import type { DeviceQueues } from '../cloud-to-device/device-queues.js';
import type { C2dRecord } from '../store/c2d-store.js';
import type { DeviceLink, DeviceLinkHandler } from './amqp-device-links.js';

/** One device's receiving link, and the messages sent on it and not settled yet (delivery → queue seq). */
interface DeviceboundLink {
  deviceId: string;
  link: Sender;
  inFlight: Map<Delivery, number>;
}

/**
 * Cloud-to-device messages over AMQP: a device attaches a receiver on `/devices/{id}/messages/devicebound`
 * (modules have no queue) and gets its queue in order, no more at a time than the link's credit,
 * as IoT Hub sends them. The device's outcome settles each: accepted completes it (Success feedback),
 * rejected dead-letters it (Rejected feedback), released or modified (the SDK's abandon) puts it back to
 * be sent again with its delivery count, up to the maximum. What a link had not settled when it ended
 * is sent again on the device's next link.
 */
export class AmqpCloudToDevice implements DeviceLinkHandler {
  readonly devicesOnly = true;
  private readonly links = new Map<Sender, DeviceboundLink>();
  /** Queue seqs out on some link, not settled yet: each message is in flight on one link at most. */
  private readonly sending = new Set<number>();

  constructor(private readonly queues: DeviceQueues) {
    queues.on('enqueued', (deviceId: string) => this.deliverTo(deviceId));
  }

  toDevice({ key, link }: DeviceLink<Sender>): void {
    const receiver: DeviceboundLink = { deviceId: key.deviceId, link, inFlight: new Map() };
    this.links.set(link, receiver);
    link.on('sendable', () => this.deliver(receiver));
    link.on('accepted', (context: EventContext) => this.settled(receiver, context, (seq) => this.queues.complete(seq)));
    link.on('rejected', (context: EventContext) => this.settled(receiver, context, (seq) => this.queues.reject(seq)));
    link.on('released', (context: EventContext) => this.settled(receiver, context));
    link.on('modified', (context: EventContext) => this.settled(receiver, context));
    this.deliver(receiver);
  }

  gone(link: Sender): void {
    const receiver = this.links.get(link);
    if (!receiver) return;
    this.links.delete(link);
    for (const seq of receiver.inFlight.values()) this.sending.delete(seq);
    this.deliverTo(receiver.deviceId);
  }

  private deliverTo(deviceId: string): void {
    for (const receiver of this.links.values()) if (receiver.deviceId === deviceId) this.deliver(receiver);
  }

  /** Sends what the device's queue holds and no link has out, oldest first, while the link has credit. */
  private deliver(receiver: DeviceboundLink): void {
    const { link } = receiver;
    if (!link.sendable()) return;
    for (const { seq } of this.queues.pending(receiver.deviceId)) {
      if (!link.sendable()) return;
      if (this.sending.has(seq)) continue;
      const message = this.queues.startDelivery(seq);
      if (!message) continue;
      this.sending.add(seq);
      const delivery = link.send(deviceboundMessage(message));
      receiver.inFlight.set(delivery, seq);
    }
  }

  /** The device settled a message: `outcome` applies it to the queue (none: it goes back, to be sent again). */
  private settled(receiver: DeviceboundLink, context: EventContext, outcome?: (seq: number) => void): void {
    const seq = receiver.inFlight.get(context.delivery!);
    if (seq === undefined) return;
    receiver.inFlight.delete(context.delivery!);
    this.sending.delete(seq);
    outcome?.(seq);
    if (!outcome) this.deliverTo(receiver.deviceId);
  }
}

/** A queued message as IoT Hub sends it to a device over AMQP. */
function deviceboundMessage(message: C2dRecord): Message {
  return {
    ...(message.messageId !== undefined ? { message_id: message.messageId } : {}),
    ...(message.correlationId !== undefined ? { correlation_id: message.correlationId } : {}),
    // binary on the wire; rhea's typings say string
    ...(message.userId !== undefined ? { user_id: Buffer.from(message.userId) as unknown as string } : {}),
    ...(message.contentType !== undefined ? { content_type: message.contentType } : {}),
    ...(message.contentEncoding !== undefined ? { content_encoding: message.contentEncoding } : {}),
    to: `/devices/${message.deviceId}/messages/deviceBound`,
    absolute_expiry_time: new Date(message.expiryMs),
    creation_time: new Date(message.enqueuedMs),
    delivery_count: message.deliveryCount - 1,
    first_acquirer: message.deliveryCount === 1,
    message_annotations: { 'iothub-enqueuedtime': new Date(message.enqueuedMs) },
    application_properties: { ...message.properties, 'iothub-ack': message.ack },
    body: rhea().message.data_section(message.body),
  } as Message;
}
