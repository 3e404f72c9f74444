import { EventEmitter } from 'node:events';
import type { EventLog, StoredEvent } from '../events/event-log.js';

/** A device-to-cloud message as the dashboard shows it. */
export interface TelemetryMessage {
  deviceId: string;
  moduleId?: string;
  partition: number;
  sequenceNumber: number;
  /** ISO time. */
  enqueuedTime: string;
  /** The message's own system properties (message id, correlation id, content type...) and IoT Hub's iothub-* stamps. */
  systemProperties: Record<string, string>;
  /** The application properties the device set. */
  properties: Record<string, string>;
  body: MessageBody;
}

export interface MessageBody {
  bytes: number;
  /** The body as UTF-8 text (the first TEXT_LIMIT characters), absent when it is not UTF-8. */
  text?: string;
  /** The parsed body, when it is JSON. */
  json?: unknown;
  /** The first bytes, base64, when the body is not UTF-8 text. */
  base64?: string;
  truncated?: boolean;
}

const TEXT_LIMIT = 4096;
const JSON_LIMIT = 64 * 1024;
/** Per partition and commit, at most this many messages are decoded for the page; a burst shows its newest. */
const MAX_DECODED_PER_BATCH = 100;
const RATE_WINDOW_SECONDS = 10;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The dashboard's view of the hub's event log, read in-process: the rate of device-to-cloud messages
 * (counted from sequence numbers, at no cost per message), and while someone watches, each message
 * decoded for the page, from the log's in-memory tail.
 */
export class TelemetryFeed extends EventEmitter<{ messages: [TelemetryMessage[]] }> {
  private readonly lastSeen = new Map<number, number>();
  private readonly decodedUpTo = new Map<number, number>();
  /** Messages per second, the last RATE_WINDOW_SECONDS whole seconds; [second, count]. */
  private readonly perSecond: Array<[number, number]> = [];
  private totalSinceStart = 0;
  private watching = false;
  private readonly onAppended = (partition: number, last: number) => this.appended(partition, last);

  constructor(
    private readonly log: EventLog,
    private readonly now: () => number = Date.now,
  ) {
    super();
    for (let p = 0; p < log.partitionCount; p++) this.lastSeen.set(p, log.partitionInfo(p).lastSequenceNumber);
    log.on('appended', this.onAppended);
  }

  /** Messages appended since the hub started. */
  get total(): number {
    return this.totalSinceStart;
  }

  /** Messages per second over the last ten seconds. */
  rate(): number {
    const since = Math.floor(this.now() / 1000) - RATE_WINDOW_SECONDS;
    const counted = this.perSecond.filter(([second]) => second >= since).reduce((sum, [, count]) => sum + count, 0);
    return counted / RATE_WINDOW_SECONDS;
  }

  /** Decode and emit each new message (while a page is watching), or stop. */
  watch(on: boolean): void {
    if (on && !this.watching) for (const [partition, last] of this.lastSeen) this.decodedUpTo.set(partition, last);
    this.watching = on;
  }

  /** The newest `limit` messages of the log, oldest first. */
  recent(limit: number): TelemetryMessage[] {
    const events: StoredEvent[] = [];
    for (let p = 0; p < this.log.partitionCount; p++) {
      const info = this.log.partitionInfo(p);
      const from = Math.max(info.beginSequenceNumber, info.lastSequenceNumber - limit + 1);
      if (!info.isEmpty) events.push(...this.log.read(p, from, limit));
    }
    events.sort((a, b) => a.enqueuedTimeMs - b.enqueuedTimeMs);
    return events.slice(-limit).map(toMessage);
  }

  close(): void {
    this.log.off('appended', this.onAppended);
  }

  private appended(partition: number, last: number): void {
    const previous = this.lastSeen.get(partition) ?? -1;
    this.lastSeen.set(partition, last);
    this.count(last - previous);
    if (!this.watching) return;
    const from = Math.max((this.decodedUpTo.get(partition) ?? previous) + 1, last - MAX_DECODED_PER_BATCH + 1);
    this.decodedUpTo.set(partition, last);
    const messages = this.log.read(partition, from, last - from + 1).map(toMessage);
    if (messages.length > 0) this.emit('messages', messages);
  }

  private count(messages: number): void {
    this.totalSinceStart += messages;
    const second = Math.floor(this.now() / 1000);
    const latest = this.perSecond.at(-1);
    if (latest?.[0] === second) latest[1] += messages;
    else this.perSecond.push([second, messages]);
    while (this.perSecond.length > RATE_WINDOW_SECONDS + 1) this.perSecond.shift();
  }
}

function toMessage(event: StoredEvent): TelemetryMessage {
  const stamps = event.annotations;
  const systemProperties: Record<string, string> = { ...definedStrings(event.systemProperties), ...stamps };
  systemProperties['iothub-enqueuedtime'] = new Date(event.enqueuedTimeMs).toISOString();
  return {
    deviceId: stamps['iothub-connection-device-id'],
    ...(stamps['iothub-connection-module-id'] ? { moduleId: stamps['iothub-connection-module-id'] } : {}),
    partition: event.partition,
    sequenceNumber: event.sequenceNumber,
    enqueuedTime: systemProperties['iothub-enqueuedtime'],
    systemProperties,
    properties: event.properties,
    body: decodeBody(event.body),
  };
}

function definedStrings(record: object): Record<string, string> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => typeof value === 'string'));
}

function decodeBody(body: Buffer): MessageBody {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return { bytes: body.length, base64: body.subarray(0, TEXT_LIMIT).toString('base64'), truncated: body.length > TEXT_LIMIT };
  }
  const decoded: MessageBody = { bytes: body.length, text: text.slice(0, TEXT_LIMIT) };
  if (text.length > TEXT_LIMIT) decoded.truncated = true;
  if (body.length <= JSON_LIMIT) {
    try {
      decoded.json = JSON.parse(text);
    } catch {
      // not JSON: the text stands
    }
  }
  return decoded;
}
