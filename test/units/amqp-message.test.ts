import { test } from 'node:test';
import assert from 'node:assert/strict';
import rhea, { type Message } from 'rhea';
import { encodeAmqpMessage } from '../../src/hub/events/amqp-message.js';
import type { PartitionInfo, StoredEvent } from '../../src/hub/events/event-log.js';

// The hub encodes events itself; rhea's generic encoder, given the same message, is the reference:
// the bytes must be the same, and rhea (what the Event Hubs SDK decodes with) must read them back.

function reference(event: StoredEvent, runtime?: PartitionInfo, retrievedAt?: Date): Buffer {
  const enqueued = new Date(event.enqueuedTimeMs);
  const { messageId, correlationId, contentType, contentEncoding, userId } = event.systemProperties;
  const message: Message = {
    body: rhea.message.data_section(event.body),
    application_properties: event.properties,
    message_annotations: {
      ...event.annotations,
      'iothub-enqueuedtime': enqueued,
      'x-opt-sequence-number': rhea.types.wrap_long(event.sequenceNumber),
      'x-opt-offset': event.offset,
      'x-opt-enqueued-time': enqueued,
    },
  };
  if (messageId !== undefined) message.message_id = messageId;
  if (correlationId !== undefined) message.correlation_id = correlationId;
  if (contentType !== undefined) message.content_type = contentType;
  if (contentEncoding !== undefined) message.content_encoding = contentEncoding;
  if (userId !== undefined) message.user_id = Buffer.from(userId) as unknown as string;
  if (runtime) {
    message.delivery_annotations = {
      last_enqueued_sequence_number: rhea.types.wrap_long(runtime.lastSequenceNumber),
      last_enqueued_offset: runtime.lastOffset,
      last_enqueued_time_utc: new Date(runtime.lastEnqueuedTimeMs),
      runtime_info_retrieval_time_utc: retrievedAt,
    };
  }
  return rhea.message.encode(message);
}

function event(overrides: Partial<StoredEvent> = {}): StoredEvent {
  return {
    partition: 2,
    body: Buffer.from('{"temperature":21.5}'),
    systemProperties: { messageId: 'msg-1', correlationId: 'corr-1', contentType: 'application/json', contentEncoding: 'utf-8' },
    annotations: {
      'iothub-connection-device-id': 'dev-1',
      'iothub-connection-auth-method': '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
      'iothub-connection-auth-generation-id': '638123456789012345',
      'iothub-message-source': 'Telemetry',
    },
    properties: { temperatureAlert: 'false' },
    sequenceNumber: 41,
    offset: '8192',
    enqueuedTimeMs: 1_764_500_000_123,
    ...overrides,
  };
}

const long = (n: number, unit = 'x') => unit.repeat(n);

const cases: Array<[string, StoredEvent]> = [
  ['a typical telemetry message', event()],
  ['no system properties: an empty properties list', event({ systemProperties: {} })],
  ['only a user id (binary), trailing fields left off', event({ systemProperties: { userId: 'user-7' } })],
  ['only a content encoding, the fields before it null', event({ systemProperties: { contentEncoding: 'utf-8' } })],
  ['no application properties', event({ properties: {} })],
  ['no stamps (a module-less, stamp-less event)', event({ annotations: {} })],
  ['sequence numbers beyond a small long', event({ sequenceNumber: 128 })],
  ['sequence numbers beyond 32 bits', event({ sequenceNumber: 2 ** 40 + 3 })],
  ['a 255-byte body (vbin8)', event({ body: Buffer.alloc(255, 1) })],
  ['a 256-byte body (vbin32)', event({ body: Buffer.alloc(256, 2) })],
  ['a 256 KiB body', event({ body: Buffer.alloc(256 * 1024, 3) })],
  ['an empty body', event({ body: Buffer.alloc(0) })],
  ['strings of 255 and 256 bytes', event({ properties: { a: long(255), [long(256, 'k')]: long(256) } })],
  [
    'multi-byte text under 256 bytes that might not have been',
    event({ properties: { température: long(100, 'é') }, systemProperties: { messageId: long(90, '日') } }),
  ],
  ['multi-byte text over 256 bytes', event({ properties: { emoji: long(100, '🌡') }, systemProperties: { correlationId: long(200, 'ж') } })],
  [
    'a long symbol (content type) and offset',
    event({ systemProperties: { contentType: `application/${long(300)}` }, offset: '123456789012' }),
  ],
];

for (const [name, e] of cases) {
  test(`AMQP encoding: ${name} is byte for byte rhea's`, () => {
    assert.deepEqual(encodeAmqpMessage(e), reference(e));
  });
}

test('AMQP encoding: an event is encoded once and shared when no receiver metric is asked', () => {
  const e = event();
  assert.equal(encodeAmqpMessage(e), encodeAmqpMessage(e));
});

test('AMQP encoding: the runtime metric adds delivery annotations rhea decodes, per call', () => {
  const e = event({ sequenceNumber: 300 });
  for (const runtime of [
    {
      partition: 2,
      beginSequenceNumber: 0,
      lastSequenceNumber: 300,
      lastOffset: '8192',
      lastEnqueuedTimeMs: e.enqueuedTimeMs,
      isEmpty: false,
    },
    { partition: 2, beginSequenceNumber: 0, lastSequenceNumber: -1, lastOffset: '-1', lastEnqueuedTimeMs: 0, isEmpty: true },
  ]) {
    const before = Date.now();
    const encoded = encodeAmqpMessage(e, runtime);
    const decoded = rhea.message.decode(encoded) as unknown as { delivery_annotations: Record<string, unknown> };
    const retrievedAt = decoded.delivery_annotations.runtime_info_retrieval_time_utc as Date;
    assert.ok(retrievedAt instanceof Date && retrievedAt.getTime() >= before && retrievedAt.getTime() <= Date.now());
    assert.deepEqual(encoded, reference(e, runtime, retrievedAt));
    assert.equal(decoded.delivery_annotations.last_enqueued_sequence_number, runtime.lastSequenceNumber);
    assert.notEqual(encodeAmqpMessage(e, runtime), encoded, 'a fresh encoding per receiver');
  }
});

test('AMQP encoding: rhea reads back every section', () => {
  const e = event({
    systemProperties: { messageId: 'm', correlationId: 'c', contentType: 'application/json', contentEncoding: 'utf-8', userId: 'u' },
  });
  const decoded = rhea.message.decode(encodeAmqpMessage(e));
  assert.equal(decoded.message_id, 'm');
  assert.equal(decoded.correlation_id, 'c');
  assert.equal(decoded.content_type, 'application/json');
  assert.equal(decoded.content_encoding, 'utf-8');
  assert.deepEqual(decoded.user_id, Buffer.from('u'));
  assert.deepEqual(decoded.application_properties, { temperatureAlert: 'false' });
  assert.deepEqual((decoded.body as { content: Buffer }).content, e.body);
  const annotations = decoded.message_annotations as Record<string, unknown>;
  assert.equal(annotations['iothub-connection-device-id'], 'dev-1');
  assert.equal(annotations['x-opt-sequence-number'], 41);
  assert.equal(annotations['x-opt-offset'], '8192');
  assert.deepEqual(annotations['x-opt-enqueued-time'], new Date(e.enqueuedTimeMs));
});
