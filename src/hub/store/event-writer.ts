import { Worker } from 'node:worker_threads';
import type { Db } from './database.js';

// Where the event log's inserts and fsync'd COMMITs run. With a database file, a worker thread with
// its own connection does them, so the hub's event loop keeps parsing MQTT and sending AMQP while
// the disk syncs; an in-memory database cannot be shared with a thread, so there they run in-thread.

/** One row of the events table, in its column order. */
export type EventRowValues = [
  partition: number, sequence: number, offset: number, enqueuedMs: number,
  bodyStart: number, bodyEnd: number,
  messageId: string | null, correlationId: string | null, contentType: string | null,
  contentEncoding: string | null, userId: string | null, properties: string,
];

/** A partition's counters after a batch, as the event_partitions table keeps them. */
export type PartitionAdvance = [partition: number, nextSequence: number, nextOffset: number, lastOffset: number, lastEnqueuedMs: number];

/**
 * One transaction's worth of events. The bodies travel as one buffer (rows point into it), which
 * must own its memory: it is transferred to the writer thread, not copied. (A Buffer from a socket
 * is a view of a larger pooled one, which postMessage would copy whole, per message.)
 */
export interface EventBatch {
  rows: EventRowValues[];
  advances: PartitionAdvance[];
  bodies: Uint8Array;
}

export interface EventWriter {
  /** Resolves once the batch is committed (on disk, for a file); rejects if none of it is. One at a time. */
  write(batch: EventBatch): Promise<void>;
  /** Ends the writer; a write in flight finishes first. */
  close(): Promise<void>;
}

/** The events table's writes, on a connection of either thread. */
export function batchCommitter(db: Db): (batch: EventBatch) => void {
  const insert = db.prepare(
    `INSERT INTO events (partition, sequence, offset, enqueued_ms, body,
       message_id, correlation_id, content_type, content_encoding, user_id, properties)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const advance = db.prepare(
    `UPDATE event_partitions SET next_sequence = ?, next_offset = ?, last_offset = ?, last_enqueued_ms = ?
     WHERE partition = ?`);
  const commit = db.transaction((batch: EventBatch) => {
    const bodies = Buffer.from(batch.bodies.buffer, batch.bodies.byteOffset, batch.bodies.byteLength);
    for (const [partition, sequence, offset, enqueuedMs, bodyStart, bodyEnd, ...columns] of batch.rows) {
      insert.run(partition, sequence, offset, enqueuedMs, bodies.subarray(bodyStart, bodyEnd), ...columns);
    }
    for (const [partition, nextSequence, nextOffset, lastOffset, lastEnqueuedMs] of batch.advances) {
      if (advance.run(nextSequence, nextOffset, lastOffset, lastEnqueuedMs, partition).changes !== 1) {
        throw new RangeError(`No event partition ${partition}`);
      }
    }
  });
  return (batch) => commit.immediate(batch);
}

/** Opens the writer for `db`: a worker thread for a file, the connection itself for ':memory:'. */
export function openEventWriter(db: Db): EventWriter {
  return db.memory ? new InThreadEventWriter(batchCommitter(db)) : new ThreadEventWriter(db.name);
}

class InThreadEventWriter implements EventWriter {
  constructor(private readonly commit: (batch: EventBatch) => void) {}

  async write(batch: EventBatch): Promise<void> {
    this.commit(batch);
  }

  async close(): Promise<void> {}
}

/** What the thread answers per batch. */
export type WriterReply = { ok: true } | { ok: false; message: string };

class ThreadEventWriter implements EventWriter {
  private readonly worker: Worker;
  private inFlight?: { resolve: () => void; reject: (err: Error) => void };
  /** The last write, settled either way: what close() waits for. */
  private lastWrite: Promise<unknown> = Promise.resolve();
  /** Set once the thread is gone: every later write fails with it. */
  private ended?: Error;

  constructor(path: string) {
    // The thread inherits Node's flags (--cpu-prof, --import...), except --input-type, which a
    // thread started from a file refuses (a hub run from `node --input-type=module -e` would lose D2C).
    const execArgv = process.execArgv.filter((arg) => !arg.startsWith('--input-type'));
    this.worker = new Worker(new URL('./event-writer-thread.js', import.meta.url), { workerData: { path }, execArgv });
    // Referenced only while a commit is in flight: an idle writer never keeps the process alive.
    this.worker.unref();
    this.worker.on('message', (reply: WriterReply) => this.settle(reply.ok ? undefined : new Error(reply.message)));
    this.worker.on('error', (err) => this.end(err));
    this.worker.on('exit', (code) => this.end(new Error(`The event writer thread exited (code ${code})`)));
  }

  write(batch: EventBatch): Promise<void> {
    if (this.ended) return Promise.reject(this.ended);
    const written = new Promise<void>((resolve, reject) => {
      this.inFlight = { resolve, reject };
      this.worker.ref();
      this.worker.postMessage(batch, [batch.bodies.buffer as ArrayBuffer]);
    });
    this.lastWrite = written.catch(() => undefined);
    return written;
  }

  async close(): Promise<void> {
    await this.lastWrite;
    if (this.ended) return;
    this.ended = new Error('The event writer is closed');
    await this.worker.terminate();
  }

  private settle(error: Error | undefined): void {
    const pending = this.inFlight;
    this.inFlight = undefined;
    this.worker.unref();
    if (error) pending?.reject(error);
    else pending?.resolve();
  }

  private end(error: Error): void {
    this.ended ??= error;
    this.settle(this.ended);
  }
}
