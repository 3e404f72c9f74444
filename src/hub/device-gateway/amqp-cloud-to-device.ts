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
 * as IoT Hub sends them. A message sent on a link is checked out to it (DeviceQueues) until the
 * device's outcome settles it: accepted completes it (Success feedback), rejected dead-letters it
 * (Rejected feedback), released or modified (the SDK's abandon) gives it back to be sent again with
 * its delivery count, up to the maximum. What a link had not settled when it ended is sent again, on
 * the device's next link or another transport.
 */
export class AmqpCloudToDevice implements DeviceLinkHandler {
  readonly devicesOnly = true;
  private readonly links = new Map<Sender, DeviceboundLink>();

  constructor(private readonly queues: DeviceQueues) {
    queues.on('available', (deviceId: string) => this.deliverTo(deviceId));
  }

  toDevice({ key, link }: DeviceLink<Sender>): void {
    const receiver: DeviceboundLink = { deviceId: key.deviceId, link, inFlight: new Map() };
    this.links.set(link, receiver);
    link.on('sendable', () => this.deliver(receiver));
    link.on('accepted', (context: EventContext) => this.settled(receiver, context, (seq) => this.queues.complete(seq)));
    link.on('rejected', (context: EventContext) => this.settled(receiver, context, (seq) => this.queues.reject(seq)));
    link.on('released', (context: EventContext) => this.settled(receiver, context, (seq) => this.queues.release(receiver, [seq])));
    link.on('modified', (context: EventContext) => this.settled(receiver, context, (seq) => this.queues.release(receiver, [seq])));
    this.deliver(receiver);
  }

  gone(link: Sender): void {
    const receiver = this.links.get(link);
    if (!receiver) return;
    this.links.delete(link);
    this.queues.release(receiver);
  }

  private deliverTo(deviceId: string): void {
    for (const receiver of this.links.values()) if (receiver.deviceId === deviceId) this.deliver(receiver);
  }

  /** Sends what the device's queue holds and no one has out, oldest first, while the link has credit. */
  private deliver(receiver: DeviceboundLink): void {
    const { link } = receiver;
    while (link.sendable()) {
      const message = this.queues.checkOut(receiver.deviceId, receiver);
      if (!message) return;
      receiver.inFlight.set(link.send(deviceboundMessage(message)), message.seq);
    }
  }

  /** The device settled a message: `outcome` applies it to the queue. */
  private settled(receiver: DeviceboundLink, context: EventContext, outcome: (seq: number) => void): void {
    const seq = receiver.inFlight.get(context.delivery!);
    if (seq === undefined) return;
    receiver.inFlight.delete(context.delivery!);
    outcome(seq);
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
