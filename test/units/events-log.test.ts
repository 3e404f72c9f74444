import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { EventLog } from '../../src/hub/events/event-log.js';
import { parseSelector } from '../../src/hub/events/event-position.js';
import { HubError } from '../../src/hub/errors.js';
import { openDatabase } from '../../src/hub/store/database.js';
import { EventStore } from '../../src/hub/store/event-store.js';
import { telemetry } from '../helpers/events.js';

// The event log and its store without the network: partitioning, stamps, positions, atomicity,
// durability of an acknowledged append.

function memoryLog(options: ConstructorParameters<typeof EventLog>[1] = {}) {
  const db = openDatabase(':memory:');
  const store = new EventStore(db);
  return { db, store, log: new EventLog(store, options) };
}

describe('event log', () => {
  test('keeps a device (and its modules) in one partition, sequence numbers from 0 per partition', async () => {
    const { log } = memoryLog();
    const partition = log.partitionOf('thermostat');
    assert.equal(log.partitionOf('thermostat'), partition);
    const seen = new Set(Array.from({ length: 100 }, (_, i) => log.partitionOf(`device-${i}`)));
    assert.deepEqual([...seen].sort(), [0, 1, 2, 3]);

    const a = await log.append(telemetry('thermostat', 0));
    const b = await log.append(telemetry('thermostat', 1, { moduleId: 'sensor' }));
    assert.equal(a.partition, partition);
    assert.equal(b.partition, partition);
    assert.equal(a.sequenceNumber, 0);
    assert.equal(b.sequenceNumber, 1);
    assert.ok(Number(b.offset) > Number(a.offset));
    await log.close();
  });

  test('stamps messages as IoT Hub does', async () => {
    const { log } = memoryLog();
    const device = await log.append(telemetry('dev', 0, { authGenerationId: '638000000000000000' }));
    assert.deepEqual(device.annotations, {
      'iothub-connection-device-id': 'dev',
      'iothub-connection-auth-method': '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
      'iothub-connection-auth-generation-id': '638000000000000000',
      'iothub-message-source': 'Telemetry',
    });
    assert.deepEqual(device.systemProperties, {
      messageId: 'msg-0',
      correlationId: 'corr-0',
      contentType: 'application/json',
      contentEncoding: 'utf-8',
    });
    const module = await log.append(telemetry('dev', 1, { moduleId: 'edge', authMethod: 'x509', messageId: undefined }));
    assert.equal(module.annotations['iothub-connection-module-id'], 'edge');
    assert.deepEqual(JSON.parse(module.annotations['iothub-connection-auth-method']!), {
      scope: 'module',
      type: 'x509Certificate',
      issuer: 'external',
      acceptingIpFilterRule: null,
    });
    assert.equal('messageId' in module.systemProperties, false);
    await assert.rejects(log.append(telemetry('', 2)), HubError);
    await log.close();
  });

  test('announces appends once per partition, after they are stored', async () => {
    const { log } = memoryLog();
    const announced: Array<[number, number]> = [];
    log.on('appended', (partition, last) => {
      assert.equal(log.partitionInfo(partition).lastSequenceNumber, last);
      announced.push([partition, last]);
    });
    const stored = await log.appendMany(Array.from({ length: 40 }, (_, i) => telemetry(`d-${i % 8}`, i)));
    const lastByPartition = new Map(stored.map((event) => [event.partition, event.sequenceNumber]));
    assert.deepEqual(new Map(announced), lastByPartition);
    assert.equal(announced.length, lastByPartition.size);
    await log.close();
  });

  test('a batch is one transaction: all of it or none of it', async () => {
    const { log, store } = memoryLog();
    await log.append(telemetry('first', 0));
    const partition = log.partitionOf('first');
    const before = store.partitionInfo(partition);
    await assert.rejects(
      store.append(
        [
          { partition, body: Buffer.from('ok'), systemProperties: {}, annotations: {}, properties: {} },
          { partition: 99, body: Buffer.from('no such partition'), systemProperties: {}, annotations: {}, properties: {} },
        ],
        Date.now(),
      ),
    );
    assert.deepEqual(store.partitionInfo(partition), before);
    assert.equal(store.read(partition, 0, 10).length, 1);
    await log.close();
  });

  test('resolves start positions, and enqueued times never go back', async () => {
    let clock = 1_000_000;
    const { log } = memoryLog({ now: () => clock });
    const p = log.partitionOf('pos');
    const stored = [];
    for (let i = 0; i < 4; i++) {
      clock += 1000;
      stored.push(await log.append(telemetry('pos', i)));
    }
    clock -= 10_000; // the wall clock steps back
    const late = await log.append(telemetry('pos', 4));
    assert.equal(late.enqueuedTimeMs, stored[3]!.enqueuedTimeMs);

    assert.equal(log.startSequence(p, { kind: 'earliest' }), 0);
    assert.equal(log.startSequence(p, { kind: 'latest' }), 5);
    assert.equal(log.startSequence(p, { kind: 'sequenceNumber', value: 2, inclusive: false }), 3);
    assert.equal(log.startSequence(p, { kind: 'sequenceNumber', value: 2, inclusive: true }), 2);
    assert.equal(log.startSequence(p, { kind: 'offset', value: Number(stored[1]!.offset), inclusive: false }), 2);
    assert.equal(log.startSequence(p, { kind: 'offset', value: Number(stored[1]!.offset), inclusive: true }), 1);
    assert.equal(log.startSequence(p, { kind: 'enqueuedTime', value: stored[1]!.enqueuedTimeMs, inclusive: false }), 2);
    assert.equal(log.startSequence(p, { kind: 'enqueuedTime', value: stored[1]!.enqueuedTimeMs, inclusive: true }), 1);
    assert.equal(log.startSequence(p, { kind: 'enqueuedTime', value: clock + 1e9, inclusive: false }), 5);
    assert.deepEqual(
      log.read(p, 1, 2).map((event) => event.sequenceNumber),
      [1, 2],
    );
    assert.throws(() => log.read(4, 0, 1), HubError);
    await log.close();
  });

  test('live reads from memory give what the store gives, and fall back to it outside the tail', async () => {
    let clock = 1_000;
    const { store, log } = memoryLog({ tailEventsPerPartition: 4, now: () => clock++ });
    const p = log.partitionOf('tail');
    const sparse = { messageId: undefined, contentEncoding: undefined, userId: 'user', moduleId: 'm' }; // absent and present system properties
    for (let i = 0; i < 5; i++) await log.appendMany([telemetry('tail', 2 * i), telemetry('tail', 2 * i + 1, sparse)]);
    // 10 events, a tail of 4 to 8 of them: every window, inside, across and before the tail.
    for (let from = 0; from <= 11; from++) {
      for (const max of [1, 3, 100]) assert.deepEqual(log.read(p, from, max), store.read(p, from, max), `from ${from}, max ${max}`);
    }
    const fresh = new EventLog(store); // a restart: nothing in memory, all from the store
    assert.deepEqual(
      fresh.read(p, 0, 100).map((e) => e.sequenceNumber),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    await fresh.close();
    await log.close();
  });

  test('retention empties the tail, so a reader never gets a pruned event', async () => {
    const { log } = memoryLog({ maxEventsPerPartition: 2 });
    const p = log.partitionOf('pruned');
    for (let i = 0; i < 5; i++) await log.append(telemetry('pruned', i));
    assert.equal(log.prune(), 3);
    assert.deepEqual(
      log.read(p, 0, 10).map((e) => e.sequenceNumber),
      [3, 4],
    );
    await log.append(telemetry('pruned', 5));
    assert.deepEqual(
      log.read(p, 4, 10).map((e) => e.sequenceNumber),
      [4, 5],
    );
    await log.close();
  });

  test('finds start positions by offset and by enqueued time, as a scan of the partition would', async () => {
    let now = 1_000;
    const { log, store } = memoryLog({ now: () => now });
    const p = log.partitionOf('positions');
    // 40 events in batches of 1 to 4: several share an enqueued time, and the clock goes back once.
    for (let batch = 0, i = 0; i < 40; batch++) {
      now = batch === 6 ? now - 500 : now + 10;
      const size = 1 + (batch % 4);
      await log.appendMany(Array.from({ length: size }, () => telemetry('positions', i++)));
    }
    const check = () => {
      const events = store.read(p, 0, 1000);
      const scan = (passes: (e: (typeof events)[number]) => boolean) => events.find(passes)?.sequenceNumber;
      const offsets = events.map((e) => Number(e.offset));
      const times = events.map((e) => e.enqueuedTimeMs);
      for (const offset of [-1, 0, ...offsets, ...offsets.map((o) => o + 1), offsets.at(-1)! + 1000]) {
        for (const inclusive of [true, false]) {
          assert.equal(
            store.firstSequenceAfterOffset(p, offset, inclusive),
            scan((e) => (inclusive ? Number(e.offset) >= offset : Number(e.offset) > offset)),
            `offset ${offset}, inclusive ${inclusive}`,
          );
        }
      }
      for (const time of [0, ...times, ...times.map((t) => t + 1), times.at(-1)! + 1000]) {
        for (const inclusive of [true, false]) {
          assert.equal(
            store.firstSequenceAfterTime(p, time, inclusive),
            scan((e) => (inclusive ? e.enqueuedTimeMs >= time : e.enqueuedTimeMs > time)),
            `time ${time}, inclusive ${inclusive}`,
          );
        }
      }
      return events;
    };
    const all = check();
    // Retention by age removes the head (events enqueued before the cutoff) and the search starts after it.
    const cutoff = all[17]!.enqueuedTimeMs;
    const expected = all.filter((e) => e.enqueuedTimeMs < cutoff).length;
    assert.ok(expected > 0 && expected < all.length);
    assert.equal(store.prune(cutoff, 1000), expected);
    assert.equal(check()[0]!.sequenceNumber, expected);
    assert.equal(store.prune(all.at(-1)!.enqueuedTimeMs + 1, 1000), all.length - expected, 'everything, once all of it is older');
    assert.equal(store.firstSequenceAfterTime(p, 0, true), undefined, 'an empty partition has no position');
    await log.close();
  });

  test('keeps the partition count it was created with', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iothub-events-'));
    try {
      const path = join(dir, 'hub.db');
      const db = openDatabase(path);
      await new EventLog(new EventStore(db), { partitionCount: 8 }).close();
      db.close();
      const again = openDatabase(path);
      const log = new EventLog(new EventStore(again));
      assert.equal(log.partitionCount, 8);
      assert.throws(() => new EventLog(new EventStore(again), { partitionCount: 4 }), /created with 8 partitions/);
      await log.close();
      again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an append that returned survives the process being killed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iothub-events-'));
    try {
      const path = join(dir, 'hub.db');
      const imports = (module: string) => JSON.stringify(new URL(`../../src/hub/${module}`, import.meta.url).href);
      // The child appends, reports, and is killed at once: no close, no checkpoint, no exit handlers.
      const script = `
        const { openDatabase } = await import(${imports('store/database.js')});
        const { EventStore } = await import(${imports('store/event-store.js')});
        const { EventLog } = await import(${imports('events/event-log.js')});
        const log = new EventLog(new EventStore(openDatabase(${JSON.stringify(path)})));
        await log.appendMany(Array.from({ length: 50 }, (_, i) => ({ deviceId: 'd' + (i % 5), body: Buffer.from(String(i)), properties: {} })));
        const last = await log.append({ deviceId: 'last', body: Buffer.from('last'), properties: {} });
        process.stdout.write(JSON.stringify(last), () => process.kill(process.pid, 'SIGKILL'));
      `;
      // Run with flags a thread started from a file with the parent's execArgv refuses: --input-type
      // (with -e) and a per-process V8 flag.
      const child = spawnSync(process.execPath, ['--max-old-space-size=512', '--input-type=module', '-e', script], {
        timeout: 30_000,
        encoding: 'utf8',
      });
      assert.equal(child.signal, 'SIGKILL', child.stderr);
      const acknowledged = JSON.parse(child.stdout) as { partition: number; sequenceNumber: number };

      const db = openDatabase(path);
      const log = new EventLog(new EventStore(db));
      const total = [0, 1, 2, 3].reduce((sum, p) => sum + log.read(p, 0, 1000).length, 0);
      assert.equal(total, 51);
      const [last] = log.read(acknowledged.partition, acknowledged.sequenceNumber, 1);
      assert.equal(last?.body.toString(), 'last');
      await log.close();
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('event position filters', () => {
  test('reads the forms the SDK writes', () => {
    assert.deepEqual(parseSelector("amqp.annotation.x-opt-offset > '-1'"), { kind: 'earliest' });
    assert.deepEqual(parseSelector("amqp.annotation.x-opt-offset >= '-1'"), { kind: 'earliest' });
    assert.deepEqual(parseSelector("amqp.annotation.x-opt-offset > '@latest'"), { kind: 'latest' });
    assert.deepEqual(parseSelector("amqp.annotation.x-opt-offset >= '1234'"), { kind: 'offset', value: 1234, inclusive: true });
    assert.deepEqual(parseSelector("amqp.annotation.x-opt-sequence-number > '7'"), { kind: 'sequenceNumber', value: 7, inclusive: false });
    assert.deepEqual(parseSelector("amqp.annotation.x-opt-enqueued-time > '1700000000000'"), {
      kind: 'enqueuedTime',
      value: 1_700_000_000_000,
      inclusive: false,
    });
  });

  test('refuses what it does not understand', () => {
    assert.throws(() => parseSelector("amqp.annotation.x-opt-offset < '5'"), RangeError);
    assert.throws(() => parseSelector("amqp.annotation.x-opt-sequence-number > 'five'"), RangeError);
    assert.throws(() => parseSelector('sys.something = 1'), RangeError);
  });
});
