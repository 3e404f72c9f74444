import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { inflateRawSync } from 'node:zlib';
import avsc from 'avsc';
import { avroBlock, avroFile, MESSAGE_SCHEMA, type AvroCodec, type AvroMessage } from '../../src/hub/routing/avro.js';

/** IoT Hub's schema, written out here as the oracle rather than taken from the module under test. */
const IOT_HUB_SCHEMA = {
  type: 'record',
  name: 'Message',
  namespace: 'Microsoft.Azure.Devices',
  fields: [
    { name: 'EnqueuedTimeUtc', type: 'string' },
    { name: 'Properties', type: { type: 'map', values: 'string' } },
    { name: 'SystemProperties', type: { type: 'map', values: 'string' } },
    { name: 'Body', type: ['null', 'bytes'] },
  ],
};

const CODECS: AvroCodec[] = ['null', 'deflate'];
const SYNC = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');

interface Decoded {
  records: AvroMessage[];
  codec: string;
  meta: Record<string, Buffer>;
  sync: Buffer;
  blocks: { count: number; raw: number; compressed: number }[];
}

/** Decodes a whole container file with avsc, the independent reader. */
function decode(file: Buffer): Promise<Decoded> {
  return new Promise((resolve, reject) => {
    const decoder = new avsc.streams.BlockDecoder();
    const records: AvroMessage[] = [];
    const blocks: Decoded['blocks'] = [];
    let header: { codec: string; meta: Record<string, Buffer>; sync: Buffer } | undefined;
    decoder.on('metadata', (_type: unknown, codec: string, h: { meta: Record<string, Buffer>; sync: Buffer }) => {
      header = { codec, meta: h.meta, sync: h.sync };
    });
    decoder.on('block', (b: { valueCount: number; rawDataLength: number; compressedDataLength: number }) => {
      blocks.push({ count: b.valueCount, raw: b.rawDataLength, compressed: b.compressedDataLength });
    });
    decoder.on('data', (r: AvroMessage) => {
      // avsc's records are instances of a generated class: compare them as plain objects.
      records.push({ EnqueuedTimeUtc: r.EnqueuedTimeUtc, Properties: r.Properties, SystemProperties: r.SystemProperties, Body: r.Body });
    });
    decoder.on('error', reject);
    decoder.on('end', () => {
      if (!header) reject(new Error('no header decoded'));
      else resolve({ records, blocks, ...header });
    });
    decoder.end(file);
  });
}

const longType = avsc.Type.forSchema('long');
const messageType = avsc.Type.forSchema(IOT_HUB_SCHEMA as avsc.Schema);

/** Splits one data block into its parts, checking nothing is left over. */
function splitBlock(block: Buffer): { count: number; data: Buffer; sync: Buffer } {
  const count = longType.decode(block, 0);
  const size = longType.decode(block, count.offset);
  const data = block.subarray(size.offset, size.offset + size.value);
  const sync = block.subarray(size.offset + size.value);
  assert.equal(sync.length, 16, 'the block ends with exactly the sync marker after its declared byte size');
  return { count: count.value, data, sync };
}

const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

function message(i: number, overrides: Partial<AvroMessage> = {}): AvroMessage {
  return {
    EnqueuedTimeUtc: new Date(Date.UTC(2024, 0, 1, 0, 0, i)).toISOString(),
    Properties: { seq: String(i), kind: 'telemetry' },
    SystemProperties: {
      connectionDeviceId: `device-${i}`,
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      enqueuedTime: new Date(Date.UTC(2024, 0, 1, 0, 0, i)).toISOString(),
    },
    Body: Buffer.from(JSON.stringify({ temperature: 20 + i, humidity: 50 })),
    ...overrides,
  };
}

/** Messages covering what the encoding must get right. */
function varied(): AvroMessage[] {
  const many: Record<string, string> = {};
  for (let i = 0; i < 200; i++) many[`property-${i}`] = `value ${i} `.repeat(i % 7);
  return [
    message(0),
    message(1, { Properties: {}, SystemProperties: {}, Body: null }),
    message(2, {
      EnqueuedTimeUtc: '2024-01-01T00:00:02.0000000Z ✓ ünïcødé 温度 🌡️',
      Properties: { 'clé-é': 'välue 🚀', 温度: '二十度', '': '', empty: '' },
      Body: Buffer.from('température: 21 °C 🌡️'),
    }),
    message(3, { Properties: many }),
    message(4, { Body: everyByte }),
    message(5, { Body: Buffer.alloc(0) }),
    message(6, { Body: randomBytes(300 * 1024) }),
    // String lengths either side of the varint's one-, two- and three-byte boundaries.
    ...[63, 64, 8191, 8192].map((n, k) =>
      message(7 + k, { EnqueuedTimeUtc: 'x'.repeat(n), Properties: { ['k'.repeat(n)]: 'v'.repeat(n) } }),
    ),
  ];
}

describe('avroFile', () => {
  for (const codec of CODECS) {
    test(`codec ${codec}: every record round-trips through an independent reader`, async () => {
      const messages = varied();
      const decoded = await decode(avroFile(messages, codec, SYNC));
      assert.equal(decoded.records.length, messages.length);
      for (let i = 0; i < messages.length; i++) assert.deepEqual(decoded.records[i], messages[i], `record ${i}`);
      assert.deepEqual(decoded.records[4].Body, everyByte);
      assert.equal(decoded.records[6].Body?.length, 300 * 1024);
      assert.deepEqual(
        decoded.blocks.map((b) => b.count),
        [messages.length],
      );
    });

    test(`codec ${codec}: the header names IoT Hub's schema, the codec and the sync marker`, async () => {
      const file = avroFile([message(0)], codec, SYNC);
      assert.deepEqual(file.subarray(0, 4), Buffer.from('Obj\x01', 'latin1'));
      const decoded = await decode(file);
      assert.equal(decoded.codec, codec);
      assert.deepEqual(Object.keys(decoded.meta).sort(), ['avro.codec', 'avro.schema']);
      assert.equal(decoded.meta['avro.codec'].toString(), codec);
      assert.deepEqual(JSON.parse(decoded.meta['avro.schema'].toString()), IOT_HUB_SCHEMA);
      assert.equal(decoded.meta['avro.schema'].toString(), MESSAGE_SCHEMA);
      assert.deepEqual(decoded.sync, SYNC);
      assert.deepEqual(file.subarray(-16), SYNC, 'the data block ends with the sync marker');
    });

    test(`codec ${codec}: no messages make the header alone`, async () => {
      const file = avroFile([], codec, SYNC);
      const decoded = await decode(file);
      assert.deepEqual(decoded.records, []);
      assert.deepEqual(decoded.blocks, []);
      assert.equal(decoded.codec, codec);
      assert.deepEqual(file.subarray(-16), SYNC, 'the header ends with the sync marker');
      const withOne = avroFile([message(0)], codec, SYNC);
      assert.deepEqual(withOne.subarray(0, file.length), file, 'the header is the same with messages after it');
      assert.deepEqual(withOne.subarray(file.length), avroBlock([message(0)], codec, SYNC), 'and the one data block follows it');
    });

    test(`codec ${codec}: a block appended with the same sync marker decodes after the first, in order`, async () => {
      const first = [message(0), message(1, { Body: null }), message(2, { Body: everyByte })];
      const second = [message(3, { Properties: {} }), message(4, { Body: randomBytes(1000) })];
      const third = [message(5)];
      const file = Buffer.concat([avroFile(first, codec, SYNC), avroBlock(second, codec, SYNC), avroBlock(third, codec, SYNC)]);
      const decoded = await decode(file);
      assert.deepEqual(decoded.records, [...first, ...second, ...third]);
      // avsc reports blocks as their decompression ends (deflate's is asynchronous), so in any order.
      assert.deepEqual(decoded.blocks.map((b) => b.count).sort(), [1, 2, 3], 'three blocks');
    });

    test(`codec ${codec}: a block written with another sync marker does not decode after the file`, async () => {
      const other = Buffer.alloc(16, 0xa5);
      const file = Buffer.concat([avroFile([message(0)], codec, SYNC), avroBlock([message(1)], codec, other)]);
      await assert.rejects(decode(file), /invalid sync marker/);
    });
  }

  test('the deflate codec compresses the records with raw DEFLATE', async () => {
    const messages = Array.from({ length: 50 }, (_, i) => message(i));
    const plain = avroFile(messages, 'null', SYNC);
    const deflated = avroFile(messages, 'deflate', SYNC);
    assert.ok(
      deflated.length < plain.length / 2,
      `deflate (${deflated.length} bytes) must shrink repetitive records (${plain.length} bytes)`,
    );
    const [block] = (await decode(deflated)).blocks;
    assert.ok(block.compressed < block.raw, 'the block holds fewer bytes than the records it decompresses to');
    const [plainBlock] = (await decode(plain)).blocks;
    assert.equal(plainBlock.compressed, plainBlock.raw, 'the null codec stores the records as they are');
  });
});

describe('avroBlock', () => {
  test('the null codec: the count, the byte size, each record as avsc serializes it, then the sync marker', () => {
    const messages = varied();
    const block = avroBlock(messages, 'null', SYNC);
    const { count, data, sync } = splitBlock(block);
    assert.equal(count, messages.length);
    assert.deepEqual(data, Buffer.concat(messages.map((m) => messageType.toBuffer(m))));
    assert.deepEqual(sync, SYNC);
  });

  test('the deflate codec: the data is the same records, raw-deflated (no zlib header)', () => {
    const messages = varied();
    const { count, data, sync } = splitBlock(avroBlock(messages, 'deflate', SYNC));
    assert.equal(count, messages.length);
    // inflateRawSync refuses a zlib-wrapped stream, so this also shows there is no zlib header.
    assert.deepEqual(inflateRawSync(data), Buffer.concat(messages.map((m) => messageType.toBuffer(m))));
    assert.deepEqual(sync, SYNC);
  });

  test('the block is exactly what avroFile writes after its header', () => {
    const messages = [message(0), message(1)];
    for (const codec of CODECS) {
      const file = avroFile(messages, codec, SYNC);
      const block = avroBlock(messages, codec, SYNC);
      assert.deepEqual(file.subarray(file.length - block.length), block);
    }
  });

  test('no messages: nothing to append', () => {
    assert.equal(avroBlock([], 'deflate', SYNC).length, 0);
  });
});

describe('the sync marker', () => {
  for (const length of [0, 15, 17, 32]) {
    test(`${length} bytes is refused`, () => {
      const sync = Buffer.alloc(length, 1);
      for (const codec of CODECS) {
        assert.throws(() => avroFile([message(0)], codec, sync), /16 bytes/);
        assert.throws(() => avroFile([], codec, sync), /16 bytes/);
        assert.throws(() => avroBlock([message(0)], codec, sync), /16 bytes/);
        assert.throws(() => avroBlock([], codec, sync), /16 bytes/);
      }
    });
  }
});
