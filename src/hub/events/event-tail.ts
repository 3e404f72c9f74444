import type { StoredEvent } from '../store/event-store.js';

/** What an event costs the tail beyond its body: the object, its properties and their strings. */
const EVENT_OVERHEAD_BYTES = 256;

/**
 * The newest committed events of each partition, in memory: live readers ask for what was just
 * appended, and reading it back from SQLite (and parsing it again) cost more than the insert.
 * Each partition keeps a contiguous run of sequence numbers ending at the last one committed, of at
 * most 2 × `capacity` events and `maxBytes` bytes (bodies and a per-event estimate of the rest);
 * past either it drops its oldest, down to `capacity` events and half of `maxBytes`, so that a trim
 * is rare. A read outside the run returns undefined and the caller goes to the store.
 */
export class EventTail {
  private readonly partitions = new Map<number, { first: number; events: StoredEvent[]; bytes: number }>();

  constructor(
    private readonly capacity: number,
    private readonly maxBytes: number,
  ) {}

  /** Adds committed events, in sequence order per partition. */
  add(events: StoredEvent[]): void {
    for (const batch of byPartition(events).values()) this.addToPartition(compact(batch));
  }

  private addToPartition(events: StoredEvent[]): void {
    for (const event of events) {
      let run = this.partitions.get(event.partition);
      if (!run || run.first + run.events.length !== event.sequenceNumber) {
        // First event of this partition seen here, or a gap: start a new run rather than serve a hole.
        run = { first: event.sequenceNumber, events: [], bytes: 0 };
        this.partitions.set(event.partition, run);
      }
      run.events.push(event);
      run.bytes += sizeOf(event);
      if (run.events.length >= 2 * this.capacity || run.bytes > this.maxBytes) {
        let drop = 0;
        while (drop < run.events.length && (run.events.length - drop > this.capacity || run.bytes > this.maxBytes / 2)) {
          run.bytes -= sizeOf(run.events[drop++]!);
        }
        run.events.splice(0, drop);
        run.first += drop;
      }
    }
  }

  /**
   * Up to `max` events from `fromSequence` on, if the tail holds `fromSequence` or it is the next to
   * come (then: none yet); undefined when the store must answer.
   */
  read(partition: number, fromSequence: number, max: number): StoredEvent[] | undefined {
    const run = this.partitions.get(partition);
    if (!run || fromSequence < run.first || fromSequence > run.first + run.events.length) return undefined;
    const start = fromSequence - run.first;
    return run.events.slice(start, start + max);
  }

  /** The bytes the tail holds now, over all partitions. */
  bytes(): number {
    let total = 0;
    for (const run of this.partitions.values()) total += run.bytes;
    return total;
  }

  /** Forgets everything (retention deleted events from the store, which the tail must not serve). */
  clear(): void {
    this.partitions.clear();
  }
}

function sizeOf(event: StoredEvent): number {
  return event.body.length + EVENT_OVERHEAD_BYTES;
}

function byPartition(events: StoredEvent[]): Map<number, StoredEvent[]> {
  const partitions = new Map<number, StoredEvent[]>();
  for (const event of events) {
    const batch = partitions.get(event.partition);
    if (batch) batch.push(event);
    else partitions.set(event.partition, [event]);
  }
  return partitions;
}

/**
 * The events with bodies on memory of their own. A body parsed from MQTT is a view of the whole
 * socket read it came in (up to 64 KB, shared with the packets around it): kept as it is, a small
 * event would hold all of that for as long as it stays in the tail, and the byte bound would not
 * bound memory. The views are copied into one buffer per batch and partition (an allocation per
 * body cost the D2C path more than the copy): a trim frees it once its last event is dropped.
 */
function compact(events: StoredEvent[]): StoredEvent[] {
  const isView = (body: Buffer) => body.byteLength < body.buffer.byteLength;
  let bytes = 0;
  for (const event of events) if (isView(event.body)) bytes += event.body.length;
  if (bytes === 0) return events;
  const memory = Buffer.allocUnsafeSlow(bytes);
  let at = 0;
  return events.map((event) => {
    if (!isView(event.body)) return event;
    const body = memory.subarray(at, at + event.body.length);
    at += event.body.copy(memory, at);
    return { ...event, body };
  });
}
