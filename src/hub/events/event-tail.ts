import type { StoredEvent } from '../store/event-store.js';

/**
 * The newest committed events of each partition, in memory: live readers ask for what was just
 * appended, and reading it back from SQLite (and parsing it again) cost more than the insert.
 * Each partition keeps a contiguous run of sequence numbers ending at the last one committed, at
 * least `capacity` of them once that many came (at most 2 × capacity; trimmed in halves so a trim is
 * rare). A read outside the run returns undefined and the caller goes to the store.
 */
export class EventTail {
  private readonly partitions = new Map<number, { first: number; events: StoredEvent[] }>();

  constructor(private readonly capacity: number) {}

  /** Adds committed events, in sequence order per partition. */
  add(events: StoredEvent[]): void {
    for (const event of events) {
      let run = this.partitions.get(event.partition);
      if (!run || run.first + run.events.length !== event.sequenceNumber) {
        // First event of this partition seen here, or a gap: start a new run rather than serve a hole.
        run = { first: event.sequenceNumber, events: [] };
        this.partitions.set(event.partition, run);
      }
      run.events.push(event);
      if (run.events.length >= 2 * this.capacity) {
        run.events.splice(0, this.capacity);
        run.first += this.capacity;
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
