import type { Db } from './database.js';
import { DiskFullError } from './disk-space.js';
import { EventRowPacker, openEventWriter, type EventWriter, type PartitionAdvance } from './event-writer.js';

// The device-to-cloud event log on disk: one append-only stream per partition, as an Event Hub keeps.
// Sequence numbers are contiguous per partition from 0 and never reused (retention removes events from
// the head only); offsets grow by each event's stored size, so they are ordered but not contiguous.

/** The AMQP properties section IoT Hub keeps on a device-to-cloud message. */
export interface EventSystemProperties {
  messageId?: string;
  correlationId?: string;
  contentType?: string;
  contentEncoding?: string;
  userId?: string;
  to?: string;
  absoluteExpiryTimeMs?: number;
  creationTimeMs?: number;
}

export interface NewEvent {
  partition: number;
  body: Buffer;
  systemProperties: EventSystemProperties;
  /** IoT Hub's stamps (iothub-connection-device-id, ...), carried as message annotations. */
  annotations: Record<string, string>;
  /** The application properties the device set. */
  properties: Record<string, string>;
}

export interface StoredEvent extends NewEvent {
  sequenceNumber: number;
  /** Opaque, ordered position in the partition, a decimal string as Event Hubs gives it. */
  offset: string;
  enqueuedTimeMs: number;
}

export interface PartitionInfo {
  partition: number;
  /** The first sequence number still retained (the next one to come when the partition is empty). */
  beginSequenceNumber: number;
  /** -1 when nothing was ever enqueued. */
  lastSequenceNumber: number;
  /** '-1' when nothing was ever enqueued. */
  lastOffset: string;
  /** 0 when nothing was ever enqueued. */
  lastEnqueuedTimeMs: number;
  isEmpty: boolean;
}

export interface HubInfo {
  partitionCount: number;
  createdAtMs: number;
}

interface PartitionRow {
  next_sequence: number;
  next_offset: number;
  last_offset: number;
  last_enqueued_ms: number;
}

interface EventRow {
  partition: number;
  sequence: number;
  offset: number;
  enqueued_ms: number;
  body: Uint8Array;
  message_id: string | null;
  correlation_id: string | null;
  content_type: string | null;
  content_encoding: string | null;
  user_id: string | null;
  properties: string;
}

/**
 * The `properties` column: a message's annotations and application properties, and the system
 * properties that have no column of their own (`system`, absent from rows of older hubs and where none is set).
 */
interface PropertiesColumn {
  annotations: Record<string, string>;
  application: Record<string, string>;
  system?: Pick<EventSystemProperties, 'to' | 'absoluteExpiryTimeMs' | 'creationTimeMs'>;
}

const schema = `
  CREATE TABLE IF NOT EXISTS event_hub (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    partition_count INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS event_partitions (
    partition INTEGER PRIMARY KEY,
    next_sequence INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    last_offset INTEGER NOT NULL,
    last_enqueued_ms INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS events (
    partition INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    enqueued_ms INTEGER NOT NULL,
    body BLOB NOT NULL,
    message_id TEXT,
    correlation_id TEXT,
    content_type TEXT,
    content_encoding TEXT,
    user_id TEXT,
    properties TEXT NOT NULL,
    PRIMARY KEY (partition, sequence)
  );
  -- Offsets and enqueued times never go back within a partition: they are found by a binary search
  -- over sequence numbers (see firstSequenceWhere), not through indexes every insert would pay for.
  DROP INDEX IF EXISTS events_by_offset;
  DROP INDEX IF EXISTS events_by_time;
`;

export class EventStore {
  private readonly statements;
  /** Started with the first append, so that a store only read from starts no thread. */
  private writer?: EventWriter;
  /**
   * Each partition's counters as of the last commit, read from the table once: this store is the
   * table's only writer, so positions are assigned here without a read per append.
   */
  private readonly committed = new Map<number, PartitionRow>();
  private appending = false;
  /** See propertiesPrefix. */
  private readonly propertiesPrefixes = new WeakMap<object, string>();
  private closed = false;

  constructor(private readonly db: Db) {
    db.exec(schema);
    this.statements = {
      hub: db.prepare<[], { partition_count: number; created_ms: number }>(
        'SELECT partition_count, created_ms FROM event_hub WHERE id = 1',
      ),
      createHub: db.prepare('INSERT INTO event_hub (id, partition_count, created_ms) VALUES (1, ?, ?)'),
      createPartition: db.prepare(
        `INSERT OR IGNORE INTO event_partitions (partition, next_sequence, next_offset, last_offset, last_enqueued_ms)
         VALUES (?, 0, 0, -1, 0)`,
      ),
      partition: db.prepare<[number], PartitionRow>(
        'SELECT next_sequence, next_offset, last_offset, last_enqueued_ms FROM event_partitions WHERE partition = ?',
      ),
      read: db.prepare<[number, number, number], EventRow>(
        'SELECT * FROM events WHERE partition = ? AND sequence >= ? ORDER BY sequence LIMIT ?',
      ),
      first: db.prepare<[number], { sequence: number }>('SELECT sequence FROM events WHERE partition = ? ORDER BY sequence LIMIT 1'),
      last: db.prepare<[number], { sequence: number }>('SELECT sequence FROM events WHERE partition = ? ORDER BY sequence DESC LIMIT 1'),
      position: db.prepare<[number, number], { offset: number; enqueued_ms: number }>(
        'SELECT offset, enqueued_ms FROM events WHERE partition = ? AND sequence = ?',
      ),
      pruneBefore: db.prepare('DELETE FROM events WHERE partition = ? AND sequence < ?'),
    };
  }

  /**
   * The hub's partition layout, fixed at creation as in IoT Hub. The first call creates it with
   * `partitionCount` partitions; later calls return what was created (whatever they ask for).
   */
  ensureHub(partitionCount: number, nowMs: number): HubInfo {
    return this.db.transaction(() => {
      const existing = this.statements.hub.get();
      if (existing) return { partitionCount: existing.partition_count, createdAtMs: existing.created_ms };
      this.statements.createHub.run(partitionCount, nowMs);
      for (let p = 0; p < partitionCount; p++) this.statements.createPartition.run(p);
      return { partitionCount, createdAtMs: nowMs };
    });
  }

  /**
   * Appends the events in one transaction; resolves once they are on disk, and rejects if none of
   * them is. One append at a time (the event log's group commit waits for each).
   */
  async append(events: NewEvent[], nowMs: number): Promise<StoredEvent[]> {
    if (this.closed) throw new Error('The event store is closed');
    if (this.appending) throw new Error('One append at a time');
    if (events.length === 0) return [];
    this.appending = true;
    try {
      const { batch, stored, partitions } = this.positioned(events, nowMs);
      const writer = (this.writer ??= openEventWriter(this.db));
      try {
        await writer.write(batch);
      } catch (err) {
        if (!writer.alive && !this.closed) this.writer = undefined; // its thread is gone: a new one takes the next batch
        throw this.db.space.refused(err); // a full disk is told once, and refused as IoT Hub refuses a write
      }
      for (const [partition, state] of partitions) this.committed.set(partition, state);
      return stored;
    } finally {
      this.appending = false;
    }
  }

  /** Waits for an append in flight and ends the writer. */
  async close(): Promise<void> {
    this.closed = true;
    await this.writer?.close();
  }

  /** Events of a partition from `fromSequence` on (inclusive), oldest first, at most `limit`. */
  read(partition: number, fromSequence: number, limit: number): StoredEvent[] {
    return this.statements.read.all(partition, fromSequence, limit).map(toStoredEvent);
  }

  /** The first retained event enqueued after `timeMs` (or at it, when inclusive). */
  firstSequenceAfterTime(partition: number, timeMs: number, inclusive: boolean): number | undefined {
    return this.firstSequenceWhere(partition, (row) => (inclusive ? row.enqueued_ms >= timeMs : row.enqueued_ms > timeMs));
  }

  /** The first retained event whose offset is after `offset` (or equal to it, when inclusive). */
  firstSequenceAfterOffset(partition: number, offset: number, inclusive: boolean): number | undefined {
    return this.firstSequenceWhere(partition, (row) => (inclusive ? row.offset >= offset : row.offset > offset));
  }

  /**
   * The first retained sequence number of `partition` whose row passes `test`, which must be false up
   * to some row and true from it on (true of later offsets and enqueued times, which never go back).
   * A binary search by primary key: retained sequence numbers are contiguous, from the first to the
   * last (retention deletes from the head only).
   */
  private firstSequenceWhere(partition: number, test: (row: { offset: number; enqueued_ms: number }) => boolean): number | undefined {
    const first = this.statements.first.get(partition)?.sequence;
    const last = this.statements.last.get(partition)?.sequence;
    if (first === undefined || last === undefined) return undefined;
    let [low, high] = [first, last + 1]; // the answer is in [low, high]; high means none
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      if (test(this.statements.position.get(partition, middle)!)) high = middle;
      else low = middle + 1;
    }
    return low <= last ? low : undefined;
  }

  partitionInfo(partition: number): PartitionInfo {
    const row = this.partitionRow(partition);
    const first = this.statements.first.get(partition)?.sequence;
    return {
      partition,
      beginSequenceNumber: first ?? row.next_sequence,
      lastSequenceNumber: row.next_sequence - 1,
      lastOffset: String(row.last_offset),
      lastEnqueuedTimeMs: row.last_enqueued_ms,
      isEmpty: first === undefined,
    };
  }

  /**
   * Retention: deletes events enqueued before `olderThanMs`, and in each partition all but the newest
   * `maxPerPartition`. Returns how many events were deleted.
   */
  prune(olderThanMs: number, maxPerPartition: number): number {
    try {
      return this.deleteOld(olderThanMs, maxPerPartition);
    } catch (err) {
      if (err instanceof DiskFullError) return 0; // deleting needs room in the WAL too: the next run deletes
      throw err;
    }
  }

  private deleteOld(olderThanMs: number, maxPerPartition: number): number {
    return this.db.transaction(() => {
      let deleted = 0;
      const partitions = this.statements.hub.get()?.partition_count ?? 0;
      for (let p = 0; p < partitions; p++) {
        const next = this.partitionRow(p).next_sequence;
        const firstRecent = this.firstSequenceAfterTime(p, olderThanMs, true) ?? next;
        deleted += this.statements.pruneBefore.run(p, Math.max(firstRecent, next - maxPerPartition)).changes;
      }
      return deleted;
    });
  }

  /** Sequence numbers, offsets and enqueued times for `events`, and the batch that writes them. */
  private positioned(events: NewEvent[], nowMs: number) {
    const partitions = new Map<number, PartitionRow>();
    const packer = new EventRowPacker(events.length * 1024);
    const stored = events.map((event): StoredEvent => {
      let state = partitions.get(event.partition);
      if (!state) {
        state = { ...this.committedRow(event.partition) };
        partitions.set(event.partition, state);
      }
      const { messageId, correlationId, contentType, contentEncoding, userId, to, absoluteExpiryTimeMs, creationTimeMs } =
        event.systemProperties;
      const others = to === undefined && absoluteExpiryTimeMs === undefined && creationTimeMs === undefined;
      // Enqueued times never go back within a partition, even if the wall clock does.
      const enqueuedMs = Math.max(nowMs, state.last_enqueued_ms);
      const sequence = state.next_sequence;
      const offset = state.next_offset;
      const columnBytes = packer.add(
        [event.partition, sequence, offset, enqueuedMs],
        event.body,
        [messageId ?? null, correlationId ?? null, contentType ?? null, contentEncoding ?? null, userId ?? null],
        this.propertiesPrefix(event.annotations),
        JSON.stringify(event.properties),
        others ? '' : `,"system":${JSON.stringify({ to, absoluteExpiryTimeMs, creationTimeMs })}`,
      );
      // An offset advances by the event's stored size.
      state.next_sequence = sequence + 1;
      state.next_offset = offset + event.body.length + columnBytes;
      state.last_offset = offset;
      state.last_enqueued_ms = enqueuedMs;
      return {
        partition: event.partition,
        body: event.body,
        systemProperties: event.systemProperties,
        annotations: event.annotations,
        properties: event.properties,
        sequenceNumber: sequence,
        offset: String(offset),
        enqueuedTimeMs: enqueuedMs,
      };
    });
    const advances = [...partitions].map(([partition, state]): PartitionAdvance => [
      partition,
      state.next_sequence,
      state.next_offset,
      state.last_offset,
      state.last_enqueued_ms,
    ]);
    return { batch: packer.batch(advances), stored, partitions };
  }

  /**
   * The `properties` column (a PropertiesColumn's JSON) up to the application properties, encoded
   * once per annotations object: the event log gives all messages of a sender the same one.
   */
  private propertiesPrefix(annotations: Record<string, string>): string {
    let prefix = this.propertiesPrefixes.get(annotations);
    if (prefix === undefined) {
      prefix = `{"annotations":${JSON.stringify(annotations)},"application":`;
      this.propertiesPrefixes.set(annotations, prefix);
    }
    return prefix;
  }

  private committedRow(partition: number): PartitionRow {
    let row = this.committed.get(partition);
    if (!row) {
      row = this.partitionRow(partition);
      this.committed.set(partition, row);
    }
    return row;
  }

  private partitionRow(partition: number): PartitionRow {
    const row = this.statements.partition.get(partition);
    if (!row) throw new RangeError(`No event partition ${partition}`);
    return row;
  }
}

function toStoredEvent(row: EventRow): StoredEvent {
  const { annotations, application, system } = JSON.parse(row.properties) as PropertiesColumn;
  const systemProperties: EventSystemProperties = { ...system };
  if (row.message_id !== null) systemProperties.messageId = row.message_id;
  if (row.correlation_id !== null) systemProperties.correlationId = row.correlation_id;
  if (row.content_type !== null) systemProperties.contentType = row.content_type;
  if (row.content_encoding !== null) systemProperties.contentEncoding = row.content_encoding;
  if (row.user_id !== null) systemProperties.userId = row.user_id;
  return {
    partition: row.partition,
    sequenceNumber: row.sequence,
    offset: String(row.offset),
    enqueuedTimeMs: row.enqueued_ms,
    body: Buffer.from(row.body.buffer, row.body.byteOffset, row.body.byteLength),
    systemProperties,
    annotations,
    properties: application,
  };
}
