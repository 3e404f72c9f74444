import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type mqtt from 'mqtt';
import { earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import deviceSdk from 'azure-iot-device';
import { createRegistry, createServiceClient } from '../../src/clients/service-clients.js';
import { parseConnection, type ServiceConnection } from '../../src/clients/connection-string.js';
import { CliProcess } from '../helpers/cli.js';
import { startTestHub, tempDir, type TestHub } from '../helpers/hub.js';
import { deviceToken, rawConnect, subscribe } from '../helpers/mqtt.js';
import { collect, consumer, within } from '../helpers/events.js';
import { until } from '../helpers/devices.js';
import rhea, { type Delivery, type EventContext } from 'rhea';
import { open as openAmqp, putToken } from '../helpers/amqp.js';
import { createSasToken } from '../../src/hub/auth/sas-token.js';

const RUN_BEFORE_KILL_MS = 500;

async function startHub(
  home: string,
  dataDir: string,
): Promise<{ process: CliProcess; connection: ServiceConnection; address: { port: number; tls: { ca: string } }; eventHub: string }> {
  const hub = new CliProcess(['hub', 'start', '--port', '0', '--amqp-port', '0', '--data-dir', dataDir, '--json', '--show-secrets'], {
    IOTHUB_TUT_HOME: home,
  });
  const started = await hub.waitFor((l) => l.event === 'started');
  const ca = readFileSync(started.caFile, 'utf8');
  return {
    process: hub,
    connection: parseConnection('service', started.serviceConnectionString, { ca, port: started.port }),
    address: { port: started.port, tls: { ca } },
    eventHub: started.eventHubConnectionString,
  };
}

/**
 * The killed hub's data dir, opened again by a hub in this process: what it acknowledged must be there.
 * (`hub start` on the data dir of a killed hub is test/cli/hub-lifecycle.test.ts's.)
 */
async function restartInProcess(dataDir: string): Promise<TestHub & { eventHub: string }> {
  const hub = await startTestHub({ dataDir });
  return { ...hub, eventHub: hub.hub.eventHubConnectionString() };
}

/** Reads the hub's events from the start until every one of `wanted` (by `idOf`) has arrived (bounded). */
async function allArrive(eventHub: string, what: string, idOf: (event: ReceivedEventData) => string, wanted: string[]): Promise<void> {
  const client = consumer(eventHub);
  const received = collect(client, earliestEventPosition);
  try {
    const has = new Set<string>();
    await received.until(60_000, what, () => {
      for (const event of received.events.splice(0)) has.add(idOf(event));
      return wanted.every((id) => has.has(id));
    });
  } finally {
    await received.close();
    await client.close();
  }
}

/** QoS 1 telemetry, 20 in flight; `acked` gets the `n` of every message whose PUBACK arrived before the connection died. */
async function sendUntilKilled(client: mqtt.MqttClient, acked: number[]): Promise<number[]> {
  // mqtt.js keeps a publish without its PUBACK for a reconnect that never comes: stop at the close.
  const died = new Promise<boolean>((resolve) => client.once('close', () => resolve(false)));
  const lane = async (first: number) => {
    for (let n = first; ; n += 20) {
      const ok = await Promise.race([
        died,
        new Promise<boolean>((resolve) =>
          client.publish(`devices/crash-sender/messages/events/$.mid=${n}&n=${n}`, JSON.stringify({ n }), { qos: 1 }, (err) =>
            resolve(!err),
          ),
        ),
      ]);
      if (!ok) return;
      acked.push(n);
    }
  };
  await Promise.all(Array.from({ length: 20 }, (_, i) => lane(i)));
  return acked;
}

/** Reported patches over raw MQTT; `progress.acked` is the highest `n` whose 204 arrived before the connection died. */
async function reportUntilKilled(client: mqtt.MqttClient, progress: { acked: number }): Promise<number> {
  await subscribe(client, ['$iothub/twin/res/#']);
  for (let n = 1; ; n++) {
    const ok = await new Promise<boolean>((resolve) => {
      const onMessage = (topic: string) => {
        if (!topic.includes(`$rid=${n}&`) && !topic.endsWith(`$rid=${n}`)) return;
        cleanup();
        resolve(topic.startsWith('$iothub/twin/res/204/'));
      };
      const onClose = () => (cleanup(), resolve(false));
      const cleanup = () => client.off('message', onMessage).off('close', onClose);
      client.on('message', onMessage).once('close', onClose);
      client.publish(`$iothub/twin/PATCH/properties/reported/?$rid=${n}`, JSON.stringify({ n }));
    });
    if (!ok) return progress.acked;
    progress.acked = n;
  }
}

test('kill -9 mid-stream: every acknowledged identity, desired patch, reported patch and D2C message is there after a restart', async () => {
  const home = tempDir();
  const dataDir = join(home, 'data');
  try {
    const hub = await startHub(home, dataDir);
    const registry = createRegistry(hub.connection);
    const reporterKey = (await registry.create({ deviceId: 'crash-reporter' })).responseBody.authentication!.symmetricKey!.primaryKey;
    const reporter = await rawConnect(
      hub.address,
      { deviceId: 'crash-reporter' },
      deviceToken({ deviceId: 'crash-reporter' }, reporterKey),
    );
    assert.ok(typeof reporter !== 'number', `reporter connected (CONNACK ${reporter})`);
    const senderKey = (await registry.create({ deviceId: 'crash-sender' })).responseBody.authentication!.symmetricKey!.primaryKey;
    const sender = await rawConnect(hub.address, { deviceId: 'crash-sender' }, deviceToken({ deviceId: 'crash-sender' }, senderKey));
    assert.ok(typeof sender !== 'number', `sender connected (CONNACK ${sender})`);

    const created: string[] = [];
    const desired = new Map<string, number>();
    let killed = false;
    const writer = async (lane: number) => {
      for (let i = 0; !killed && i < 300; i++) {
        // at most 900 devices: one `list` page holds them all
        const deviceId = `crash-${lane}-${i}`;
        try {
          await registry.create({ deviceId });
          created.push(deviceId);
          await registry.updateTwin(deviceId, { properties: { desired: { seq: i, lane } } }, '*');
          desired.set(deviceId, i);
        } catch {
          return; // the hub is gone: what was not acknowledged need not survive
        }
      }
    };
    const writers = [writer(0), writer(1), writer(2)];
    const reported = { acked: 0 };
    const sentSoFar: number[] = [];
    const reporting = reportUntilKilled(reporter, reported);
    const sending = sendUntilKilled(sender, sentSoFar);

    // Mid-stream: once every kind of write has been acknowledged (a busy machine may take a while), and a moment more.
    await until(
      () => created.length > 0 && desired.size > 0 && reported.acked > 0 && sentSoFar.length > 0,
      'every kind of write has been acknowledged once',
      60_000,
    );
    await new Promise((r) => setTimeout(r, RUN_BEFORE_KILL_MS));
    killed = true;
    hub.process.child.kill('SIGKILL');
    await hub.process.exit();
    await Promise.all(writers);
    const lastReported = await reporting;
    const sent = await sending;
    reporter.end(true);
    sender.end(true);
    assert.ok(
      created.length > 0 && desired.size > 0 && lastReported > 0 && sent.length > 0,
      `writes were acknowledged before the kill (${created.length}, ${desired.size}, ${lastReported}, ${sent.length})`,
    );

    const restarted = await restartInProcess(dataDir);
    try {
      const after = createRegistry(restarted.connection);
      const devices = new Set((await after.list()).responseBody.map((d) => d.deviceId));
      const lost = created.filter((id) => !devices.has(id));
      assert.deepEqual(lost, [], 'no acknowledged identity is lost');
      for (const [deviceId, seq] of desired) {
        assert.equal((await after.getTwin(deviceId)).responseBody.properties.desired.seq, seq, `desired of ${deviceId}`);
      }
      const reported = (await after.getTwin('crash-reporter')).responseBody.properties.reported;
      assert.ok(reported.n >= lastReported, `reported n ${reported.n} >= last acknowledged ${lastReported}`);

      await allArrive(
        restarted.eventHub,
        `the ${sent.length} acknowledged messages`,
        (event) => String(event.properties?.n),
        sent.map(String),
      );
    } finally {
      await restarted.stop();
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('kill -9 between send and delivery: every cloud-to-device message the hub accepted is delivered after a restart, in order', async () => {
  const home = tempDir();
  const dataDir = join(home, 'data');
  try {
    const hub = await startHub(home, dataDir);
    const key = (await createRegistry(hub.connection).create({ deviceId: 'crash-c2d' })).responseBody.authentication!.symmetricKey!
      .primaryKey;
    const service = createServiceClient(hub.connection);
    await service.open();
    const accepted: string[] = [];
    for (let i = 0; i < 5; i++) {
      const message = new deviceSdk.Message(`c2d ${i}`);
      await service.send('crash-c2d', message);
      accepted.push(`c2d ${i}`);
    }
    // Closed first: a service client whose hub vanished keeps the test process alive for half a minute.
    await service.close();
    hub.process.child.kill('SIGKILL');
    await hub.process.exit();

    const restarted = await restartInProcess(dataDir);
    try {
      const device = await rawConnect(restarted.hub, { deviceId: 'crash-c2d' }, deviceToken({ deviceId: 'crash-c2d' }, key));
      assert.ok(typeof device !== 'number', `device connected (CONNACK ${device})`);
      const received: string[] = [];
      const all = new Promise<void>((resolve) =>
        device.on('message', (_topic, payload) => {
          received.push(payload.toString());
          if (received.length === accepted.length) resolve();
        }),
      );
      await subscribe(device, ['devices/crash-c2d/messages/devicebound/#'], 1);
      await within(30_000, `the ${accepted.length} accepted messages`, all);
      device.end(true);
      assert.deepEqual(received, accepted);
    } finally {
      await restarted.stop();
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('kill -9 during AMQP device-to-cloud sends: every message the hub accepted is there after a restart', async () => {
  const home = tempDir();
  const dataDir = join(home, 'data');
  try {
    const hub = await startHub(home, dataDir);
    const key = (await createRegistry(hub.connection).create({ deviceId: 'crash-amqp' })).responseBody.authentication!.symmetricKey!
      .primaryKey;
    const connection = await openAmqp(hub.address.port, {}, hub.address.tls);
    const audience = 'localhost/devices/crash-amqp';
    assert.equal(await putToken(connection, audience, createSasToken(audience, key, undefined, 3600)), 200);
    const link = connection.open_sender({ target: { address: '/devices/crash-amqp/messages/events' } });
    // 200 messages in flight at a time; `accepted` gets the n of each the hub accepted before it died.
    const accepted: number[] = [];
    const inFlight = new Map<Delivery, number>();
    let next = 0;
    const sendMore = () => {
      while (link.sendable() && inFlight.size < 200) {
        const n = next++;
        inFlight.set(link.send({ message_id: `amqp-${n}`, body: rhea.message.data_section(Buffer.from(JSON.stringify({ n }))) }), n);
      }
    };
    link.on('accepted', (context: EventContext) => {
      accepted.push(inFlight.get(context.delivery!)!);
      inFlight.delete(context.delivery!);
      sendMore();
    });
    link.on('sendable', sendMore);
    await until(() => accepted.length > 0, 'a first message is accepted', 60_000);
    await new Promise((r) => setTimeout(r, RUN_BEFORE_KILL_MS));
    hub.process.child.kill('SIGKILL');
    await hub.process.exit();
    const settled = [...accepted];
    connection.close();

    const restarted = await restartInProcess(dataDir);
    try {
      await allArrive(
        restarted.eventHub,
        `the ${settled.length} accepted messages`,
        (event) => String(event.messageId),
        settled.map((n) => `amqp-${n}`),
      );
    } finally {
      await restarted.stop();
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
