import type { Delivery, EventContext, Message, Sender } from 'rhea';
import type { QueuedRecord } from '../store/record-queue.js';

/** Where a service link's records wait: a durable queue, oldest first. */
export interface RecordSource<T> {
  waiting(limit: number): Array<QueuedRecord<T>>;
  settle(seqs: number[]): void;
}

/**
 * Sends a queue's records (delivery feedback, file upload notifications) to the service's links
 * that receive them: `batch` records to a message, to each link while it has credit. A record out
 * on a link is not sent again until the link settles it: accepted or rejected, it is gone; released
 * or modified, or its link gone first, it goes out again.
 */
export class RecordSender<T> {
  private readonly links = new Set<Sender>();
  /** Records on their way to a receiver, by the delivery that carries them. */
  private readonly inFlight = new Map<Delivery, number[]>();
  private readonly sending = new Set<number>();

  constructor(
    private readonly source: RecordSource<T>,
    private readonly batch: number,
    private readonly toMessage: (records: T[]) => Message,
  ) {}

  add(link: Sender): void {
    this.links.add(link);
    link.on('sendable', () => this.send());
    link.on('accepted', (context: EventContext) => this.settled(context.delivery!, true));
    link.on('rejected', (context: EventContext) => this.settled(context.delivery!, true));
    link.on('released', (context: EventContext) => this.settled(context.delivery!, false));
    link.on('modified', (context: EventContext) => this.settled(context.delivery!, false));
    this.send();
  }

  /** What a link took and did not settle goes to the next receiver. */
  gone(link: Sender): void {
    if (!this.links.delete(link)) return;
    for (const [delivery, seqs] of this.inFlight) {
      if (delivery.link !== link) continue;
      this.inFlight.delete(delivery);
      for (const seq of seqs) this.sending.delete(seq);
    }
    this.send();
  }

  /** Sends the records no receiver holds yet to the links with credit. */
  send(): void {
    for (const link of this.links) {
      while (link.sendable()) {
        const records = this.source
          .waiting(this.batch + this.sending.size)
          .filter((r) => !this.sending.has(r.seq))
          .slice(0, this.batch);
        if (records.length === 0) return;
        const delivery = link.send(this.toMessage(records.map((r) => r.record)));
        const seqs = records.map((r) => r.seq);
        for (const seq of seqs) this.sending.add(seq);
        this.inFlight.set(delivery, seqs);
      }
    }
  }

  private settled(delivery: Delivery, done: boolean): void {
    const seqs = this.inFlight.get(delivery);
    if (!seqs) return;
    this.inFlight.delete(delivery);
    for (const seq of seqs) this.sending.delete(seq);
    if (done) this.source.settle(seqs);
    else this.send();
  }
}
