import type { StoredEvent } from '../store/event-store.js';

/** What an event costs the tail beyond its body's memory: the object, its properties and their strings. */
const EVENT_OVERHEAD_BYTES = 256;

/** One partition's run of events, and the memory they keep alive. */
interface Run {
  first: number;
  events: StoredEvent[];
  bytes: number;
  /** How many events of the run point into each buffer. */
  buffers: Map<ArrayBufferLike, number>;
}

/**
 * The newest committed events of each partition, in memory: live readers ask for what was just
 * appended, and reading it back from SQLite (and parsing it again) cost more than the insert.
 * Each partition keeps a contiguous run of sequence numbers ending at the last one committed, of at
 * most 2 × `capacity` events and `maxBytes` bytes; past either it drops its oldest, down to
 * `capacity` events and half of `maxBytes`, so that a trim is rare. A read outside the run returns
 * undefined and the caller goes to the store.
 *
 * Bytes are the memory the run keeps alive: a body parsed from MQTT is a view of the whole socket
 * read it came in (up to 64 KB, shared with the packets around it), so each buffer the bodies point
 * into counts once, whole, while any event points into it, plus an estimate per event for the rest.
 * (Copying small bodies out instead cost the D2C path more than the rest of the tail.)
 */
export class EventTail {
  private readonly partitions = new Map<number, Run>();

  constructor(
    private readonly capacity: number,
    private readonly maxBytes: number,
  ) {}

  /** Adds committed events, in sequence order per partition. */
  add(events: StoredEvent[]): void {
    for (const event of events) {
      let run = this.partitions.get(event.partition);
      if (!run || run.first + run.events.length !== event.sequenceNumber) {
        // First event of this partition seen here, or a gap: start a new run rather than serve a hole.
        run = { first: event.sequenceNumber, events: [], bytes: 0, buffers: new Map() };
        this.partitions.set(event.partition, run);
      }
      run.events.push(event);
      keep(run, event);
      if (run.events.length >= 2 * this.capacity || run.bytes > this.maxBytes) {
        let drop = 0;
        while (drop < run.events.length && (run.events.length - drop > this.capacity || run.bytes > this.maxBytes / 2)) {
          release(run, run.events[drop++]!);
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

  /** Forgets everything (retention deleted events from the store, which the tail must not serve). */
  clear(): void {
    this.partitions.clear();
  }
}

function keep(run: Run, event: StoredEvent): void {
  const memory = event.body.buffer;
  const holders = run.buffers.get(memory) ?? 0;
  if (holders === 0) run.bytes += memory.byteLength;
  run.buffers.set(memory, holders + 1);
  run.bytes += EVENT_OVERHEAD_BYTES;
}

function release(run: Run, event: StoredEvent): void {
  const memory = event.body.buffer;
  const holders = run.buffers.get(memory)!;
  if (holders === 1) {
    run.buffers.delete(memory);
    run.bytes -= memory.byteLength;
  } else {
    run.buffers.set(memory, holders - 1);
  }
  run.bytes -= EVENT_OVERHEAD_BYTES;
}
