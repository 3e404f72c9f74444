import type { PartitionInfo, StoredEvent } from './event-log.js';

// An event as an Event Hubs receiver gets it, encoded for the wire (AMQP 1.0 message format, part 3):
// the device's body as a data section, its message and application properties, IoT Hub's iothub-*
// stamps and Event Hubs' x-opt-* position as message annotations (which the SDK shows as
// `systemProperties`, apart from the x-opt-* it lifts out). With `runtime` (the receiver asked for
// com.microsoft:enable-receiver-runtime-metric) the partition's last enqueued event rides along as
// delivery annotations.
//
// Encoded here rather than by rhea's generic writer, which was the largest cost of the hub's D2C path
// after the socket writes: it wraps every value in an object and allocates a zero-filled buffer per
// message. The bytes are the ones rhea writes for the same message (a test compares them).

const SECTION = {
  header: 0x70,
  deliveryAnnotations: 0x71,
  messageAnnotations: 0x72,
  properties: 0x73,
  applicationProperties: 0x74,
  data: 0x75,
};
const CODE = {
  described: 0x00,
  smallUlong: 0x53,
  null: 0x40,
  list0: 0x45,
  smallLong: 0x55,
  long: 0x81,
  timestamp: 0x83,
  vbin8: 0xa0,
  str8: 0xa1,
  sym8: 0xa3,
  vbin32: 0xb0,
  str32: 0xb1,
  sym32: 0xb3,
  list32: 0xd0,
  map32: 0xd1,
};

/** Writes into one growing scratch buffer; `take` copies out what was written. */
class Encoder {
  private buf = Buffer.allocUnsafeSlow(16 * 1024);
  private at = 0;

  /**
   * `own`: in memory of its own, not a slice of Node's shared pool (64 KiB chunks on Node 24): an
   * encoding kept as long as its event stays in the tail would keep alive the whole chunk it shares.
   */
  take(own: boolean): Buffer {
    const out = own ? Buffer.allocUnsafeSlow(this.at) : Buffer.allocUnsafe(this.at);
    this.buf.copy(out, 0, 0, this.at);
    this.at = 0;
    return out;
  }

  section(code: number): void {
    this.room(3);
    this.buf[this.at++] = CODE.described;
    this.buf[this.at++] = CODE.smallUlong;
    this.buf[this.at++] = code;
  }

  byte(value: number): void {
    this.room(1);
    this.buf[this.at++] = value;
  }

  /** str8/str32 or sym8/sym32: the short form when the UTF-8 is under 256 bytes. */
  text(value: string, code8: number, code32: number): void {
    const most = value.length * 3; // UTF-8 bytes per UTF-16 unit, at most
    this.room(5 + most);
    if (most < 256) {
      const length = this.buf.write(value, this.at + 2, 'utf8');
      this.buf[this.at] = code8;
      this.buf[this.at + 1] = length;
      this.at += 2 + length;
      return;
    }
    const length = this.buf.write(value, this.at + 5, 'utf8');
    if (length < 256) {
      this.buf.copyWithin(this.at + 2, this.at + 5, this.at + 5 + length);
      this.buf[this.at] = code8;
      this.buf[this.at + 1] = length;
      this.at += 2 + length;
    } else {
      this.buf[this.at] = code32;
      this.buf.writeUInt32BE(length, this.at + 1);
      this.at += 5 + length;
    }
  }

  string(value: string): void {
    this.text(value, CODE.str8, CODE.str32);
  }

  symbol(value: string): void {
    this.text(value, CODE.sym8, CODE.sym32);
  }

  binary(value: Buffer): void {
    this.room(5 + value.length);
    if (value.length < 256) {
      this.buf[this.at++] = CODE.vbin8;
      this.buf[this.at++] = value.length;
    } else {
      this.buf[this.at++] = CODE.vbin32;
      this.at = this.buf.writeUInt32BE(value.length, this.at);
    }
    this.at += value.copy(this.buf, this.at);
  }

  long(value: number): void {
    this.room(9);
    if (value >= -128 && value <= 127) {
      this.buf[this.at++] = CODE.smallLong;
      this.at = this.buf.writeInt8(value, this.at);
    } else {
      this.buf[this.at++] = CODE.long;
      this.at = this.buf.writeBigInt64BE(BigInt(Math.trunc(value)), this.at);
    }
  }

  timestamp(ms: number): void {
    this.room(9);
    this.buf[this.at++] = CODE.timestamp;
    this.at = this.buf.writeBigInt64BE(BigInt(Math.trunc(ms)), this.at);
  }

  /** Opens a map32 or list32; `end` closes it with its element count. */
  begin(code: number): number {
    this.room(9);
    this.buf[this.at] = code;
    const start = this.at + 1;
    this.at += 9;
    return start;
  }

  end(start: number, count: number): void {
    this.buf.writeUInt32BE(this.at - start - 4, start);
    this.buf.writeUInt32BE(count, start + 4);
  }

  private room(bytes: number): void {
    if (this.at + bytes <= this.buf.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.at + bytes));
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
  }
}

const encoder = new Encoder();

/** The properties section's fields up to creation-time, in order, and how each is encoded. */
const PROPERTY_FIELDS = [
  'messageId',
  'userId',
  'to',
  'subject',
  'replyTo',
  'correlationId',
  'contentType',
  'contentEncoding',
  'absoluteExpiryTimeMs',
  'creationTimeMs',
] as const;

function encode(event: StoredEvent, runtime?: PartitionInfo): Buffer {
  const e = encoder;
  e.section(SECTION.header);
  e.byte(CODE.list0);
  if (runtime) {
    e.section(SECTION.deliveryAnnotations);
    const map = e.begin(CODE.map32);
    e.symbol('last_enqueued_sequence_number');
    e.long(runtime.lastSequenceNumber);
    e.symbol('last_enqueued_offset');
    e.string(runtime.lastOffset);
    e.symbol('last_enqueued_time_utc');
    e.timestamp(runtime.lastEnqueuedTimeMs);
    e.symbol('runtime_info_retrieval_time_utc');
    e.timestamp(Date.now());
    e.end(map, 8);
  }

  e.section(SECTION.messageAnnotations);
  const annotations = e.begin(CODE.map32);
  let count = 0;
  for (const key in event.annotations) {
    e.symbol(key);
    e.string(event.annotations[key]!);
    count += 2;
  }
  e.symbol('iothub-enqueuedtime');
  e.timestamp(event.enqueuedTimeMs);
  e.symbol('x-opt-sequence-number');
  e.long(event.sequenceNumber);
  e.symbol('x-opt-offset');
  e.string(event.offset);
  e.symbol('x-opt-enqueued-time');
  e.timestamp(event.enqueuedTimeMs);
  e.end(annotations, count + 8);

  // A list of the fields up to the last one set; an empty one when none is.
  const system = event.systemProperties as Record<(typeof PROPERTY_FIELDS)[number], string | number | undefined>;
  let fields: number = PROPERTY_FIELDS.length;
  while (fields > 0 && system[PROPERTY_FIELDS[fields - 1]!] === undefined) fields--;
  e.section(SECTION.properties);
  if (fields === 0) {
    e.byte(CODE.list0);
  } else {
    const list = e.begin(CODE.list32);
    for (let i = 0; i < fields; i++) {
      const name = PROPERTY_FIELDS[i]!;
      const value = system[name];
      if (value === undefined) e.byte(CODE.null);
      else if (typeof value === 'number')
        e.timestamp(value); // absolute-expiry-time, creation-time
      else if (name === 'userId')
        e.binary(Buffer.from(value)); // AMQP's user-id is binary
      else if (name === 'contentType' || name === 'contentEncoding') e.symbol(value);
      else e.string(value);
    }
    e.end(list, fields);
  }

  e.section(SECTION.applicationProperties);
  const application = e.begin(CODE.map32);
  count = 0;
  for (const key in event.properties) {
    e.string(key);
    e.string(event.properties[key]!);
    count += 2;
  }
  e.end(application, count);

  e.section(SECTION.data);
  e.binary(event.body);
  return e.take(runtime === undefined);
}

/** Encoded messages of events without per-receiver parts, shared by every receiver of the event. */
const encoded = new WeakMap<StoredEvent, Buffer>();

/**
 * The event encoded for the wire, as rhea's `Sender.send(payload, undefined, 0)` takes it. Without
 * `runtime` nothing in it depends on the receiver, so an event held in the log's in-memory tail is
 * encoded once however many consumer groups read it.
 */
export function encodeAmqpMessage(event: StoredEvent, runtime?: PartitionInfo): Buffer {
  if (runtime) return encode(event, runtime);
  let payload = encoded.get(event);
  if (!payload) {
    payload = encode(event);
    encoded.set(event, payload);
  }
  return payload;
}
