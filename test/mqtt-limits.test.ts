import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type mqtt from 'mqtt';
import { earliestEventPosition } from '@azure/event-hubs';
import { createRegistry } from '../src/clients/service-clients.js';
import { MAX_OUTGOING_BYTES } from '../src/hub/device-gateway/mqtt-gateway.js';
import { createLog } from '../src/hub/log.js';
import { diskDir, startTestHub, type TestHub } from './helpers/hub.js';
import { deviceToken, rawConnect, subscribe } from './helpers/mqtt.js';
import { until } from './helpers/devices.js';
import { liveMemory } from './helpers/memory.js';
import { collect, consumer, within } from './helpers/events.js';

// What one MQTT client can make the hub hold or spend: retained messages, QoS 2 state, the bytes
// queued for a client that does not read, and the event loop under a flood of requests.

function publish(client: mqtt.MqttClient, topic: string, payload: string | Buffer, options: mqtt.IClientPublishOptions): Promise<void> {
  return new Promise((resolve, reject) => client.publish(topic, payload, options, (err) => (err ? reject(err) : resolve())));
}

describe('MQTT limits: what one client can make the hub hold', () => {
  let t: TestHub;
  const open: mqtt.MqttClient[] = [];
  const logged: string[] = [];

  async function device(deviceId: string): Promise<mqtt.MqttClient> {
    const created = (await createRegistry(t.connection).create({ deviceId })).responseBody;
    const result = await rawConnect(t.hub, { deviceId }, deviceToken({ deviceId }, created.authentication!.symmetricKey!.primaryKey!));
    if (typeof result === 'number') assert.fail(`connect refused with CONNACK ${result}`);
    open.push(result);
    return result;
  }

  before(async () => {
    // On the disk: the flood's fairness is about the sync each twin write costs there, which RAM does not have.
    t = await startTestHub({ dataDir: diskDir(), log: createLog('info', (line) => logged.push(line)) });
  });
  after(async () => {
    for (const c of open) c.end(true);
    await t.dispose();
  });

  test('a retained publish leaves nothing in the broker and reaches the service with mqtt-retain', async () => {
    const client = await device('lim-retain');
    const body = Buffer.alloc(64 * 1024, 'r');
    for (let i = 0; i < 20; i++) await publish(client, `devices/lim-retain/messages/events/n=${i}`, body, { qos: 1, retain: true });
    await publish(client, 'devices/lim-retain/messages/events/n=plain', 'plain', { qos: 1 });

    const retained = [];
    for await (const packet of (t.hub.mqtt.broker as any).persistence.createRetainedStream('#')) retained.push(packet);
    assert.equal(retained.length, 0, 'IoT Hub keeps no retained message, and neither does the hub');

    const reader = consumer(t.hub.eventHubConnectionString());
    const received = collect(reader, earliestEventPosition);
    try {
      const ours = () => received.events.filter((e) => e.systemProperties?.['iothub-connection-device-id'] === 'lim-retain');
      await received.until(60_000, '21 events', () => ours().length === 21);
      for (const event of ours()) {
        const plain = event.properties?.n === 'plain';
        assert.equal(event.properties?.['mqtt-retain'], plain ? undefined : 'true', `event n=${event.properties?.n}`);
      }
    } finally {
      await received.close();
      await reader.close();
    }
  });

  test('a QoS 2 subscription is granted QoS 1', async () => {
    const client = await device('lim-sub2');
    assert.deepEqual(await subscribe(client, ['$iothub/twin/res/#', '$iothub/twin/PATCH/properties/desired/#'], 2), [1, 1]);
  });

  test('a QoS 2 publish closes the connection and is not stored', async () => {
    const client = await device('lim-qos2');
    const before = t.hub.eventLog.partitionInfo(t.hub.eventLog.partitionOf('lim-qos2')).lastSequenceNumber;
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.publish('devices/lim-qos2/messages/events/', 'exactly once?', { qos: 2 });
    await within(20_000, 'the hub to close the connection', closed);
    assert.equal(t.hub.eventLog.partitionInfo(t.hub.eventLog.partitionOf('lim-qos2')).lastSequenceNumber, before, 'nothing was appended');
    assert.ok(
      logged.some((line) => /info +mqtt: closed the connection of lim-qos2: a QoS 2 publish/.test(line)),
      logged.join(''),
    );
  });

  test('a subscriber that stops reading is disconnected, and the hub holds at most the bound for it', async (ctx) => {
    const client = await device('lim-slow');
    await subscribe(client, ['$iothub/twin/PATCH/properties/desired/#']);
    // The device stops reading: what the hub sends fills the kernel's buffers, then the hub's.
    const socket = (client as unknown as { stream: import('node:stream').Readable }).stream;
    socket.unpipe();
    socket.pause();
    const session = t.hub.mqtt.session({ deviceId: 'lim-slow' })!;
    const connection = session.client.conn;
    // 16 KB a patch (twin string values are at most 4 KB each).
    const blob = 'x'.repeat(4000);
    const patch = (n: number) => ({ properties: { desired: { a: blob, b: blob, c: blob, d: blob, n } } });
    const held = () => {
      const { heapUsed, arrayBuffers } = liveMemory();
      return heapUsed + arrayBuffers;
    };
    const memoryBefore = held();
    let maxUnsent = 0;
    let maxMemory = 0;
    let patches = 0;
    // 3,000 patches of 16 KB: 48 MB, several times what loopback's socket buffers take.
    while (patches < 3000 && t.hub.mqtt.session({ deviceId: 'lim-slow' }) === session) {
      t.hub.twins.patchFromService({ deviceId: 'lim-slow' }, patch(patches++));
      if (patches % 10 === 0) {
        await nextTurn(); // the hub writes what it queued, and may decide
        maxUnsent = Math.max(maxUnsent, connection.writableLength);
        // What is live grows with the queue: measured (two full collections each) every 100 patches,
        // and every 10 once the queue holds three quarters of the bound, towards its peak.
        if (patches % 100 === 0 || connection.writableLength > (MAX_OUTGOING_BYTES * 3) / 4)
          maxMemory = Math.max(maxMemory, held() - memoryBefore);
      }
    }
    await until(() => t.hub.mqtt.session({ deviceId: 'lim-slow' }) !== session, 'the slow subscriber is disconnected', 10_000);
    ctx.diagnostic(`disconnected after ${patches} patches; at most ${maxUnsent} bytes queued, memory +${maxMemory} bytes`);
    assert.ok(patches < 3000, `disconnected after ${patches} patches`);
    assert.ok(
      logged.some((line) => /closed the connection of lim-slow: it does not read what the hub sends/.test(line)),
      logged.join(''),
    );
    // Loose bounds: what the hub queued is the bound plus one turn's patches, far from the 48 MB sent.
    assert.ok(maxUnsent <= MAX_OUTGOING_BYTES + 1024 * 1024, `at most ${maxUnsent} bytes queued`);
    assert.ok(maxMemory < 16 * 1024 * 1024, `memory grew by ${maxMemory} bytes at most`);
  });

  test("a flood of twin requests from one device does not hold another device's publishes", async (ctx) => {
    const flooder = await device('lim-flood');
    const probe = await device('lim-probe');
    const patches = 2000;
    let acked = 0;
    const flooded = new Promise<void>((resolve, reject) => {
      for (let i = 0; i < patches; i++) {
        flooder.publish(`$iothub/twin/PATCH/properties/reported/?$rid=${i}`, JSON.stringify({ flood: i }), { qos: 1 }, (err) => {
          if (err) reject(err);
          else if (++acked === patches) resolve();
        });
      }
    });
    const reportedVersion = () => t.hub.twins.get({ deviceId: 'lim-flood' }).reportedVersion;
    const roundTrips: number[] = [];
    const patchesDuring: number[] = [];
    const deadline = Date.now() + 120_000;
    while (acked < patches && Date.now() < deadline) {
      const [start, version] = [performance.now(), reportedVersion()];
      await publish(probe, 'devices/lim-probe/messages/events/', 'ping', { qos: 1 });
      roundTrips.push(performance.now() - start);
      patchesDuring.push(reportedVersion() - version);
    }
    await flooded;
    assert.ok(roundTrips.length >= 10, `${roundTrips.length} round trips during the flood`);
    roundTrips.sort((a, b) => a - b);
    patchesDuring.sort((a, b) => a - b);
    const p99 = (sorted: number[]) => sorted[Math.ceil(sorted.length * 0.99) - 1]!;
    ctx.diagnostic(
      `${roundTrips.length} round trips: p50 ${roundTrips[roundTrips.length >> 1]!.toFixed(1)} ms, p99 ${p99(roundTrips).toFixed(1)} ms; ` +
        `flood patches during one: p50 ${patchesDuring[patchesDuring.length >> 1]}, p99 ${p99(patchesDuring)}`,
    );
    // The figure belongs to `npm run bench -- --only fairness`; here, loose bounds for a busy machine.
    // Without a per-connection bound, a probe waited for every patch of a socket read (hundreds).
    assert.ok(p99(patchesDuring) < 100, `p99 of ${p99(patchesDuring)} flood patches handled during one round trip`);
    assert.ok(p99(roundTrips) < 1000, `round trip p99 ${p99(roundTrips).toFixed(1)} ms`);
  });
});
