import { Worker } from 'node:worker_threads';
import type { Db } from './database.js';
import { DiskFullError } from './disk-space.js';
import { WriteTurns } from './write-turns.js';

// Where the event log's inserts and fsync'd COMMITs run. With a database file, a worker thread with
// its own connection does them, so the hub's event loop keeps parsing MQTT and sending AMQP while
// the disk syncs; an in-memory database cannot be shared with a thread, so there they run in-thread.

/** A partition's counters after a batch, as the event_partitions table keeps them. */
export type PartitionAdvance = [partition: number, nextSequence: number, nextOffset: number, lastOffset: number, lastEnqueuedMs: number];

/**
 * One transaction's worth of events: their rows packed into one buffer (see EventRowPacker), which
 * owns its memory and is transferred to the writer thread, not copied. Packing costs the event loop a
 * byte copy per string; structured-cloning the rows as arrays cost it several times that.
 */
export interface EventBatch {
  packed: Uint8Array;
  rows: number;
  advances: PartitionAdvance[];
}

/** The text columns of an events row after its numbers, in table order; null is SQL NULL. */
export type EventRowTexts = [
  messageId: string | null,
  correlationId: string | null,
  contentType: string | null,
  contentEncoding: string | null,
  userId: string | null,
];

const NULL_TEXT = -1;

/**
 * Writes events rows one after another: partition, sequence, offset and enqueued time as float64s,
 * the body and each text as a length (int32; -1 for NULL) and bytes, then the properties JSON, which
 * is written in parts (`{prefix}{application}{suffix}}`) so that the per-sender prefix is never copied into
 * a string per message.
 */
export class EventRowPacker {
  private buf: Buffer;
  private at = 0;
  private rows = 0;

  constructor(bytesHint: number) {
    // Not from Buffer's pool, so that it can be transferred.
    this.buf = Buffer.allocUnsafeSlow(Math.max(4096, bytesHint));
  }

  /** Adds a row; returns the bytes of its texts and properties, which the offset counts. */
  add(
    numbers: [partition: number, sequence: number, offset: number, enqueuedMs: number],
    body: Buffer,
    texts: EventRowTexts,
    propertiesPrefix: string,
    application: string,
    propertiesSuffix = '',
  ): number {
    this.room(32 + 4 + body.length);
    for (const n of numbers) this.at = this.buf.writeDoubleLE(n, this.at);
    this.at = this.buf.writeInt32LE(body.length, this.at);
    this.at += body.copy(this.buf, this.at);
    let textBytes = 0;
    for (const text of texts) textBytes += this.text(text);
    const properties = this.at;
    this.at += 4;
    this.raw(propertiesPrefix);
    this.raw(application);
    this.raw(propertiesSuffix);
    this.raw('}');
    const propertiesBytes = this.at - properties - 4;
    this.buf.writeInt32LE(propertiesBytes, properties);
    this.rows++;
    return textBytes + propertiesBytes;
  }

  batch(advances: PartitionAdvance[]): EventBatch {
    return { packed: new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.at), rows: this.rows, advances };
  }

  private text(value: string | null): number {
    if (value === null) {
      this.room(4);
      this.at = this.buf.writeInt32LE(NULL_TEXT, this.at);
      return 0;
    }
    const lengthAt = this.at;
    this.at += 4;
    const bytes = this.raw(value);
    this.buf.writeInt32LE(bytes, lengthAt);
    return bytes;
  }

  private raw(value: string): number {
    this.room(4 + value.length * 3); // UTF-8 bytes per UTF-16 unit, at most
    const bytes = this.buf.write(value, this.at, 'utf8');
    this.at += bytes;
    return bytes;
  }

  private room(bytes: number): void {
    if (this.at + bytes <= this.buf.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.at + bytes));
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
  }
}

/** The rows EventRowPacker wrote, as the INSERT binds them. */
function* unpackRows(batch: EventBatch): Generator<[number, number, number, number, Buffer, ...EventRowTexts, string]> {
  const buf = Buffer.from(batch.packed.buffer, batch.packed.byteOffset, batch.packed.byteLength);
  let at = 0;
  const number = () => ((at += 8), buf.readDoubleLE(at - 8));
  const length = () => ((at += 4), buf.readInt32LE(at - 4));
  const bytes = (n: number) => ((at += n), buf.subarray(at - n, at));
  const text = () => {
    const n = length();
    return n === NULL_TEXT ? null : bytes(n).toString('utf8');
  };
  for (let row = 0; row < batch.rows; row++) {
    yield [number(), number(), number(), number(), bytes(length()), text(), text(), text(), text(), text(), text()!];
  }
}

export interface EventWriter {
  /** Resolves once the batch is committed (on disk, for a file); rejects if none of it is. One at a time. */
  write(batch: EventBatch): Promise<void>;
  /** False once the writer can write nothing more (its thread is gone, or it was closed). */
  readonly alive: boolean;
  /** Ends the writer; a write in flight finishes first. */
  close(): Promise<void>;
}

/** The events table's writes, on a connection of either thread. */
export function batchCommitter(db: Db): (batch: EventBatch) => void {
  const insert = db.prepare(
    `INSERT INTO events (partition, sequence, offset, enqueued_ms, body,
       message_id, correlation_id, content_type, content_encoding, user_id, properties)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const advance = db.prepare(
    `UPDATE event_partitions SET next_sequence = ?, next_offset = ?, last_offset = ?, last_enqueued_ms = ?
     WHERE partition = ?`,
  );
  return (batch) =>
    db.transaction(() => {
      for (const row of unpackRows(batch)) insert.run(...row);
      for (const [partition, nextSequence, nextOffset, lastOffset, lastEnqueuedMs] of batch.advances) {
        if (advance.run(nextSequence, nextOffset, lastOffset, lastEnqueuedMs, partition).changes !== 1) {
          throw new RangeError(`No event partition ${partition}`);
        }
      }
    });
}

/** Opens the writer for `db`: a worker thread for a file, the connection itself for ':memory:'. */
export function openEventWriter(db: Db): EventWriter {
  return db.memory ? new InThreadEventWriter(batchCommitter(db)) : new ThreadEventWriter(db);
}

class InThreadEventWriter implements EventWriter {
  readonly alive = true;

  constructor(private readonly commit: (batch: EventBatch) => void) {}

  async write(batch: EventBatch): Promise<void> {
    this.commit(batch);
  }

  async close(): Promise<void> {}
}

/** What the thread answers per batch. */
export type WriterReply = { ok: true } | { ok: false; message: string; noSpace: boolean };

class ThreadEventWriter implements EventWriter {
  private readonly worker: Worker;
  private inFlight?: { resolve: () => void; reject: (err: Error) => void };
  /** The last write, settled either way: what close() waits for. */
  private lastWrite: Promise<unknown> = Promise.resolve();
  /** Set once the thread is gone: every later write fails with it. */
  private ended?: Error;
  private readonly turns = new WriteTurns();

  constructor(private readonly db: Db) {
    // Started as a one-line eval that imports the thread's module: so the thread inherits Node's flags
    // as Node filters them for threads (--cpu-prof yes; --max-old-space-size and other per-process
    // flags, which an explicit execArgv may not hold, no), and --input-type, which a thread started from
    // a file refuses, does no harm (`node --input-type=module -e` or `node --max-old-space-size=...`
    // running the hub would otherwise lose D2C).
    const module = new URL('./event-writer-thread.js', import.meta.url).href;
    db.turns = this.turns;
    this.worker = new Worker(`import(${JSON.stringify(module)})`, { eval: true, workerData: { path: db.path, turns: this.turns.flags } });
    // Referenced only while a commit is in flight: an idle writer never keeps the process alive.
    this.worker.unref();
    this.worker.on('message', (reply: WriterReply) =>
      this.settle(reply.ok ? undefined : reply.noSpace ? new DiskFullError() : new Error(reply.message)),
    );
    this.worker.on('error', (err) => this.end(err));
    this.worker.on('exit', (code) => this.end(new Error(`The event writer thread exited (code ${code})`)));
  }

  get alive(): boolean {
    return this.ended === undefined;
  }

  write(batch: EventBatch): Promise<void> {
    if (this.ended) return Promise.reject(this.ended);
    const written = new Promise<void>((resolve, reject) => {
      this.inFlight = { resolve, reject };
      this.worker.ref();
      this.worker.postMessage(batch, [batch.packed.buffer as ArrayBuffer]);
    });
    this.lastWrite = written.catch(() => undefined);
    // The thread's connection has no log: the hub's side tells of its commits (time includes the hand-over).
    if (this.db.tracing) {
      const started = performance.now();
      const writes = [
        ...Array<string>(batch.rows).fill('INSERT events'),
        ...Array<string>(batch.advances.length).fill('UPDATE event_partitions'),
      ];
      void written.then(
        () => this.db.logCommit(writes, started),
        () => undefined, // a failed write is the append's to report
      );
    }
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
    // A thread that died in a commit never gave its turn back: the hub's connection must not wait for it.
    this.turns.writerLeave();
    this.settle(this.ended);
  }
}
