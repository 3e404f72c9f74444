import { EventEmitter } from 'node:events';
import { hubErrors } from '../errors.js';
import type { Registry } from '../registry/registry.js';
import type { C2dRecord, C2dStore, FeedbackRow } from '../store/c2d-store.js';
import { silentLog, type HubLog } from '../log.js';

// IoT Hub's cloud-to-device queues ("Understand cloud-to-device messaging"): one per device (modules
// have none), at most 50 messages, each living until its expiryTimeUtc (default one hour, at most
// 48 hours), delivered at most 10 times, then dead-lettered. Feedback ("ack": positive, negative,
// full) is kept in a queue of its own for the service's feedback receiver, for an hour.

/** "Each device queue holds, at most, 50 cloud-to-device messages." */
export const MAX_QUEUE_DEPTH = 50;
export const DEFAULT_TTL_MS = 60 * 60 * 1000;
export const MAX_TTL_MS = 48 * 60 * 60 * 1000;
export const MAX_DELIVERY_COUNT = 10;
/** IoT Hub's limit for a cloud-to-device message: body and properties together. */
export const MAX_C2D_MESSAGE_BYTES = 64 * 1024;
/** How long feedback waits for a receiver (the feedback queue's default time to live). */
const FEEDBACK_TTL_MS = 60 * 60 * 1000;
const SWEEP_INTERVAL_MS = 1000;

export type Ack = C2dRecord['ack'];
const ACKS: readonly Ack[] = ['none', 'positive', 'negative', 'full'];

export type FeedbackStatus = 'Success' | 'Expired' | 'DeliveryCountExceeded' | 'Rejected' | 'Purged';
const DESCRIPTIONS: Record<FeedbackStatus, string> = {
  Success: 'Success',
  Expired: 'Message Expired',
  DeliveryCountExceeded: 'Message delivery count exceeded',
  Rejected: 'Message rejected',
  Purged: 'Message purged',
};

/** What the service sends: the message's own fields, before the hub stamps it. */
export interface C2dMessageInput {
  deviceId: string;
  messageId?: string;
  correlationId?: string;
  userId?: string;
  /** Default 'none'. */
  ack?: string;
  contentType?: string;
  contentEncoding?: string;
  properties: Record<string, string>;
  body: Buffer;
  /** When the message expires; default an hour from now, at most 48 hours. */
  expiryTimeUtc?: Date;
}

/**
 * The device-bound queues and the feedback queue. Emits 'enqueued' (deviceId) after a message is
 * committed, 'removed' (deviceId) when messages left a queue, and 'feedback' when records are waiting.
 */
export class DeviceQueues extends EventEmitter {
  private readonly sweep: NodeJS.Timeout;

  constructor(
    private readonly store: C2dStore,
    private readonly registry: Registry,
    private readonly log: HubLog = silentLog(),
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.sweep = setInterval(() => this.expire(), SWEEP_INTERVAL_MS).unref();
  }

  /** Queues a message for its device; committed when this returns. Throws IoT Hub's errors. */
  enqueue(input: C2dMessageInput): C2dRecord {
    const device = this.registry.find(input.deviceId);
    if (!device || device.moduleId !== '') throw hubErrors.deviceNotFound(input.deviceId);
    const ack = (input.ack ?? 'none').toLowerCase() as Ack;
    if (!ACKS.includes(ack)) throw hubErrors.argumentInvalid(`iothub-ack must be one of ${ACKS.join(', ')}, not '${input.ack}'`);
    let size = input.body.length;
    for (const [name, value] of Object.entries(input.properties)) size += Buffer.byteLength(name) + Buffer.byteLength(value);
    if (size > MAX_C2D_MESSAGE_BYTES) {
      throw hubErrors.messageTooLarge(
        `The message is ${size} bytes; a cloud-to-device message may have up to ${MAX_C2D_MESSAGE_BYTES} bytes (body and properties).`,
      );
    }
    const enqueuedMs = this.now();
    const requested = input.expiryTimeUtc?.getTime();
    if (requested !== undefined && !Number.isFinite(requested)) throw hubErrors.argumentInvalid('The message has an invalid expiryTimeUtc');
    const expiryMs = Math.min(requested ?? enqueuedMs + DEFAULT_TTL_MS, enqueuedMs + MAX_TTL_MS);
    const record: Omit<C2dRecord, 'seq' | 'deliveryCount'> = {
      deviceId: input.deviceId,
      generationId: device.generationId,
      ...pick(input, 'messageId', 'correlationId', 'userId', 'contentType', 'contentEncoding'),
      ack,
      properties: input.properties,
      body: input.body,
      enqueuedMs,
      expiryMs,
    };
    const seq = this.store.enqueue(record, MAX_QUEUE_DEPTH);
    if (seq === undefined) {
      throw hubErrors.deviceQueueFull(
        `The device ${input.deviceId} has ${MAX_QUEUE_DEPTH} cloud-to-device messages queued, the maximum: it must receive some first (or purge its queue).`,
      );
    }
    this.emit('enqueued', input.deviceId);
    return { ...record, seq, deliveryCount: 0 };
  }

  depth(deviceId: string): number {
    return this.store.depth(deviceId);
  }

  depths(): Map<string, number> {
    return this.store.depths();
  }

  /** A device's messages still to deliver, oldest first (an expired one waits for the sweep, not for the device). */
  pending(deviceId: string): C2dRecord[] {
    const nowMs = this.now();
    return this.store.queue(deviceId).filter((m) => m.expiryMs > nowMs);
  }

  /**
   * Counts one more delivery of a message, before it goes out: undefined when it is gone (completed,
   * purged, expired) or has been delivered the maximum number of times (then it is dead-lettered).
   */
  startDelivery(seq: number): C2dRecord | undefined {
    const message = this.store.get(seq);
    if (!message) return undefined;
    if (message.deliveryCount >= MAX_DELIVERY_COUNT) {
      this.remove([message], 'DeliveryCountExceeded');
      return undefined;
    }
    this.store.delivered(seq);
    return { ...message, deliveryCount: message.deliveryCount + 1 };
  }

  /** The device completed the message (an MQTT PUBACK, AMQP's accepted outcome, HTTPS's DELETE). */
  complete(seq: number): void {
    const message = this.store.get(seq);
    if (message) this.remove([message], 'Success');
  }

  /** The device rejected the message (AMQP's rejected outcome, HTTPS's DELETE ?reject): dead-lettered at once. */
  reject(seq: number): void {
    const message = this.store.get(seq);
    if (message) this.remove([message], 'Rejected');
  }

  /** Empties a device's queue (REST DELETE /devices/{id}/commands); returns how many messages it held. */
  purge(deviceId: string): number {
    const device = this.registry.find(deviceId);
    if (!device || device.moduleId !== '') throw hubErrors.deviceNotFound(deviceId);
    const messages = this.store.queue(deviceId);
    this.remove(messages, 'Purged');
    return messages.length;
  }

  /** A deleted device's queue goes with it, without feedback. */
  deleteDevice(deviceId: string): void {
    this.store.deleteDevice(deviceId);
  }

  /** The oldest feedback records waiting, at most `limit`. */
  feedback(limit: number): FeedbackRow[] {
    return this.store.feedback(this.now(), limit);
  }

  /** Feedback records the service settled: gone. */
  settleFeedback(seqs: number[]): void {
    this.store.settleFeedback(seqs);
  }

  close(): void {
    clearInterval(this.sweep);
  }

  /** Expired messages leave their queues (with Expired feedback when asked for); old feedback is dropped. */
  expire(): void {
    const nowMs = this.now();
    try {
      const expired = this.store.expired(nowMs);
      if (expired.length > 0) this.remove(expired, 'Expired');
      this.store.expireFeedback(nowMs);
    } catch (error) {
      this.log.error('store', `could not expire cloud-to-device messages: ${(error as Error).message}`);
    }
  }

  private remove(messages: C2dRecord[], status: FeedbackStatus): void {
    if (messages.length === 0) return;
    const wanted = status === 'Success' ? ['positive', 'full'] : ['negative', 'full'];
    const nowMs = this.now();
    const feedback = messages
      .filter((m) => wanted.includes(m.ack))
      .map((m) => ({
        originalMessageId: m.messageId ?? '',
        deviceId: m.deviceId,
        deviceGenerationId: m.generationId,
        description: DESCRIPTIONS[status],
        statusCode: status,
        enqueuedTimeUtc: new Date(nowMs).toISOString(),
      }));
    this.store.remove(
      messages.map((m) => m.seq),
      feedback,
      nowMs + FEEDBACK_TTL_MS,
      nowMs,
    );
    for (const deviceId of new Set(messages.map((m) => m.deviceId))) this.emit('removed', deviceId);
    if (feedback.length > 0) this.emit('feedback');
  }
}

function pick<T extends object, K extends keyof T>(source: T, ...keys: K[]): Partial<Pick<T, K>> {
  const picked: Partial<Pick<T, K>> = {};
  for (const key of keys) if (source[key] !== undefined) picked[key] = source[key];
  return picked;
}
