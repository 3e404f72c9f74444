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

/** Who holds a message that is out with its device: an MQTT session, an AMQP link, an HTTPS lock token. */
export type Holder = object | string;

/**
 * The device-bound queues and the feedback queue. A message that goes out to its device is checked
 * out to whoever sent it (one MQTT connection, one AMQP link, one HTTPS lock) until the device settles
 * it or it is released, so that a device on several transports at once never gets it on two.
 * Emits 'available' (deviceId) when a device has messages to send (one was committed, or one came
 * back unsettled) and 'feedback' when records are waiting.
 */
export class DeviceQueues extends EventEmitter {
  private readonly sweep: NodeJS.Timeout;
  /** The messages out with their devices, by seq: who holds each and until when (HTTPS locks lapse; the others are held until released). */
  private readonly out = new Map<number, { deviceId: string; holder: Holder; untilMs: number }>();

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
    this.emit('available', input.deviceId);
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
   * The device's oldest message that no one holds, now held by `holder` (until `untilMs`, or until
   * released) with one more delivery counted: undefined when there is none. A message delivered the
   * maximum number of times is dead-lettered instead.
   */
  checkOut(deviceId: string, holder: Holder, untilMs = Infinity): C2dRecord | undefined {
    const nowMs = this.now();
    for (const { seq } of this.pending(deviceId)) {
      const held = this.out.get(seq);
      if (held && held.untilMs > nowMs) continue;
      const message = this.store.get(seq);
      if (!message) continue;
      if (message.deliveryCount >= MAX_DELIVERY_COUNT) {
        this.remove([message], 'DeliveryCountExceeded');
        continue;
      }
      this.store.delivered(seq);
      this.out.set(seq, { deviceId, holder, untilMs });
      this.registry.recordActivity({ deviceId }); // it receives a message: its lastActivityTime
      return { ...message, deliveryCount: message.deliveryCount + 1 };
    }
    return undefined;
  }

  /** Whether `holder` holds the message now (a lapsed hold is not held). */
  holds(holder: Holder, seq: number): boolean {
    const held = this.out.get(seq);
    return held?.holder === holder && held.untilMs > this.now();
  }

  /** `holder` gives messages back unsettled (abandoned, or its link or connection is gone): they go out again, to whoever asks next. */
  release(holder: Holder, seqs?: number[]): void {
    const devices = new Set<string>();
    for (const [seq, held] of this.out) {
      if (held.holder !== holder || (seqs && !seqs.includes(seq))) continue;
      this.out.delete(seq);
      devices.add(held.deviceId);
    }
    for (const deviceId of devices) this.emit('available', deviceId);
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
    for (const [seq, held] of this.out) if (held.deviceId === deviceId) this.out.delete(seq);
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
    const lapsed = new Set<string>();
    for (const [seq, held] of this.out) {
      if (held.untilMs > nowMs) continue;
      this.out.delete(seq);
      lapsed.add(held.deviceId);
    }
    for (const deviceId of lapsed) this.emit('available', deviceId);
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
    const seqs = messages.map((m) => m.seq);
    this.store.remove(seqs, feedback, nowMs + FEEDBACK_TTL_MS, nowMs);
    for (const seq of seqs) this.out.delete(seq);
    if (feedback.length > 0) this.emit('feedback');
  }
}

function pick<T extends object, K extends keyof T>(source: T, ...keys: K[]): Partial<Pick<T, K>> {
  const picked: Partial<Pick<T, K>> = {};
  for (const key of keys) if (source[key] !== undefined) picked[key] = source[key];
  return picked;
}
