import { deflateRawSync } from 'node:zlib';

/**
 * The Apache Avro object container file (Avro 1.11 specification) IoT Hub's message routing writes
 * to a storage endpoint when its encoding is "Avro" (codec null) or "AvroDeflate" (codec deflate).
 * Only what that needs is here: IoT Hub's one record schema, written with no runtime dependency.
 */

/** One routed message as IoT Hub's Avro schema has it. */
export interface AvroMessage {
  EnqueuedTimeUtc: string;
  Properties: Record<string, string>;
  SystemProperties: Record<string, string>;
  Body: Buffer | null;
}

export type AvroCodec = 'null' | 'deflate';

/** IoT Hub's record schema, as JSON text (what goes in the file's avro.schema metadata). */
export const MESSAGE_SCHEMA: string = JSON.stringify({
  type: 'record',
  name: 'Message',
  namespace: 'Microsoft.Azure.Devices',
  fields: [
    { name: 'EnqueuedTimeUtc', type: 'string' },
    { name: 'Properties', type: { type: 'map', values: 'string' } },
    { name: 'SystemProperties', type: { type: 'map', values: 'string' } },
    { name: 'Body', type: ['null', 'bytes'] },
  ],
});

const MAGIC = Buffer.from([0x4f, 0x62, 0x6a, 0x01]); // 'Obj' then version 1
const SYNC_SIZE = 16;
const CODECS: readonly AvroCodec[] = ['null', 'deflate'];

/**
 * A whole container file: header (magic 'Obj\x01', metadata map with avro.schema and avro.codec, the
 * 16-byte sync marker) and one data block holding every message. With no messages, the header alone.
 */
export function avroFile(messages: AvroMessage[], codec: AvroCodec, sync: Buffer): Buffer {
  checkCodec(codec);
  checkSync(sync);
  const out = new Chunks();
  out.raw(MAGIC);
  // The file metadata: a map whose values are bytes.
  out.long(2);
  out.string('avro.schema');
  out.bytes(Buffer.from(MESSAGE_SCHEMA, 'utf8'));
  out.string('avro.codec');
  out.bytes(Buffer.from(codec, 'utf8'));
  out.long(0);
  out.raw(sync);
  out.raw(avroBlock(messages, codec, sync));
  return out.concat();
}

/**
 * One data block (object count, byte size, the records, compressed with the codec, then the sync
 * marker): what is appended to an existing file written with the same codec and sync marker. With no
 * messages there is nothing to append, and the result is empty.
 */
export function avroBlock(messages: AvroMessage[], codec: AvroCodec, sync: Buffer): Buffer {
  checkCodec(codec);
  checkSync(sync);
  if (messages.length === 0) return Buffer.alloc(0);
  const records = new Chunks();
  for (const message of messages) writeMessage(records, message);
  const serialized = records.concat();
  const data = codec === 'deflate' ? deflateRawSync(serialized) : serialized;
  const out = new Chunks();
  out.long(messages.length);
  out.long(data.length);
  out.raw(data);
  out.raw(sync);
  return out.concat();
}

function checkCodec(codec: string): void {
  if (!CODECS.includes(codec as AvroCodec)) throw new RangeError(`Unknown Avro codec '${codec}': expected 'null' or 'deflate'`);
}

function checkSync(sync: Buffer): void {
  if (!(sync instanceof Uint8Array) || sync.length !== SYNC_SIZE) {
    const got = sync instanceof Uint8Array ? `${sync.length} bytes` : typeof sync;
    throw new RangeError(`An Avro sync marker is exactly ${SYNC_SIZE} bytes, not ${got}`);
  }
}

function writeMessage(out: Chunks, message: AvroMessage): void {
  if (typeof message.EnqueuedTimeUtc !== 'string') throw new TypeError('Avro message EnqueuedTimeUtc must be a string');
  out.string(message.EnqueuedTimeUtc);
  writeStringMap(out, message.Properties, 'Properties');
  writeStringMap(out, message.SystemProperties, 'SystemProperties');
  const body = message.Body;
  if (body === null || body === undefined) {
    out.long(0); // union branch 0: null
  } else if (body instanceof Uint8Array) {
    out.long(1); // union branch 1: bytes
    out.bytes(body);
  } else {
    throw new TypeError('Avro message Body must be a Buffer or null');
  }
}

/** A map of strings: one block (its count, then the key/value pairs), then the 0 count that ends it. */
function writeStringMap(out: Chunks, map: Record<string, string>, field: string): void {
  const entries = Object.entries(map ?? {});
  if (entries.length > 0) {
    out.long(entries.length);
    for (const [key, value] of entries) {
      if (typeof value !== 'string') throw new TypeError(`Avro message ${field}['${key}'] must be a string`);
      out.string(key);
      out.string(value);
    }
  }
  out.long(0);
}

/** The pieces of an encoding, joined once at the end. */
class Chunks {
  private readonly chunks: Buffer[] = [];

  raw(chunk: Uint8Array): void {
    this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }

  /**
   * An Avro long: zig-zag, then a little-endian base-128 varint. Computed on doubles, so exact for
   * every safe integer from -2^52 up (counts and lengths, all this file writes, are never negative).
   */
  long(n: number): void {
    if (!Number.isSafeInteger(n) || n < -(2 ** 52)) throw new RangeError(`Avro long out of range: ${n}`);
    let z = n >= 0 ? n * 2 : -n * 2 - 1;
    const bytes = Buffer.allocUnsafe(10);
    let i = 0;
    while (z >= 0x80) {
      bytes[i++] = (z % 0x80) | 0x80;
      z = Math.floor(z / 0x80);
    }
    bytes[i++] = z;
    this.chunks.push(bytes.subarray(0, i));
  }

  /** Avro bytes: the length as a long, then the bytes. */
  bytes(value: Uint8Array): void {
    this.long(value.byteLength);
    this.raw(value);
  }

  /** An Avro string: its UTF-8 bytes, written as bytes. */
  string(value: string): void {
    this.bytes(Buffer.from(value, 'utf8'));
  }

  concat(): Buffer {
    return Buffer.concat(this.chunks);
  }
}
