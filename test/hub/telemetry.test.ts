import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type mqtt from 'mqtt';
import deviceSdk from 'azure-iot-device';
import { earliestEventPosition, latestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import { deviceToken, rawConnect } from '../helpers/mqtt.js';
import { EVENT_HUB_NAME } from '../../src/hub/server.js';
import { parseConnection } from '../../src/clients/connection-string.js';
import { onDisk, startTestHub, tempDir, type TestHub } from '../helpers/hub.js';
import { openDevice, registerIdentity } from '../helpers/devices.js';
import { collect, consumer, within } from '../helpers/events.js';

// Device-to-cloud messages end to end: devices publish over MQTT (raw mqtt at QoS 1, and the SDK),
// the official Event Hubs client reads them from the hub's Event Hub-compatible endpoint.

const WAIT_MS = 60_000;

function deviceKey(connectionString: string): string {
  return parseConnection('device', connectionString).key;
}

async function rawClient(t: TestHub, deviceId: string, key: string): Promise<mqtt.MqttClient> {
  const client = await within(WAIT_MS, `${deviceId} connecting`, rawConnect(t.hub, { deviceId }, deviceToken({ deviceId }, key)));
  if (typeof client === 'number') throw new Error(`${deviceId}: connect refused with CONNACK ${client}`);
  return client;
}

/** Resolves on the PUBACK. */
function publish(client: mqtt.MqttClient, topic: string, payload: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => client.publish(topic, payload, { qos: 1 }, (err) => (err ? reject(err) : resolve())));
}

function closed(client: mqtt.MqttClient): Promise<void> {
  return within(WAIT_MS, 'the hub to close the connection', new Promise((resolve) => client.once('close', () => resolve())));
}

/** The tutorial's properties, encoded as azure-iot-device-mqtt encodes them, plus a value that needs encoding. */
function eventsTopic(deviceId: string, run: string, n: number): string {
  return (
    `devices/${deviceId}/messages/events/%24.mid=message_${n}&%24.cid=correlation_${n}&%24.ct=application%2Fjson&%24.ce=utf-8` +
    `&Property=PropMsg_${n}&run=${run}&note=a%26b%20c`
  );
}

const ofRun = (run: string) => (events: ReceivedEventData[]) => events.filter((e) => e.properties?.run === run);

describe('telemetry: MQTT devices to the Event Hub-compatible endpoint', () => {
  let t: TestHub;
  const keys: Record<string, string> = {};
  const devices = Array.from({ length: 10 }, (_, i) => `tel-device-${i}`);
  before(async () => {
    t = await startTestHub();
    for (const id of [...devices, 'tel-big', 'tel-small', 'tel-intruder', 'tel-victim', 'tel-pos']) {
      keys[id] = deviceKey((await registerIdentity(t, id)).connectionString);
    }
  });
  after(async () => {
    await t.dispose();
  });

  test('the connection string names the endpoint as Event Hubs clients expect', () => {
    const connection = parseConnection('eventhub', t.hub.eventHubConnectionString());
    assert.equal(connection.endpoint, `sb://localhost:${t.hub.eventHubPort}/`);
    assert.equal(connection.entityPath, EVENT_HUB_NAME);
    assert.equal(connection.keyName, 'service');
    assert.match(connection.connectionString, /;UseDevelopmentEmulator=true(;|$)/);
  });

  /**
   * Publishes `perDevice` messages from each device at QoS 1 (resolving once all are PUBACKed, that
   * is in the event log), then returns a check that reads them back from a hub (this one, or the
   * same data dir restarted) with @azure/event-hubs: each exactly once, with its properties, a
   * device's in order.
   */
  async function publishAll(
    hub: TestHub,
    keysOf: Record<string, string>,
    run: string,
    perDevice: number,
  ): Promise<(from: TestHub, what: string) => Promise<void>> {
    const clients = await Promise.all(devices.map((id) => rawClient(hub, id, keysOf[id]!)));
    await within(
      WAIT_MS * 2,
      `${devices.length * perDevice} PUBACKs`,
      Promise.all(
        clients.flatMap((client, d) =>
          Array.from({ length: perDevice }, (_, i) =>
            publish(client, eventsTopic(devices[d]!, run, i + 1), JSON.stringify({ deviceId: devices[d], n: i + 1 })),
          ),
        ),
      ),
    );
    await Promise.all(clients.map((c) => new Promise<void>((r) => c.end(false, {}, () => r()))));
    const total = devices.length * perDevice;
    return async (from, what) => {
      const client = consumer(from.hub.eventHubConnectionString());
      const received = collect(client, earliestEventPosition);
      try {
        await received.until(WAIT_MS * 2, `${what}: ${total} events`, () => ofRun(run)(received.events).length >= total);
        await new Promise((r) => setTimeout(r, 1000)); // room for duplicates to show
        const events = ofRun(run)(received.events);
        assert.equal(events.length, total, what);
        const seen = new Set(events.map((e) => `${e.systemProperties?.['iothub-connection-device-id']}/${e.messageId}`));
        assert.equal(seen.size, total, `${what}: each message once`);
        for (const e of events) {
          const n = Number(String(e.messageId).replace('message_', ''));
          const deviceId = e.systemProperties?.['iothub-connection-device-id'];
          assert.ok(devices.includes(deviceId), `${deviceId} is a sender`);
          assert.equal(e.correlationId, `correlation_${n}`);
          assert.equal(e.contentType, 'application/json');
          assert.deepEqual(e.properties, { Property: `PropMsg_${n}`, run, note: 'a&b c' });
          assert.deepEqual(e.body, { deviceId, n });
          assert.equal(e.systemProperties?.['iothub-connection-module-id'], undefined);
          assert.match(String(e.systemProperties?.['iothub-connection-auth-generation-id']), /^\d+$/);
        }
        // A device's messages stay in order in its partition.
        for (const deviceId of devices) {
          const ns = events
            .filter((e) => e.systemProperties?.['iothub-connection-device-id'] === deviceId)
            .map((e) => Number(String(e.messageId).slice(8)));
          assert.deepEqual(
            ns,
            [...ns].sort((a, b) => a - b),
            `${deviceId} in order`,
          );
        }
      } finally {
        await received.close();
        await client.close();
      }
    };
  }

  test('1,000 messages from 10 devices at QoS 1 arrive exactly once, in order, with their properties', async () => {
    const check = await publishAll(t, keys, 'thousand', 100);
    await check(t, 'live');
  });

  test('messages survive a restart on the same data dir: each once, in order, with their properties', onDisk(), async (ctx) => {
    // A hub of its own with a named data dir: on disk whatever IOTHUB_TUT_TEST_STORE says.
    let restarted = await startTestHub({ dataDir: tempDir() });
    ctx.after(() => restarted.dispose());
    const ownKeys: Record<string, string> = {};
    for (const id of devices) ownKeys[id] = deviceKey((await registerIdentity(restarted, id)).connectionString);
    const check = await publishAll(restarted, ownKeys, 'restart', 10);
    await check(restarted, 'before the restart');
    await restarted.stop();
    restarted = await startTestHub({ dataDir: restarted.dataDir });
    await check(restarted, 'after a restart on the same data dir');
  });

  test("an oversized message closes only its sender's connection and is not stored; others keep flowing", async () => {
    const run = 'oversized';
    const big = await rawClient(t, 'tel-big', keys['tel-big']!);
    const small = await rawClient(t, 'tel-small', keys['tel-small']!);
    const bigClosed = closed(big);
    big.publish(eventsTopic('tel-big', run, 1), Buffer.alloc(256 * 1024 + 1, 'x'), { qos: 1 });
    await bigClosed;
    for (let n = 1; n <= 20; n++) await publish(small, eventsTopic('tel-small', run, n), JSON.stringify({ n }));
    // At the limit exactly (body and properties together) is still accepted.
    const topic = 'devices/tel-small/messages/events/run=oversized';
    await publish(small, topic, Buffer.alloc(256 * 1024 - 'run'.length - run.length, 'y'));
    await new Promise<void>((r) => small.end(false, {}, () => r()));

    const stored = Array.from({ length: t.hub.eventLog.partitionCount }, (_, p) => t.hub.eventLog.read(p, 0, 100_000)).flat();
    const ofThisRun = stored.filter((e) => e.properties.run === run);
    assert.equal(ofThisRun.filter((e) => e.annotations['iothub-connection-device-id'] === 'tel-big').length, 0);
    assert.equal(ofThisRun.filter((e) => e.annotations['iothub-connection-device-id'] === 'tel-small').length, 21);
    assert.ok(
      stored.every((e) => e.body.length <= 256 * 1024),
      'nothing oversized is stored',
    );
  });

  test("a device cannot publish to another device's events topic (nor a module's)", async () => {
    for (const topic of [
      'devices/tel-victim/messages/events/run=intrusion',
      'devices/tel-intruder/modules/m/messages/events/run=intrusion',
    ]) {
      const intruder = await rawClient(t, 'tel-intruder', keys['tel-intruder']!);
      const gone = closed(intruder);
      intruder.publish(topic, '{"forged":true}', { qos: 1 });
      await gone;
    }
    const stored = Array.from({ length: t.hub.eventLog.partitionCount }, (_, p) => t.hub.eventLog.read(p, 0, 100_000)).flat();
    assert.equal(stored.filter((e) => e.properties.run === 'intrusion').length, 0);
  });

  test("a module's messages carry iothub-connection-module-id (azure-iot-device ModuleClient)", async () => {
    const module = await openDevice(await registerIdentity(t, 'tel-gateway', 'tel-sensor'));
    try {
      const message = new deviceSdk.Message('{"temperature":21}');
      message.messageId = 'module_1';
      message.properties.add('run', 'module');
      await module.sendEvent(message);
    } finally {
      await module.close();
    }
    const client = consumer(t.hub.eventHubConnectionString());
    const received = collect(client, earliestEventPosition);
    try {
      await received.until(WAIT_MS, 'the module message', () => ofRun('module')(received.events).length === 1);
      const [event] = ofRun('module')(received.events);
      assert.equal(event!.systemProperties?.['iothub-connection-device-id'], 'tel-gateway');
      assert.equal(event!.systemProperties?.['iothub-connection-module-id'], 'tel-sensor');
      assert.match(String(event!.systemProperties?.['iothub-connection-auth-method']), /"scope":"module"/);
      assert.equal(event!.messageId, 'module_1');
    } finally {
      await received.close();
      await client.close();
    }
  });

  test('start positions: latest sees only what comes after the receivers open; a sequence number starts after (or at) it', async () => {
    const device = await rawClient(t, 'tel-pos', keys['tel-pos']!);
    try {
      for (let n = 1; n <= 3; n++) await publish(device, eventsTopic('tel-pos', 'positions', n), `{"n":${n}}`);
      const partitionId = String(t.hub.eventLog.partitionOf('tel-pos'));
      const client = consumer(t.hub.eventHubConnectionString());
      const latest = collect(client, latestEventPosition, partitionId);
      try {
        await latest.until(WAIT_MS, 'the receiver to open', () => latest.readyPartitions.has(partitionId));
        await publish(device, eventsTopic('tel-pos', 'positions', 4), '{"n":4}');
        await latest.until(WAIT_MS, 'message 4', () => ofRun('positions')(latest.events).length >= 1);
        assert.deepEqual(
          ofRun('positions')(latest.events).map((e) => e.messageId),
          ['message_4'],
        );

        const second = ofRun('positions')(latest.events)[0]!.sequenceNumber - 2; // message_2
        for (const [isInclusive, expected] of [
          [false, ['message_3', 'message_4']],
          [true, ['message_2', 'message_3', 'message_4']],
        ] as const) {
          const reader = consumer(t.hub.eventHubConnectionString()); // one subscriber per partition and client
          const from = collect(reader, { sequenceNumber: second, isInclusive }, partitionId);
          try {
            await from.until(WAIT_MS, `from sequence ${second}`, () => ofRun('positions')(from.events).length >= expected.length);
            assert.deepEqual(
              ofRun('positions')(from.events).map((e) => e.messageId),
              expected,
            );
          } finally {
            await from.close();
            await reader.close();
          }
        }
      } finally {
        await latest.close();
        await client.close();
      }
    } finally {
      await new Promise<void>((r) => device.end(false, {}, () => r()));
    }
  });

  test('the endpoint refuses a token signed with a wrong key', async () => {
    const wrong = t.hub
      .eventHubConnectionString()
      .replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 1).toString('base64')}`);
    const client = consumer(wrong);
    try {
      await assert.rejects(within(WAIT_MS, 'a refusal', client.getPartitionIds()), (err: Error) => {
        // The client's retries end in an AggregateError of what each attempt got.
        const errors = (err instanceof AggregateError ? err.errors : [err]) as Array<Error & { code?: string }>;
        assert.ok(errors.length > 0 && errors.every((e) => e.code === 'UnauthorizedError'), errors.map((e) => e.code).join());
        return true;
      });
    } finally {
      await client.close();
    }
  });
});
