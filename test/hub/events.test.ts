import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { earliestEventPosition, latestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import {
  consumer,
  collect,
  errorCodes,
  eventually,
  hubName,
  startTestHub,
  telemetry,
  within,
  type Collected,
  type TestHub,
} from '../helpers/events.js';

const hour = 60 * 60 * 1000;

// The official Event Hubs SDK against the local hub's Event Hub-compatible endpoint, on real sockets.

function index(event: ReceivedEventData): number {
  return Number(event.properties?.index);
}

/** The SDK's error codes, also from inside the AggregateError its retries end with. */
describe('Event Hub-compatible endpoint with EventHubConsumerClient', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startTestHub();
  });
  after(async () => {
    await hub.dispose();
  });

  test('reports the hub and its partitions', async () => {
    const client = consumer(hub.connectionString());
    try {
      const properties = await within(20_000, 'hub properties', client.getEventHubProperties());
      assert.equal(properties.name, hubName);
      assert.deepEqual(properties.partitionIds, ['0', '1', '2', '3']);
      assert.ok(properties.createdOn instanceof Date && !Number.isNaN(properties.createdOn.getTime()));
      assert.deepEqual(await client.getPartitionIds(), ['0', '1', '2', '3']);

      const empty = await within(20_000, 'partition properties', client.getPartitionProperties('3'));
      assert.equal(empty.partitionId, '3');
      assert.equal(empty.eventHubName, hubName);
      assert.equal(empty.isEmpty, true);
      assert.equal(empty.lastEnqueuedSequenceNumber, -1);

      const stored = await hub.log.append(telemetry('props-device', 1));
      const partition = await client.getPartitionProperties(String(stored.partition));
      assert.equal(partition.isEmpty, false);
      assert.equal(partition.beginningSequenceNumber, 0);
      assert.equal(partition.lastEnqueuedSequenceNumber, stored.sequenceNumber);
      assert.equal(partition.lastEnqueuedOffset, stored.offset);
      assert.equal(partition.lastEnqueuedOnUtc.getTime(), stored.enqueuedTimeMs);

      await assert.rejects(client.getPartitionProperties('4'), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'ArgumentOutOfRangeError');
        return true;
      });
    } finally {
      await client.close();
    }
  });

  test('delivers 1,000 events from 10 devices exactly once, with body and properties intact', async () => {
    const devices = Array.from({ length: 10 }, (_, d) => `device-${d}`);
    const base = 10_000;
    for (let batch = 0; batch < 10; batch++) {
      await hub.log.appendMany(
        Array.from({ length: 100 }, (_, i) => {
          const n = base + batch * 100 + i;
          return telemetry(devices[n % devices.length]!, n, { moduleId: n % 50 === 0 ? 'sensor' : undefined });
        }),
      );
    }
    const client = consumer(hub.connectionString());
    const received = collect(client, earliestEventPosition);
    const ours = (): ReceivedEventData[] => received.events.filter((event) => index(event) >= base);
    try {
      await received.until(60_000, '1,000 events', () => ours().length >= 1000);
      // Give duplicates, if any, a moment to show up.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const events = ours();
      assert.deepEqual(received.errors, []);
      assert.equal(events.length, 1000);
      assert.equal(new Set(events.map(index)).size, 1000);
      for (const event of events) {
        const n = index(event);
        const deviceId = devices[n % devices.length]!;
        assert.deepEqual(event.body, { index: n, deviceId });
        assert.equal(event.messageId, `msg-${n}`);
        assert.equal(event.correlationId, `corr-${n}`);
        assert.equal(event.contentType, 'application/json');
        assert.deepEqual(event.properties, { index: String(n), kind: 'telemetry' });
        const system = event.systemProperties!;
        assert.equal(system['iothub-connection-device-id'], deviceId);
        assert.equal(system['iothub-connection-module-id'], n % 50 === 0 ? 'sensor' : undefined);
        assert.equal(system['iothub-message-source'], 'Telemetry');
        assert.equal(system['contentEncoding'], 'utf-8');
        assert.equal(system['iothub-enqueuedtime'], event.enqueuedTimeUtc.getTime());
        assert.deepEqual(JSON.parse(system['iothub-connection-auth-method'] as string), {
          scope: n % 50 === 0 ? 'module' : 'device',
          type: 'sas',
          issuer: 'iothub',
          acceptingIpFilterRule: null,
        });
        assert.equal(typeof event.offset, 'string');
        assert.equal(typeof event.sequenceNumber, 'number');
      }
      // A device's events all land in one partition, in the order they were appended.
      const byDevice = new Map<string, ReceivedEventData[]>();
      for (const event of events) {
        const deviceId = event.systemProperties!['iothub-connection-device-id'] as string;
        byDevice.set(deviceId, [...(byDevice.get(deviceId) ?? []), event]);
      }
      for (const [deviceId, deviceEvents] of byDevice) {
        const sequenceNumbers = deviceEvents.map((event) => event.sequenceNumber);
        assert.deepEqual(
          sequenceNumbers,
          [...sequenceNumbers].sort((a, b) => a - b),
          deviceId,
        );
        assert.deepEqual(
          deviceEvents.map(index),
          [...deviceEvents.map(index)].sort((a, b) => a - b),
          deviceId,
        );
      }
    } finally {
      await received.close();
      await client.close();
    }
  });

  test('from latest, sees only events appended after subscribing', async () => {
    const base = 20_000;
    await hub.log.appendMany(Array.from({ length: 20 }, (_, i) => telemetry(`late-${i % 5}`, base + i)));
    const client = consumer(hub.connectionString());
    const received = collect(client, latestEventPosition);
    try {
      // Every partition's receiver has answered once, so its link is attached and '@latest' fixed.
      await received.until(30_000, 'all receivers attached', () => received.readyPartitions.size === 4);
      await hub.log.appendMany(Array.from({ length: 20 }, (_, i) => telemetry(`late-${i % 5}`, base + 100 + i)));
      await received.until(30_000, 'the 20 new events', () => received.events.length >= 20);
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.deepEqual(
        received.events.map(index).sort((a, b) => a - b),
        Array.from({ length: 20 }, (_, i) => base + 100 + i),
      );
      assert.deepEqual(received.errors, []);
    } finally {
      await received.close();
      await client.close();
    }
  });

  test('starts from a sequence number, exclusive by default and inclusive when asked', async () => {
    const base = 30_000;
    const stored = await hub.log.appendMany(Array.from({ length: 10 }, (_, i) => telemetry('seq-device', base + i)));
    const partitionId = String(stored[0]!.partition);
    const from = stored[4]!.sequenceNumber;
    // The SDK allows one subscription per partition and client.
    const client = consumer(hub.connectionString());
    const client2 = consumer(hub.connectionString());
    const exclusive = collect(client, { sequenceNumber: from }, partitionId);
    const inclusive = collect(client2, { sequenceNumber: from, isInclusive: true }, partitionId);
    try {
      const done = (c: typeof exclusive) => () => c.events.some((event) => index(event) === base + 9);
      await exclusive.until(30_000, 'events after the sequence number', done(exclusive));
      await inclusive.until(30_000, 'events from the sequence number', done(inclusive));
      assert.deepEqual(
        exclusive.events.map((event) => event.sequenceNumber),
        stored.slice(5).map((event) => event.sequenceNumber),
      );
      assert.deepEqual(
        inclusive.events.map((event) => event.sequenceNumber),
        stored.slice(4).map((event) => event.sequenceNumber),
      );
    } finally {
      await exclusive.close();
      await inclusive.close();
      await client.close();
      await client2.close();
    }
  });

  test('starts from an offset', async () => {
    const base = 35_000;
    const stored = await hub.log.appendMany(Array.from({ length: 6 }, (_, i) => telemetry('offset-device', base + i)));
    const partitionId = String(stored[0]!.partition);
    const client = consumer(hub.connectionString());
    const received = collect(client, { offset: stored[2]!.offset }, partitionId);
    try {
      await received.until(30_000, 'events after the offset', () => received.events.some((event) => index(event) === base + 5));
      assert.deepEqual(received.events.map(index), [base + 3, base + 4, base + 5]);
    } finally {
      await received.close();
      await client.close();
    }
  });

  test('a wrong key is refused: an auth error, and nothing is delivered', async () => {
    await hub.log.appendMany(Array.from({ length: 20 }, (_, i) => telemetry(`secret-${i}`, 40_000 + i)));
    const client = consumer(hub.connectionString(Buffer.from('not the key').toString('base64')));
    // One partition: its receiver retries with the client's retry options. (A subscription to all
    // partitions first reads the hub's properties with the SDK's default retries, 3 x 30 s.)
    const received = collect(client, earliestEventPosition, '0');
    try {
      await assert.rejects(client.getEventHubProperties(), (error: Error) => {
        assert.ok(
          errorCodes(error).every((code) => code === 'UnauthorizedError'),
          `${error.name}: ${error.message}`,
        );
        return true;
      });
      await received.until(30_000, 'an error', () => received.errors.length > 0);
      const codes = errorCodes(received.errors[0]!);
      assert.ok(codes.length > 0 && codes.every((code) => code === 'UnauthorizedError'), String(received.errors[0]));
      assert.deepEqual(received.events, []);
    } finally {
      await received.close();
      await client.close();
    }
  });

  test('a reader with a higher owner level takes the partition over; one without is refused', async () => {
    const base = 50_000;
    const first = await hub.log.append(telemetry('owned-device', base));
    const partitionId = String(first.partition);
    const clients = [consumer(hub.connectionString()), consumer(hub.connectionString()), consumer(hub.connectionString())];
    const low = collect(clients[0]!, earliestEventPosition, partitionId, { ownerLevel: 1 });
    let takeover: Collected | undefined;
    let outsider: Collected | undefined;
    try {
      await low.until(30_000, 'the first reader', () => low.events.some((event) => index(event) === base));
      takeover = collect(clients[1]!, earliestEventPosition, partitionId, { ownerLevel: 2 });
      await low.until(30_000, 'the first reader to be disconnected', () => low.errors.length > 0);
      assert.deepEqual(errorCodes(low.errors[0]!), ['ReceiverDisconnectedError'], String(low.errors[0]));
      await takeover.until(30_000, 'the new owner', () => takeover!.events.some((event) => index(event) === base));

      outsider = collect(clients[2]!, earliestEventPosition, partitionId);
      await outsider.until(30_000, 'the refusal', () => outsider!.errors.length > 0);
      assert.deepEqual(errorCodes(outsider.errors[0]!), ['ReceiverDisconnectedError'], String(outsider.errors[0]));

      await hub.log.append(telemetry('owned-device', base + 1));
      await takeover.until(30_000, 'a live event for the owner', () => takeover!.events.some((event) => index(event) === base + 1));
      assert.equal(
        low.events.some((event) => index(event) === base + 1),
        false,
      );
      assert.deepEqual(outsider.events, []);
    } finally {
      await low.close();
      await takeover?.close();
      await outsider?.close();
      for (const client of clients) await client.close();
    }
  });

  test('an unknown consumer group is not found', async () => {
    const client = consumer(hub.connectionString(), 'no-such-group');
    const received = collect(client, earliestEventPosition, '0');
    try {
      await received.until(30_000, 'an error', () => received.errors.length > 0);
      assert.deepEqual(errorCodes(received.errors[0]!), ['MessagingEntityNotFoundError'], String(received.errors[0]));
      assert.deepEqual(received.events, []);
    } finally {
      await received.close();
      await client.close();
    }
  });
});

describe('Event Hub-compatible endpoint over time: enqueued times, restarts, retention', () => {
  test('starts from an enqueued time (exclusive, as Event Hubs)', async () => {
    let clock = Date.UTC(2025, 0, 1);
    const hub = await startTestHub({ now: () => clock });
    const client = consumer(hub.connectionString());
    try {
      const early = await hub.log.appendMany(Array.from({ length: 5 }, (_, i) => telemetry('clock-device', i)));
      clock += hour;
      const late = await hub.log.appendMany(Array.from({ length: 5 }, (_, i) => telemetry('clock-device', 5 + i)));
      const partitionId = String(early[0]!.partition);
      const received = collect(client, { enqueuedOn: new Date(early[0]!.enqueuedTimeMs) }, partitionId);
      try {
        await received.until(30_000, 'the later events', () => received.events.length >= 5);
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.deepEqual(received.events.map(index), [5, 6, 7, 8, 9]);
        assert.deepEqual(
          received.events.map((event) => event.enqueuedTimeUtc.getTime()),
          late.map((event) => event.enqueuedTimeMs),
        );
      } finally {
        await received.close();
      }
    } finally {
      await client.close();
      await hub.dispose();
    }
  });

  test('keeps every event across a restart on the same data file', async () => {
    const first = await startTestHub();
    const stored = await first.log.appendMany(Array.from({ length: 300 }, (_, i) => telemetry(`restart-${i % 7}`, i)));
    await first.stop();

    const hub = await startTestHub({ dir: first.dir });
    const client = consumer(hub.connectionString());
    const received = collect(client, earliestEventPosition);
    try {
      await received.until(60_000, '300 events after the restart', () => received.events.length >= 300);
      const byIndex = new Map(received.events.map((event) => [index(event), event]));
      assert.equal(byIndex.size, 300);
      for (const event of stored) {
        const again = byIndex.get(Number(event.properties.index))!;
        assert.equal(again.sequenceNumber, event.sequenceNumber);
        assert.equal(again.offset, event.offset);
        assert.equal(again.enqueuedTimeUtc.getTime(), event.enqueuedTimeMs);
        assert.deepEqual(again.body, JSON.parse(event.body.toString()));
      }
      // Sequence numbers go on where they stopped.
      const next = await hub.log.append(telemetry('restart-0', 1000));
      const before = stored.filter((event) => event.partition === next.partition);
      assert.equal(next.sequenceNumber, before[before.length - 1]!.sequenceNumber + 1);
    } finally {
      await received.close();
      await client.close();
      await hub.dispose();
    }
  });

  test('retention removes events past their age or beyond the count bound', async () => {
    let clock = Date.UTC(2025, 0, 1);
    const hub = await startTestHub({ now: () => clock, retentionMs: 24 * hour, maxEventsPerPartition: 50 });
    const client = consumer(hub.connectionString());
    try {
      const old = await hub.log.appendMany(Array.from({ length: 10 }, (_, i) => telemetry('retained', i)));
      const partitionId = String(old[0]!.partition);
      clock += 25 * hour;
      await hub.log.appendMany(Array.from({ length: 10 }, (_, i) => telemetry('retained', 10 + i)));
      assert.equal(hub.log.prune(), 10);
      let properties = await client.getPartitionProperties(partitionId);
      assert.equal(properties.beginningSequenceNumber, 10);
      assert.equal(properties.lastEnqueuedSequenceNumber, 19);

      await hub.log.appendMany(Array.from({ length: 60 }, (_, i) => telemetry('retained', 20 + i)));
      assert.equal(hub.log.prune(), 20);
      properties = await client.getPartitionProperties(partitionId);
      assert.equal(properties.beginningSequenceNumber, 30);
      assert.equal(properties.lastEnqueuedSequenceNumber, 79);

      const received = collect(client, earliestEventPosition, partitionId);
      try {
        await received.until(30_000, 'the retained events', () => received.events.length >= 50);
        assert.deepEqual(
          received.events.map(index),
          Array.from({ length: 50 }, (_, i) => 30 + i),
        );
      } finally {
        await received.close();
      }

      clock += 25 * hour;
      assert.equal(hub.log.prune(), 50);
      properties = await client.getPartitionProperties(partitionId);
      assert.equal(properties.isEmpty, true);
      assert.equal(properties.beginningSequenceNumber, 80);
      assert.equal(properties.lastEnqueuedSequenceNumber, 79);
    } finally {
      await client.close();
      await hub.dispose();
    }
  });

  test('retention runs by itself on its interval', async () => {
    const hub = await startTestHub({ retentionMs: 1, pruneIntervalMs: 50 });
    try {
      const stored = await hub.log.append(telemetry('fleeting', 1));
      await eventually(10_000, 'the periodic prune', () => hub.log.partitionInfo(stored.partition).isEmpty);
    } finally {
      await hub.dispose();
    }
  });
});
