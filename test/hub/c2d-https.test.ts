import { test, describe, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import deviceSdk from 'azure-iot-device';
import { createServiceClient } from '../../src/clients/service-clients.js';
import { createDeviceClient, type DeviceClient } from '../../src/clients/device-clients.js';
import type { DeviceConnection } from '../../src/clients/connection-string.js';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import { MAX_DELIVERY_COUNT } from '../../src/hub/cloud-to-device/device-queues.js';
import { createLog } from '../../src/hub/log.js';
import { Throttle } from '../../src/hub/throttling.js';
import { restCall, startTestHub, type TestHub } from '../helpers/hub.js';
import { registerIdentity, until } from '../helpers/devices.js';
import { c2dMessage, nextFeedback } from '../helpers/c2d.js';
import { deviceToken as mqttPassword, rawConnect, subscribe } from '../helpers/mqtt.js';

// Cloud-to-device messages polled over HTTPS, as azure-iot-device-http polls them: GET
// /devices/{id}/messages/deviceBound, then DELETE .../{etag} (complete), DELETE .../{etag}?reject or
// POST .../{etag}/abandon, into the same queues and feedback as MQTT's.

const API = '?api-version=2021-04-12';
const deviceBound = (deviceId: string, rest = '') => `/devices/${encodeURIComponent(deviceId)}/messages/deviceBound${rest}`;
// Long enough that a settlement by the SDK follows its receive within it on a loaded, shared event loop (1.5 s was not, once).
const LOCK_TIMEOUT_MS = 5000;

function deviceToken(connection: DeviceConnection, resource = `localhost/devices/${connection.deviceId}`): string {
  return createSasToken(resource, connection.key, undefined, 600);
}

/** The lock token azure-iot-device-http takes from the ETag header (it strips the quotes). */
function lockTokenOf(answer: { headers: Record<string, unknown> }): string {
  const etag = String(answer.headers.etag);
  assert.match(etag, /^"[^"]+"$/, 'the ETag is quoted');
  return etag.slice(1, -1);
}

/** The next message the SDK client receives (bounded): it polls once a second. */
function nextMessage(device: DeviceClient, timeoutMs = 20_000): Promise<deviceSdk.Message> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message arrived')), timeoutMs);
    device.once('message', (message: deviceSdk.Message) => {
      clearTimeout(timer);
      resolve(message);
    });
  });
}

describe('cloud-to-device over HTTPS: azure-iot-device-http polling the local hub', () => {
  let t: TestHub;
  const logLines: string[] = [];
  before(async () => {
    t = await startTestHub({ c2dLockTimeoutMs: LOCK_TIMEOUT_MS, log: createLog('info', (line) => logLines.push(line)) });
  });
  after(async () => {
    await t.dispose();
  });

  /** A service client (AMQP), closed when the test ends: feedback is one queue, an open receiver of an earlier test would take a share. */
  async function service(ctx: TestContext) {
    const client = createServiceClient(t.connection);
    ctx.after(() => client.close());
    await client.open();
    const feedbackReceiver = (await client.getFeedbackReceiver()).result;
    return { client, feedbackReceiver };
  }

  /** A device client over the SDK's Http transport, closed when the test ends. */
  async function httpDevice(ctx: TestContext, connection: DeviceConnection) {
    const device = await createDeviceClient(connection, 'http', { features: ['c2d'] });
    ctx.after(() => device.close());
    await device.open();
    return device;
  }

  for (const [settlement, status, description] of [
    ['complete', 'Success', 'Success'],
    ['reject', 'Rejected', 'Message rejected'],
  ] as const) {
    test(`the SDK's Http client receives a message with its properties; ${settlement} leaves the queue empty with ${status} feedback`, async (ctx) => {
      const deviceId = `https-c2d-${settlement}`;
      const connection = await registerIdentity(t, deviceId);
      const { client, feedbackReceiver } = await service(ctx);
      const feedback = nextFeedback(feedbackReceiver);
      await client.send(
        deviceId,
        c2dMessage('Cloud to device message.', { messageId: `m-${settlement}`, correlationId: 'c-1', ack: 'full' }, { colour: 'blue' }),
      );
      const device = await httpDevice(ctx, connection);
      const message = await nextMessage(device);
      assert.equal(message.getData().toString(), 'Cloud to device message.');
      assert.equal(message.messageId, `m-${settlement}`);
      assert.equal(message.correlationId, 'c-1');
      assert.equal(message.to, `/devices/${deviceId}/messages/deviceBound`);
      assert.ok(Number.isFinite(Date.parse(String(message.expiryTimeUtc))), 'an expiry time');
      // azure-iot-device-http names an application property by its header, prefix and all.
      assert.equal(message.properties.getValue('iothub-app-colour'), 'blue');
      assert.ok(message.lockToken, 'the lock token (the ETag)');
      assert.equal(t.hub.c2d.depth(deviceId), 1, 'a received message stays queued until settled');
      const result = await (settlement === 'complete' ? device.complete(message) : device.reject(message));
      assert.equal(result.constructor.name, settlement === 'complete' ? 'MessageCompleted' : 'MessageRejected');
      const [record, ...others] = await feedback;
      assert.equal(others.length, 0);
      assert.equal(record.originalMessageId, `m-${settlement}`);
      assert.equal(record.deviceId, deviceId);
      assert.equal(record.statusCode, status);
      assert.equal(record.description, description);
      assert.equal(t.hub.c2d.depth(deviceId), 0);
    });
  }

  test("abandon: the SDK's Http client gets the message again, its delivery counted; completed, it is gone", async (ctx) => {
    const connection = await registerIdentity(t, 'https-c2d-abandon');
    const { client, feedbackReceiver } = await service(ctx);
    await client.send('https-c2d-abandon', c2dMessage('try again', { messageId: 'm-abandon', ack: 'full' }));
    const device = await httpDevice(ctx, connection);
    const first = await nextMessage(device);
    const again = nextMessage(device);
    assert.equal((await device.abandon(first)).constructor.name, 'MessageAbandoned');
    const second = await again;
    assert.equal(second.messageId, 'm-abandon');
    assert.notEqual(second.lockToken, first.lockToken, 'each delivery has its own lock token');
    assert.equal(t.hub.c2d.pending('https-c2d-abandon')[0]!.deliveryCount, 2);
    const feedback = nextFeedback(feedbackReceiver);
    await device.complete(second);
    assert.deepEqual(
      (await feedback).map((r) => [r.originalMessageId, r.statusCode]),
      [['m-abandon', 'Success']],
    );
    assert.equal(t.hub.c2d.depth('https-c2d-abandon'), 0);
  });

  test("a poll is answered as IoT Hub answers it: 204 when empty, else 200 with the body, IoT Hub's headers and a quoted ETag", async () => {
    const connection = await registerIdentity(t, 'https-c2d-headers');
    const token = deviceToken(connection);
    const empty = await restCall(t, 'GET', deviceBound('https-c2d-headers', API), token);
    assert.equal(empty.status, 204);
    const queued = t.hub.c2d.enqueue({
      deviceId: 'https-c2d-headers',
      messageId: 'm-1',
      correlationId: 'c-1',
      userId: 'u-1',
      ack: 'positive',
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      properties: { Colour: 'blue', 'no token': 'grün' },
      body: Buffer.from('{"lock":true}'),
    });
    const answer = await restCall(t, 'GET', deviceBound('https-c2d-headers', API), token);
    assert.equal(answer.status, 200);
    assert.equal(answer.body, '{"lock":true}');
    const h = answer.headers;
    assert.equal(h['iothub-messageid'], 'm-1');
    assert.equal(h['iothub-correlationid'], 'c-1');
    assert.equal(h['iothub-userid'], 'u-1');
    assert.equal(h['iothub-to'], '/devices/https-c2d-headers/messages/deviceBound');
    assert.equal(h['iothub-ack'], 'positive');
    assert.equal(h['iothub-contenttype'], 'application/json');
    assert.equal(h['iothub-contentencoding'], 'utf-8');
    assert.equal(h['iothub-expiry'], new Date(queued.expiryMs).toISOString());
    assert.equal(h['iothub-enqueuedtime'], new Date(queued.enqueuedMs).toISOString());
    assert.equal(h['iothub-deliverycount'], '0', 'no delivery before this one');
    assert.equal(h['iothub-sequencenumber'], String(queued.seq));
    assert.equal(h['iothub-app-colour'], 'blue');
    // What a header cannot hold (a space in a name, non-ASCII in a value) is percent-encoded.
    assert.equal(h['iothub-app-no%20token'], 'gr%C3%BCn');
    lockTokenOf(answer);
    assert.equal((await restCall(t, 'GET', deviceBound('https-c2d-headers', API), token)).status, 204, 'a locked message is invisible');
  });

  test('a lock that times out lapses: the message is received again with its delivery count one more, and the old lock token is refused (412)', async () => {
    const connection = await registerIdentity(t, 'https-c2d-lock');
    const token = deviceToken(connection);
    t.hub.c2d.enqueue({ deviceId: 'https-c2d-lock', messageId: 'm-lock', properties: {}, body: Buffer.from('x') });
    // The hub locks the message at some moment of the first request: not before `lapsedAt` does it lapse.
    const lapsedAt = Date.now() + LOCK_TIMEOUT_MS;
    const first = await restCall(t, 'GET', deviceBound('https-c2d-lock', API), token);
    assert.equal(first.status, 200);
    let second = await restCall(t, 'GET', deviceBound('https-c2d-lock', API), token);
    if (Date.now() < lapsedAt) assert.equal(second.status, 204, 'invisible while locked');
    while (second.status === 204) {
      assert.ok(Date.now() < lapsedAt + 20_000, 'the message came back after its lock timed out');
      await new Promise((r) => setTimeout(r, 200));
      second = await restCall(t, 'GET', deviceBound('https-c2d-lock', API), token);
    }
    assert.equal(second.status, 200);
    assert.ok(Date.now() >= lapsedAt, 'not before the lock timeout');
    assert.equal(second.headers['iothub-messageid'], 'm-lock');
    assert.equal(second.headers['iothub-deliverycount'], '1');
    const stale = await restCall(t, 'DELETE', deviceBound('https-c2d-lock', `/${lockTokenOf(first)}${API}`), token);
    assert.equal(stale.status, 412);
    assert.equal(stale.body.errorCode, 412002);
    assert.match(stale.body.Message, /^ErrorCode:DeviceMessageLockLost;/);
    assert.equal(t.hub.c2d.depth('https-c2d-lock'), 1, 'a refused settlement changes nothing');
    assert.equal((await restCall(t, 'DELETE', deviceBound('https-c2d-lock', `/${lockTokenOf(second)}${API}`), token)).status, 204);
    assert.equal(t.hub.c2d.depth('https-c2d-lock'), 0);
  });

  test('a device polling over HTTPS and connected over MQTT at once gets each message on one of them only', async () => {
    const deviceId = 'https-c2d-and-mqtt';
    const connection = await registerIdentity(t, deviceId);
    const token = deviceToken(connection);
    const poll = () => restCall(t, 'GET', deviceBound(deviceId, API), token);
    /** An MQTT connection that records what it is sent and, unless it acknowledges, never PUBACKs. */
    const mqttDevice = async (acknowledge: boolean) => {
      const raw = await rawConnect(t.hub, { deviceId }, mqttPassword({ deviceId }, connection.key));
      assert.ok(typeof raw !== 'number');
      const got: Array<{ topic: string; dup: boolean }> = [];
      raw.handleMessage = (packet, done) => {
        got.push({ topic: (packet as { topic: string }).topic, dup: (packet as { dup?: boolean }).dup === true });
        if (acknowledge) done();
      };
      assert.deepEqual(await subscribe(raw, [`devices/${deviceId}/messages/devicebound/#`], 1), [1]);
      return { raw, got };
    };

    const first = await mqttDevice(false);
    t.hub.c2d.enqueue({ deviceId, messageId: 'both-1', properties: {}, body: Buffer.from('one') });
    await until(() => first.got.length === 1, 'the MQTT connection got the message');
    assert.equal((await poll()).status, 204, 'out on MQTT, not acknowledged: a poll does not get it too');

    // The MQTT connection ends without a PUBACK: the message goes out again, to the next poll.
    first.raw.end(true);
    await until(() => !t.hub.mqtt.session({ deviceId }), 'the hub saw the disconnect');
    const lockedFrom = Date.now();
    const locked = await poll();
    assert.equal(locked.status, 200);
    assert.equal(locked.headers['iothub-messageid'], 'both-1');
    assert.equal(locked.headers['iothub-deliverycount'], '1', 'its second delivery');

    // Locked for the poll: a new MQTT connection is not sent it until the lock lapses.
    const second = await mqttDevice(true);
    await until(() => second.got.length === 1, 'the lapsed lock sent the message over MQTT', 20_000);
    assert.ok(Date.now() >= lockedFrom + LOCK_TIMEOUT_MS, 'not while the poll held its lock');
    assert.equal(second.got[0]!.dup, true, 'a redelivery');
    await until(() => t.hub.c2d.depth(deviceId) === 0, 'the PUBACK completed the message');
    const stale = await restCall(t, 'DELETE', deviceBound(deviceId, `/${lockTokenOf(locked)}${API}`), token);
    assert.equal(stale.status, 412, "the lapsed lock's token settles nothing");
    second.raw.end(true);
  });

  test("the SDK's Amqp and Http clients of one device at once: a message the Amqp client holds is not polled; left unsettled, the Http client gets it", async (ctx) => {
    const deviceId = 'https-c2d-and-amqp';
    const connection = await registerIdentity(t, deviceId);
    const amqp = await createDeviceClient(connection, 'amqp', { features: ['c2d'] });
    ctx.after(() => amqp.close());
    await amqp.open();
    // A listener for the whole test: the SDK detaches its receiving link when the last one goes (and the hub takes back what it held).
    const held: deviceSdk.Message[] = [];
    amqp.on('message', (message: deviceSdk.Message) => held.push(message));
    t.hub.c2d.enqueue({ deviceId, messageId: 'two-sdks', properties: {}, body: Buffer.from('once') });
    await until(() => held.length === 1, 'the Amqp client got the message');
    const first = held[0]!;
    assert.equal(first.messageId, 'two-sdks');

    const http = await httpDevice(ctx, connection);
    const polled: deviceSdk.Message[] = [];
    http.on('message', (message: deviceSdk.Message) => polled.push(message));
    await new Promise((r) => setTimeout(r, 2500)); // the Http client polls once a second
    assert.equal(polled.length, 0, 'out on the AMQP link, unsettled: no poll gets it');

    // Abandoned, it goes out again to whoever asks next: the Amqp link, which has credit, at once.
    await amqp.abandon(first);
    await until(() => held.length === 2, 'the Amqp client got the abandoned message again');
    assert.equal(polled.length, 0);
    // The Amqp client closes without settling it: now a poll gets it.
    await amqp.close();
    await until(() => polled.length === 1, 'the Http client polled the message the Amqp client left', 20_000);
    assert.equal(polled[0]!.messageId, 'two-sdks');
    await http.complete(polled[0]!);
    assert.equal(t.hub.c2d.depth(deviceId), 0);
  });

  test('a settled, unknown or foreign lock token is 412 DeviceMessageLockLost; methods the routes lack are 405', async () => {
    const connection = await registerIdentity(t, 'https-c2d-stale');
    const other = await registerIdentity(t, 'https-c2d-stale-other');
    const token = deviceToken(connection);
    for (const deviceId of ['https-c2d-stale', 'https-c2d-stale-other'])
      t.hub.c2d.enqueue({ deviceId, messageId: `m-${deviceId}`, properties: {}, body: Buffer.from('x') });
    const mine = lockTokenOf(await restCall(t, 'GET', deviceBound('https-c2d-stale', API), token));
    const theirs = lockTokenOf(await restCall(t, 'GET', deviceBound('https-c2d-stale-other', API), deviceToken(other)));
    const lockLost = async (method: string, path: string, what: string) => {
      const answer = await restCall(t, method, path, token);
      assert.equal(answer.status, 412, what);
      assert.equal(answer.body.errorCode, 412002, what);
    };
    await lockLost('DELETE', deviceBound('https-c2d-stale', `/${theirs}${API}`), "another device's lock token on this device's path");
    await lockLost('DELETE', deviceBound('https-c2d-stale', `/not-a-lock${API}`), 'a token the hub never gave');
    assert.equal((await restCall(t, 'DELETE', deviceBound('https-c2d-stale', `/${mine}${API}`), token)).status, 204);
    await lockLost('DELETE', deviceBound('https-c2d-stale', `/${mine}${API}`), 'completed twice');
    await lockLost('DELETE', deviceBound('https-c2d-stale', `/${mine}${API}&reject`), 'rejected after completion');
    await lockLost('POST', deviceBound('https-c2d-stale', `/${mine}/abandon${API}`), 'abandoned after completion');
    assert.equal(t.hub.c2d.depth('https-c2d-stale-other'), 1, "the other device's message is untouched");
    assert.ok(
      logLines.some((l) =>
        / info +rest: device DELETE \/devices\/https-c2d-stale\/messages\/deviceBound\/not-a-lock.*: 412 DeviceMessageLockLost /.test(l),
      ),
      'a refused settlement is an info line with its reason',
    );

    for (const [method, rest] of [
      ['POST', ''],
      ['DELETE', ''],
      ['GET', `/${mine}`],
      ['DELETE', `/${mine}/abandon`],
    ] as const) {
      assert.equal((await restCall(t, method, deviceBound('https-c2d-stale', rest + API), token)).status, 405, `${method} ${rest}`);
    }
    assert.equal((await restCall(t, 'GET', deviceBound('https-c2d-stale', `/a/b/c${API}`), token)).status, 404);
  });

  test("another device's token, a module's token, a policy without DeviceConnect or no token: 401, and the queue is untouched", async () => {
    const connection = await registerIdentity(t, 'https-c2d-auth');
    const other = await registerIdentity(t, 'https-c2d-auth-other');
    const module = await registerIdentity(t, 'https-c2d-auth-gw', 'mod');
    for (const deviceId of ['https-c2d-auth', 'https-c2d-auth-gw'])
      t.hub.c2d.enqueue({ deviceId, messageId: 'm-auth', properties: {}, body: Buffer.from('secret') });
    const policy = (name: string) => t.hub.auth.policy(name)!.primaryKey;
    const refused: Array<[string, string | undefined, string?]> = [
      ['no token', undefined],
      ["another device's token", deviceToken(other)],
      ["another device's key, scoped to this device", deviceToken(other, 'localhost/devices/https-c2d-auth')],
      [
        "a module's token on its device's path (modules have no cloud-to-device queue)",
        deviceToken(module, 'localhost/devices/https-c2d-auth-gw/modules/mod'),
        'https-c2d-auth-gw',
      ],
      ['the service policy (no DeviceConnect)', createSasToken('localhost', policy('service'), 'service', 600)],
    ];
    for (const [what, authorization, deviceId = 'https-c2d-auth'] of refused) {
      const answer = await restCall(t, 'GET', deviceBound(deviceId, API), authorization);
      assert.equal(answer.status, 401, what);
      assert.equal(answer.body.errorCode, 401002, what);
    }
    for (const deviceId of ['https-c2d-auth', 'https-c2d-auth-gw'])
      assert.equal(t.hub.c2d.pending(deviceId)[0]!.deliveryCount, 0, `no refused poll took ${deviceId}'s message`);
    const answer = await restCall(t, 'GET', deviceBound('https-c2d-auth', API), deviceToken(connection));
    assert.equal(answer.status, 200, "the device's own token");
    assert.equal(answer.body, 'secret');
  });

  test(`abandoned ${MAX_DELIVERY_COUNT} times, a message is dead-lettered at the next poll with DeliveryCountExceeded feedback`, async (ctx) => {
    const connection = await registerIdentity(t, 'https-c2d-dlq');
    const token = deviceToken(connection);
    const { client, feedbackReceiver } = await service(ctx);
    await client.send('https-c2d-dlq', c2dMessage('unwanted', { messageId: 'm-dlq', ack: 'negative' }));
    for (let delivery = 0; delivery < MAX_DELIVERY_COUNT; delivery++) {
      const answer = await restCall(t, 'GET', deviceBound('https-c2d-dlq', API), token);
      assert.equal(answer.status, 200, `delivery ${delivery + 1}`);
      assert.equal(answer.headers['iothub-deliverycount'], String(delivery));
      const abandoned = await restCall(t, 'POST', deviceBound('https-c2d-dlq', `/${lockTokenOf(answer)}/abandon${API}`), token);
      assert.equal(abandoned.status, 204);
    }
    const feedback = nextFeedback(feedbackReceiver);
    assert.equal((await restCall(t, 'GET', deviceBound('https-c2d-dlq', API), token)).status, 204);
    assert.deepEqual(
      (await feedback).map((r) => [r.originalMessageId, r.statusCode]),
      [['m-dlq', 'DeliveryCountExceeded']],
    );
    await until(() => t.hub.c2d.depth('https-c2d-dlq') === 0, 'the message left the queue');
  });

  test("beyond the tier's cloud-to-device receive throttle (1,000 a minute on S1) a poll is 429; a settlement is not a receive", async () => {
    const throttle = new Throttle('s1', () => 0); // a stopped clock: nothing refills
    const throttled = await startTestHub({ throttle });
    try {
      const connection = await registerIdentity(throttled, 'https-c2d-throttled');
      const token = deviceToken(connection);
      throttled.hub.c2d.enqueue({ deviceId: 'https-c2d-throttled', properties: {}, body: Buffer.from('x') });
      assert.ok(throttle.allow('c2dReceive', 998), "a minute's worth but two");
      const received = await restCall(throttled, 'GET', deviceBound('https-c2d-throttled', API), token);
      assert.equal(received.status, 200);
      assert.equal((await restCall(throttled, 'GET', deviceBound('https-c2d-throttled', API), token)).status, 204);
      const refused = await restCall(throttled, 'GET', deviceBound('https-c2d-throttled', API), token);
      assert.equal(refused.status, 429);
      assert.equal(refused.body.errorCode, 429001);
      const completed = await restCall(throttled, 'DELETE', deviceBound('https-c2d-throttled', `/${lockTokenOf(received)}${API}`), token);
      assert.equal(completed.status, 204);
      assert.equal(throttled.hub.c2d.depth('https-c2d-throttled'), 0);
    } finally {
      await throttled.dispose();
    }
  });
});
