import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EventLog } from '../src/hub/events/event-log.js';
import { openDatabase } from '../src/hub/store/database.js';
import { EventStore } from '../src/hub/store/event-store.js';
import { telemetry } from './helpers/events.js';
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

  test('small events count the socket reads their bodies point into, so those too stay within the bound', async () => {
    const tailBytes = 1024 * 1024;
    const log = memoryLog({ tailBytes });
    const before = liveMemory().arrayBuffers;
    // As MQTT parses them: each body a view of the 64 KB socket read it came in.
    for (let i = 0; i < 200; i++) {
      const socketRead = Buffer.alloc(64 * 1024, i % 251);
      await log.append(telemetry('small-sender', i, { body: socketRead.subarray(1000, 1100) }));
    }
    const held = liveMemory().arrayBuffers - before;
    assert.ok(held < 2 * tailBytes, `the hub holds ${held} bytes of buffers for 200 events of 100 bytes`);
    const last = log.read(0, 199, 1);
    assert.deepEqual(last[0]?.body, Buffer.alloc(100, 199));
    assert.equal(log.read(0, 0, 200).length, 200, 'every event is still readable, from the store');
    await log.close();
  });
});
