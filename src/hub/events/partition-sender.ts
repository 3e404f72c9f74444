import type { Writable } from 'node:stream';
import type { Sender } from 'rhea';
import { encodeAmqpMessage } from './amqp-message.js';
import { sendSettled } from './settled-transfer.js';
import type { EventLog } from './event-log.js';

/** rhea state this module reads: it counts credit only when a queued delivery goes on the wire. */
interface SenderInternals {
  credit: number;
  delivery_count: number;
  session: { outgoing: { available(): number } };
}

const readChunk = 100;

/**
 * Feeds one receiver link from one partition: events from a start sequence number on, as far as the
 * link credit the client grants allows, then live as the log announces new ones. No polling: it
 * wakes on the client's flow ('sendable') and on the log's 'appended'.
 */
export class PartitionSender {
  private next: number;
  /** The link's delivery count once every delivery queued in rhea has gone out. */
  private queuedUntil = 0;
  private closed = false;
  private readonly onAppended = (partition: number): void => {
    if (partition === this.partition) this.pump();
  };

  constructor(
    readonly link: Sender,
    private readonly eventLog: EventLog,
    private readonly partition: number,
    startSequence: number,
    private readonly runtimeMetric: boolean,
    private readonly onClose: () => void,
  ) {
    this.next = startSequence;
    link.on('sender_close', () => this.close());
    link.on('sender_error', () => this.close());
    // rhea writes a session's transfers before its links' attach frames: a delivery queued in the
    // tick the link attached (say, on credit that came with the attach) would reach the client
    // before the attach, on a handle it does not know. So feed the link from the next turn on.
    setImmediate(() => {
      if (this.closed) return;
      eventLog.on('appended', this.onAppended);
      link.on('sendable', () => this.pump());
      this.pump();
    });
  }

  /** Stops feeding the link (the link, its session or its connection is gone). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.eventLog.off('appended', this.onAppended);
    this.onClose();
  }

  private pump(): void {
    if (this.closed) return;
    if (!this.link.is_open()) return this.close();
    const rhea = this.link as unknown as SenderInternals;
    const queued = Math.max(0, this.queuedUntil - rhea.delivery_count);
    let room = Math.min(rhea.credit - queued, rhea.session.outgoing.available());
    while (room > 0) {
      const events = this.eventLog.read(this.partition, this.next, Math.min(room, readChunk));
      if (events.length === 0) return;
      const runtime = this.runtimeMetric ? this.eventLog.partitionInfo(this.partition) : undefined;
      corkUntilWritten(this.link);
      for (const event of events) {
        const payload = encodeAmqpMessage(event, runtime);
        if (sendSettled(this.link, payload)) continue;
        this.link.send(payload, undefined, 0);
        this.queuedUntil = Math.max(this.queuedUntil, rhea.delivery_count) + 1;
      }
      this.next = events[events.length - 1]!.sequenceNumber + 1;
      room -= events.length;
    }
  }
}

/**
 * A pump's transfers leave in one writev: the socket is corked until the next tick, by when those
 * written here are in its buffer. (rhea writes the ones it sends in a process.nextTick queued by the
 * first of them, which may run after the uncork: they still go out, in order, in writes of their own.)
 */
function corkUntilWritten(link: Sender): void {
  const socket = (link.connection as unknown as { socket?: Writable }).socket;
  if (!socket || socket.writableCorked) return;
  socket.cork();
  process.nextTick(() => socket.uncork());
}
