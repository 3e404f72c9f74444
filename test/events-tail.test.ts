import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EventLog } from '../src/hub/events/event-log.js';
import { openDatabase } from '../src/hub/store/database.js';
import { EventStore } from '../src/hub/store/event-store.js';
import { telemetry } from './events-support.js';
import { liveMemory } from './helpers/memory.js';

// The event log's in-memory tail is bounded in bytes as well as in events; readers behind it read
// from the store.

function memoryLog(options: ConstructorParameters<typeof EventLog>[1] = {}) {
  const store = new EventStore(openDatabase(':memory:'));
  return new EventLog(store, { partitionCount: 1, ...options });
}

/** A body of `bytes` bytes that starts with its index. */
function bigBody(index: number, bytes: number): Buffer {
  const body = Buffer.alloc(bytes, index % 251);
  body.writeUInt32BE(index, 0);
  return body;
}

describe('event log tail', () => {
  test('large events with no reader stay within the byte bound, and a late reader gets every one from the store', async () => {
    const tailBytes = 8 * 1024 * 1024;
    const log = memoryLog({ tailBytes });
    const count = 200;
    const size = 250 * 1024;
    const before = liveMemory().arrayBuffers;
    // 50 MB of IoT Hub's largest messages, appended as a device sends them, with nobody reading.
    for (let i = 0; i < count; i++) await log.append(telemetry('big-sender', i, { body: bigBody(i, size) }));
    const held = liveMemory().arrayBuffers - before;
    assert.ok(held < 2 * tailBytes, `the hub holds ${held} bytes of buffers for ${count * size} bytes appended`);

    let next = 0;
    while (next < count) {
      const events = log.read(0, next, 16);
      assert.ok(events.length > 0, `events from ${next} on are readable`);
      for (const event of events) {
        assert.equal(event.sequenceNumber, next);
        assert.equal(event.body.length, size);
        assert.equal(event.body.readUInt32BE(0), next, `event ${next} has its own body`);
        assert.equal(event.body[size - 1], next % 251);
        next++;
      }
    }
    await log.close();
  });

  test('a small event does not keep alive the larger buffer its body was parsed from', async () => {
    const log = memoryLog();
    // As MQTT parses them: each body a view of the socket read it came in.
    const socketRead = Buffer.alloc(64 * 1024, 'm');
    const stored = await log.appendMany(Array.from({ length: 10 }, (_, i) =>
      telemetry('small-sender', i, { body: socketRead.subarray(i * 100, i * 100 + 100) })));
    const tail = log.read(0, stored[0]!.sequenceNumber, 10);
    assert.equal(tail.length, 10);
    for (const event of tail) {
      assert.equal(event.body.toString(), 'm'.repeat(100));
      assert.notEqual(event.body.buffer, socketRead.buffer, 'the tail keeps a copy, not the 64 KB read');
    }
    await log.close();
  });
});
