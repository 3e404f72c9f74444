import { test, describe, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import deviceSdk from 'azure-iot-device';
import { createServiceClient, type ServiceProtocol } from '../../src/clients/service-clients.js';
import type { DeviceClient, DeviceTransport } from '../../src/clients/device-clients.js';
import { onDisk, startTestHub, restCall, tempDir, type TestHub } from '../helpers/hub.js';
import { createLog } from '../../src/hub/log.js';
import { openDevice, registerIdentity, until } from '../helpers/devices.js';
import { rawConnect, subscribe, deviceToken } from '../helpers/mqtt.js';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import { randomBytes } from 'node:crypto';
import { identityConnectionWithKey, parseConnection } from '../../src/clients/connection-string.js';
import { c2dMessage, nextFeedback } from '../helpers/c2d.js';

type Message = deviceSdk.Message;

/** The messages a device client receives, as the tutorial's SimulatedDevice prints them. */
function collect(
  device: DeviceClient,
): Array<{ data: string; messageId?: string; correlationId?: string; properties: Record<string, string> }> {
  const received: Array<{ data: string; messageId?: string; correlationId?: string; properties: Record<string, string> }> = [];
  device.on('message', (msg: Message) => {
    const properties: Record<string, string> = {};
    for (let i = 0; i < msg.properties.count(); i++) {
      const item = msg.properties.getItem(i);
      properties[item.key] = item.value;
    }
    received.push({ data: msg.getData().toString(), messageId: msg.messageId, correlationId: msg.correlationId, properties });
    void device.complete(msg);
  });
  return received;
}

describe('cloud-to-device messages: azure-iothub Client over AMQP to azure-iot-device over MQTT', () => {
  let t: TestHub;
  const devices: DeviceClient[] = [];
  const logLines: string[] = [];
  before(async () => (t = await startTestHub({ log: createLog('info', (line) => logLines.push(line)) })));
  after(async () => {
    await Promise.all(devices.map((d) => d.close()));
    await t.dispose();
  });

  async function receivingDevice(deviceId: string, protocol: DeviceTransport = 'mqtt') {
    const device = await openDevice(await registerIdentity(t, deviceId), protocol);
    devices.push(device);
    const received = collect(device);
    await until(
      () => t.hub.mqtt.isSubscribed({ deviceId }, `devices/${deviceId}/messages/devicebound/`),
      `${deviceId} listens for messages`,
    );
    return { device, received };
  }
  /** A service client, closed when the test ends: feedback is one queue, and an open receiver of an earlier test would take a share. */
  async function service(ctx: TestContext, protocol: ServiceProtocol = 'amqp') {
    const client = createServiceClient(t.connection, protocol);
    ctx.after(() => client.close());
    await client.open();
    return client;
  }

  for (const [serviceProtocol, deviceProtocol] of [
    ['amqp', 'mqtt'],
    ['amqpWs', 'mqtt-ws'],
  ] as const) {
    test(`a round trip over ${serviceProtocol} to ${deviceProtocol}: body, ids, properties, and Success feedback`, async (ctx) => {
      const deviceId = `c2d-${serviceProtocol}`;
      const { received } = await receivingDevice(deviceId, deviceProtocol);
      const client = await service(ctx, serviceProtocol);
      const feedback = nextFeedback((await client.getFeedbackReceiver()).result);
      await client.send(
        deviceId,
        c2dMessage('Cloud to device message.', { messageId: 'm-1', correlationId: 'c-1', ack: 'full' }, { colour: 'blue' }),
      );
      await until(() => received.length === 1, 'the device got the message');
      assert.equal(received[0]!.data, 'Cloud to device message.');
      assert.equal(received[0]!.messageId, 'm-1');
      assert.equal(received[0]!.correlationId, 'c-1');
      assert.equal(received[0]!.properties.colour, 'blue');
      const [record, ...others] = await feedback;
      assert.equal(others.length, 0);
      assert.equal(record.originalMessageId, 'm-1');
      assert.equal(record.deviceId, deviceId);
      assert.equal(record.statusCode, 'Success');
      assert.equal(record.deviceGenerationId, t.hub.registry.get(deviceId).generationId);
      await until(() => t.hub.c2d.depth(deviceId) === 0, 'the queue is empty');
    });
  }

  test('a device offline at send time gets its messages at connect, in order; another device gets none of them', async (ctx) => {
    const connection = await registerIdentity(t, 'c2d-offline');
    const client = await service(ctx);
    for (let i = 0; i < 5; i++) await client.send('c2d-offline', c2dMessage(`message ${i}`));
    assert.equal(t.hub.c2d.depth('c2d-offline'), 5);
    const { received: other } = await receivingDevice('c2d-bystander');
    const device = await openDevice(connection);
    devices.push(device);
    const received = collect(device);
    await until(() => received.length === 5, 'the device got its five messages');
    assert.deepEqual(
      received.map((m) => m.data),
      [0, 1, 2, 3, 4].map((i) => `message ${i}`),
    );
    assert.equal(other.length, 0);
  });

  test('the 51st queued message is refused with DeviceMaximumQueueDepthExceeded; a purge empties the queue with Purged feedback', async (ctx) => {
    await registerIdentity(t, 'c2d-full');
    const client = await service(ctx);
    const feedbackReceiver = (await client.getFeedbackReceiver()).result;
    for (let i = 0; i < 50; i++)
      await client.send('c2d-full', c2dMessage(`m${i}`, { messageId: `full-${i}`, ack: i === 0 ? 'negative' : 'none' }));
    await assert.rejects(
      client.send('c2d-full', c2dMessage('one too many')),
      (err: Error) => err.constructor.name === 'DeviceMaximumQueueDepthExceededError',
    );
    const feedback = nextFeedback(feedbackReceiver);
    const purged = await restCall(
      t,
      'DELETE',
      '/devices/c2d-full/commands?api-version=2021-04-12',
      createSasToken('localhost', t.hub.auth.policy('service')!.primaryKey, 'service', 600),
    );
    assert.equal(purged.status, 200);
    assert.deepEqual(purged.body, { totalMessagesPurged: 50, deviceId: 'c2d-full', moduleId: null });
    const records = await feedback;
    assert.deepEqual(
      records.map((r) => [r.originalMessageId, r.statusCode]),
      [['full-0', 'Purged']],
    );
    assert.equal(t.hub.c2d.depth('c2d-full'), 0);
  });

  test('a message to a device that does not exist is refused with DeviceNotFoundError', async (ctx) => {
    const client = await service(ctx);
    await assert.rejects(client.send('c2d-nobody', c2dMessage('hello')), (err: Error) => err.constructor.name === 'DeviceNotFoundError');
  });

  test('an expired message leaves the queue with Expired feedback and never reaches the device', async (ctx) => {
    const connection = await registerIdentity(t, 'c2d-expiry');
    const client = await service(ctx);
    const feedback = nextFeedback((await client.getFeedbackReceiver()).result);
    await client.send(
      'c2d-expiry',
      c2dMessage('too late', {
        messageId: 'exp-1',
        ack: 'negative',
        expiryTimeUtc: Date.now() + 1000 /* ms: the SDK passes it to rhea as an AMQP timestamp */,
      }),
    );
    const records = await feedback;
    assert.deepEqual(
      records.map((r) => [r.originalMessageId, r.statusCode, r.description]),
      [['exp-1', 'Expired', 'Message Expired']],
    );
    const device = await openDevice(connection);
    devices.push(device);
    const received = collect(device);
    await until(() => t.hub.mqtt.isSubscribed({ deviceId: 'c2d-expiry' }, 'devices/c2d-expiry/messages/devicebound/'), 'subscribed');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(received.length, 0);
  });

  test('a message not acknowledged is delivered again after a reconnect, and dead-lettered after 10 deliveries', async (ctx) => {
    const connection = await registerIdentity(t, 'c2d-noack');
    const client = await service(ctx);
    const feedbackReceiver = (await client.getFeedbackReceiver()).result;
    await client.send('c2d-noack', c2dMessage('ack me', { messageId: 'noack-1', ack: 'full' }));
    const password = deviceToken({ deviceId: 'c2d-noack' }, connection.key);
    const deliveries: boolean[] = [];
    for (let attempt = 1; attempt <= 10; attempt++) {
      const raw = await rawConnect(t.hub, { deviceId: 'c2d-noack' }, password);
      assert.ok(typeof raw !== 'number');
      // Never calls back: MQTT.js sends the PUBACK only once handleMessage is done.
      const got = new Promise<boolean>((resolve) => {
        raw.handleMessage = (packet, _done) => resolve((packet as { dup?: boolean }).dup === true);
      });
      assert.deepEqual(await subscribe(raw, ['devices/c2d-noack/messages/devicebound/#'], 1), [1]);
      deliveries.push(await got);
      raw.end(true);
      await until(() => !t.hub.mqtt.session({ deviceId: 'c2d-noack' }), 'the hub saw the disconnect');
    }
    assert.deepEqual(deliveries, [false, true, true, true, true, true, true, true, true, true]);
    const feedback = nextFeedback(feedbackReceiver);
    const raw = await rawConnect(t.hub, { deviceId: 'c2d-noack' }, password);
    assert.ok(typeof raw !== 'number');
    await subscribe(raw, ['devices/c2d-noack/messages/devicebound/#'], 1);
    const records = await feedback;
    raw.end(true);
    assert.deepEqual(
      records.map((r) => [r.originalMessageId, r.statusCode]),
      [['noack-1', 'DeliveryCountExceeded']],
    );
    assert.equal(t.hub.c2d.depth('c2d-noack'), 0);
  });

  test('a token signed with a wrong key is refused at put-token', async () => {
    const wrongKey = parseConnection(
      'service',
      `HostName=localhost;SharedAccessKeyName=service;SharedAccessKey=${randomBytes(32).toString('base64')}`,
      { ca: t.hub.tls.ca, port: t.hub.port },
    );
    const client = createServiceClient(wrongKey);
    await assert.rejects(client.open(), (err: Error & { amqpError?: Error }) => err.amqpError?.constructor.name === 'UnauthorizedError');
    await client.close();
  });

  test('a token of a policy without ServiceConnect (registryRead) is refused at put-token', async () => {
    const client = createServiceClient(t.connectionFor('registryRead'));
    // The SDK wraps the put-token's 401 ("AMQP Transport: Could not connect"), keeping it as amqpError.
    await assert.rejects(client.open(), (err: Error & { amqpError?: Error }) => err.amqpError?.constructor.name === 'UnauthorizedError');
    await client.close();
    assert.ok(
      logLines.some((l) => / info {2}amqp: refused a put-token on \$cbs for 'localhost' from .*: 401 /.test(l)),
      logLines.join(''),
    );
  });

  test('the file upload notification link is accepted, logged, and silent (no storage account) while feedback flows beside it', async (ctx) => {
    const deviceId = 'c2d-filenotify';
    const { received } = await receivingDevice(deviceId);
    const client = await service(ctx);
    // As a service app listens on IoT Hub: the SDK hands out the receiver once the link is attached.
    const notifications = (await client.getFileNotificationReceiver()).result;
    const notified: unknown[] = [];
    notifications.on('message', (m: unknown) => notified.push(m));
    assert.ok(
      logLines.some((l) =>
        /info +amqp: a service listens for file upload notifications: this hub has no storage account for file upload \(hub start --file-upload\)/.test(
          l,
        ),
      ),
      logLines.join(''),
    );
    // The hub's other service-bound messages (feedback) go to the feedback link, not to this one.
    const feedback = nextFeedback((await client.getFeedbackReceiver()).result);
    await client.send(deviceId, c2dMessage('with feedback', { messageId: 'fn-1', ack: 'full' }));
    await until(() => received.length === 1, 'the device got the message');
    assert.equal((await feedback)[0].originalMessageId, 'fn-1');
    assert.deepEqual(notified, []);
  });

  test('a module may not subscribe to cloud-to-device messages (SUBACK 0x80)', async () => {
    const connection = await registerIdentity(t, 'c2d-mod-dev', 'mod');
    const raw = await rawConnect(
      t.hub,
      { deviceId: 'c2d-mod-dev', moduleId: 'mod' },
      deviceToken({ deviceId: 'c2d-mod-dev', moduleId: 'mod' }, connection.key),
    );
    assert.ok(typeof raw !== 'number');
    assert.deepEqual(await subscribe(raw, ['devices/c2d-mod-dev/modules/mod/messages/devicebound/#'], 1), [128]);
    raw.end(true);
  });
});

describe('cloud-to-device queues across a restart', () => {
  test('messages queued before a restart are delivered after it, in order', onDisk(), async (ctx) => {
    const first = await startTestHub({ dataDir: tempDir() }); // named: on disk whatever IOTHUB_TUT_TEST_STORE says
    ctx.after(() => first.dispose());
    const connection = await registerIdentity(first, 'c2d-restart');
    const client = createServiceClient(first.connection);
    await client.open();
    for (let i = 0; i < 3; i++) await client.send('c2d-restart', c2dMessage(`kept ${i}`, { messageId: `k${i}` }, { n: String(i) }));
    await client.close();
    await first.stop();
    const second = await startTestHub({ dataDir: first.dataDir });
    ctx.after(() => second.stop());
    assert.equal(second.hub.c2d.depth('c2d-restart'), 3);
    const device = await openDevice(identityConnectionWithKey(second.connection, { deviceId: 'c2d-restart' }, connection.key));
    ctx.after(() => device.close());
    const received = collect(device);
    await until(() => received.length === 3, 'the device got the three messages');
    assert.deepEqual(
      received.map((m) => [m.data, m.messageId, m.properties.n]),
      [
        ['kept 0', 'k0', '0'],
        ['kept 1', 'k1', '1'],
        ['kept 2', 'k2', '2'],
      ],
    );
    await until(() => second.hub.c2d.depth('c2d-restart') === 0, 'the completed messages left the queue');
  });
});
