import type { Db } from './database.js';

/** A record waiting in a RecordQueue for a service's receiver. */
export interface QueuedRecord<T = Record<string, unknown>> {
  seq: number;
  record: T;
  enqueuedMs: number;
}

/**
 * A durable queue of JSON records for a service-facing AMQP link (cloud-to-device feedback, file
 * upload notifications): kept until the service settles them or their time to live runs out. Each
 * write commits (fsync'd) when the call returns, or with the transaction it is part of.
 */
export class RecordQueue<T = Record<string, unknown>> {
  private readonly stmts;

  constructor(
    private readonly db: Db,
    table: string,
  ) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS ${table} (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        record TEXT NOT NULL,
        enqueued_ms INTEGER NOT NULL,
        expiry_ms INTEGER NOT NULL
      );
    `);
    this.stmts = {
      add: db.prepare<[string, number, number]>(`INSERT INTO ${table} (record, enqueued_ms, expiry_ms) VALUES (?, ?, ?)`),
      oldest: db.prepare<[number, number], { seq: number; record: string; enqueued_ms: number }>(
        `SELECT seq, record, enqueued_ms FROM ${table} WHERE expiry_ms > ? ORDER BY seq LIMIT ?`,
      ),
      delete: db.prepare<[number]>(`DELETE FROM ${table} WHERE seq = ?`),
      expire: db.prepare<[number]>(`DELETE FROM ${table} WHERE expiry_ms <= ?`),
      count: db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM ${table}`),
      dropOldest: db.prepare<[number]>(`DELETE FROM ${table} WHERE seq IN (SELECT seq FROM ${table} ORDER BY seq LIMIT ?)`),
    };
  }

  add(record: T, nowMs: number, expiryMs: number): void {
    this.stmts.add.run(JSON.stringify(record), nowMs, expiryMs);
  }

  /** Several records in one transaction: all of them, or none. */
  addMany(records: T[], nowMs: number, expiryMs: number): void {
    this.db.transaction(() => {
      for (const record of records) this.add(record, nowMs, expiryMs);
    });
  }

  /** Unexpired records, oldest first, at most `limit`. */
  oldest(nowMs: number, limit: number): Array<QueuedRecord<T>> {
    return this.stmts.oldest.all(nowMs, limit).map((r) => ({ seq: r.seq, record: JSON.parse(r.record) as T, enqueuedMs: r.enqueued_ms }));
  }

  /** Records the service accepted (or rejected): gone for good. Returns how many were still there. */
  remove(seqs: number[]): number {
    let removed = 0;
    this.db.transaction(() => {
      for (const seq of seqs) removed += this.stmts.delete.run(seq).changes;
    });
    return removed;
  }

  /** Removes the expired records; returns how many. */
  expire(nowMs: number): number {
    return this.stmts.expire.run(nowMs).changes;
  }

  /** How many records wait. */
  count(): number {
    return this.stmts.count.get()?.n ?? 0;
  }

  /** Removes the `count` oldest records (to keep a queue nobody takes from bounded); returns how many. */
  dropOldest(count: number): number {
    return this.stmts.dropOldest.run(count).changes;
  }
}
