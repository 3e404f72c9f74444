import type { Db } from './database.js';
import { RecordQueue, type QueuedRecord } from './record-queue.js';

/** A cloud-to-device message as the device-bound queue keeps it. */
export interface C2dRecord {
  /** The queue position: messages of one device are delivered in this order. */
  seq: number;
  deviceId: string;
  /** The device's generation id when the message was enqueued (for feedback records). */
  generationId: string;
  messageId?: string;
  correlationId?: string;
  userId?: string;
  ack: 'none' | 'positive' | 'negative' | 'full';
  contentType?: string;
  contentEncoding?: string;
  properties: Record<string, string>;
  body: Buffer;
  enqueuedMs: number;
  expiryMs: number;
  /** How many times it was sent to the device. */
  deliveryCount: number;
}

/** A feedback record waiting for the service's feedback receiver. */
export type FeedbackRow = QueuedRecord<Record<string, string>>;

interface MessageRow {
  seq: number;
  device_id: string;
  generation_id: string;
  message_id: string | null;
  correlation_id: string | null;
  user_id: string | null;
  ack: C2dRecord['ack'];
  content_type: string | null;
  content_encoding: string | null;
  properties: string;
  body: Uint8Array;
  enqueued_ms: number;
  expiry_ms: number;
  delivery_count: number;
}

/**
 * The device-bound queues (one per device, in enqueue order) and the feedback queue. Every write is
 * committed (fsync'd) when the call returns, so what the hub acknowledged survives kill -9.
 */
export class C2dStore {
  private readonly stmts;
  private readonly feedbackQueue: RecordQueue<Record<string, string>>;

  constructor(private readonly db: Db) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS c2d_messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        device_id TEXT NOT NULL,
        generation_id TEXT NOT NULL,
        message_id TEXT,
        correlation_id TEXT,
        user_id TEXT,
        ack TEXT NOT NULL,
        content_type TEXT,
        content_encoding TEXT,
        properties TEXT NOT NULL,
        body BLOB NOT NULL,
        enqueued_ms INTEGER NOT NULL,
        expiry_ms INTEGER NOT NULL,
        delivery_count INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX IF NOT EXISTS c2d_messages_by_device ON c2d_messages (device_id, seq);
      CREATE INDEX IF NOT EXISTS c2d_messages_by_expiry ON c2d_messages (expiry_ms);
    `);
    this.feedbackQueue = new RecordQueue(db, 'c2d_feedback');
    this.stmts = {
      count: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM c2d_messages WHERE device_id = ?'),
      insert: db.prepare(`INSERT INTO c2d_messages (device_id, generation_id, message_id, correlation_id, user_id, ack,
        content_type, content_encoding, properties, body, enqueued_ms, expiry_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`),
      queue: db.prepare<[string], MessageRow>('SELECT * FROM c2d_messages WHERE device_id = ? ORDER BY seq'),
      get: db.prepare<[number], MessageRow>('SELECT * FROM c2d_messages WHERE seq = ?'),
      delivered: db.prepare<[number]>('UPDATE c2d_messages SET delivery_count = delivery_count + 1 WHERE seq = ?'),
      delete: db.prepare<[number]>('DELETE FROM c2d_messages WHERE seq = ?'),
      deleteDevice: db.prepare<[string]>('DELETE FROM c2d_messages WHERE device_id = ?'),
      expired: db.prepare<[number], MessageRow>('SELECT * FROM c2d_messages WHERE expiry_ms <= ? ORDER BY seq'),
      depths: db.prepare<[], { device_id: string; n: number }>('SELECT device_id, COUNT(*) AS n FROM c2d_messages GROUP BY device_id'),
    };
  }

  depth(deviceId: string): number {
    return this.stmts.count.get(deviceId)!.n;
  }

  /** Every device's queue depth (devices with an empty queue are left out). */
  depths(): Map<string, number> {
    return new Map(this.stmts.depths.all().map((r) => [r.device_id, r.n]));
  }

  /** Appends a message to its device's queue, unless the queue holds `maxDepth` already (then undefined). */
  enqueue(message: Omit<C2dRecord, 'seq' | 'deliveryCount'>, maxDepth: number): number | undefined {
    return this.db.transaction(() => {
      if (this.stmts.count.get(message.deviceId)!.n >= maxDepth) return undefined;
      const row = this.stmts.insert.get(
        message.deviceId,
        message.generationId,
        message.messageId ?? null,
        message.correlationId ?? null,
        message.userId ?? null,
        message.ack,
        message.contentType ?? null,
        message.contentEncoding ?? null,
        JSON.stringify(message.properties),
        message.body,
        message.enqueuedMs,
        message.expiryMs,
      ) as { seq: number };
      return row.seq;
    });
  }

  /** A device's queue, oldest first. */
  queue(deviceId: string): C2dRecord[] {
    return this.stmts.queue.all(deviceId).map(toRecord);
  }

  get(seq: number): C2dRecord | undefined {
    const row = this.stmts.get.get(seq);
    return row && toRecord(row);
  }

  /** Counts a delivery attempt, before the message goes out. */
  delivered(seq: number): void {
    this.stmts.delivered.run(seq);
  }

  /** A deleted device's queue goes with it. */
  deleteDevice(deviceId: string): void {
    this.stmts.deleteDevice.run(deviceId);
  }

  expired(nowMs: number): C2dRecord[] {
    return this.stmts.expired.all(nowMs).map(toRecord);
  }

  /** Removes messages and adds the feedback records their removal produced, in one transaction. */
  remove(seqs: number[], feedback: Array<Record<string, string>>, feedbackExpiryMs: number, nowMs: number): void {
    this.db.transaction(() => {
      for (const seq of seqs) this.stmts.delete.run(seq);
      for (const record of feedback) this.feedbackQueue.add(record, nowMs, feedbackExpiryMs);
    });
  }

  /** Unexpired feedback records, oldest first. */
  feedback(nowMs: number, limit: number): FeedbackRow[] {
    return this.feedbackQueue.oldest(nowMs, limit);
  }

  /** Feedback the service accepted (or rejected): gone for good. */
  settleFeedback(seqs: number[]): void {
    this.feedbackQueue.remove(seqs);
  }

  expireFeedback(nowMs: number): void {
    this.feedbackQueue.expire(nowMs);
  }
}

function toRecord(row: MessageRow): C2dRecord {
  return {
    seq: row.seq,
    deviceId: row.device_id,
    generationId: row.generation_id,
    ...(row.message_id !== null ? { messageId: row.message_id } : {}),
    ...(row.correlation_id !== null ? { correlationId: row.correlation_id } : {}),
    ...(row.user_id !== null ? { userId: row.user_id } : {}),
    ack: row.ack,
    ...(row.content_type !== null ? { contentType: row.content_type } : {}),
    ...(row.content_encoding !== null ? { contentEncoding: row.content_encoding } : {}),
    properties: JSON.parse(row.properties),
    body: Buffer.from(row.body),
    enqueuedMs: row.enqueued_ms,
    expiryMs: row.expiry_ms,
    deliveryCount: row.delivery_count,
  };
}
