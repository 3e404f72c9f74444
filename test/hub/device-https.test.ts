import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import deviceSdk from 'azure-iot-device';
import { earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import { Throttle } from '../../src/hub/throttling.js';
import { BATCH_CONTENT_TYPE } from '../../src/hub/device-gateway/https-gateway.js';
import { createDeviceClient } from '../../src/clients/device-clients.js';
import { certificateConnection, type DeviceConnection } from '../../src/clients/connection-string.js';
import { makeCertificate } from '../../src/clients/certificates.js';
import { createRegistry } from '../../src/clients/service-clients.js';
import { c2dRoundTrip } from '../helpers/c2d.js';
import { restCall, startTestHub, type TestHub } from '../helpers/hub.js';
import { openDevice, registerIdentity } from '../helpers/devices.js';
import { collect, consumer } from '../helpers/events.js';

// Devices over HTTPS, as azure-iot-device-http sends: single messages and batches into the same event
// log as MQTT, with the same stamps and limits, behind IoT Hub's 401s (cloud-to-device polling: c2d-https.test.ts).

const WAIT_MS = 60_000;
const EVENTS = (deviceId: string) => `/devices/${encodeURIComponent(deviceId)}/messages/events?api-version=2021-04-12`;

/** The tutorial's message n, as send-telemetry builds it, tagged with the run. */
function tutorialMessage(n: number, run: string): deviceSdk.Message {
  const message = new deviceSdk.Message(JSON.stringify({ n, windSpeed: 12.5 }));
  message.messageId = `message_${n}`;
  message.correlationId = `correlation_${n}`;
  message.contentType = 'application/json';
  message.contentEncoding = 'utf-8';
  message.properties.add('Property', `PropMsg_${n}`);
  message.properties.add('run', run);
  return message;
}

/** Every stored event of a device, oldest first. */
function storedOf(t: TestHub, deviceId: string) {
  return t.hub.eventLog
    .read(t.hub.eventLog.partitionOf(deviceId), 0, 100_000)
    .filter((e) => e.annotations['iothub-connection-device-id'] === deviceId);
}

function deviceToken(connection: DeviceConnection, ttlSeconds = 600, resource = `localhost/devices/${connection.deviceId}`): string {
  return createSasToken(resource, connection.key, undefined, ttlSeconds);
}

describe('device HTTPS: azure-iot-device-http against the local hub', () => {
  let t: TestHub;
  before(async () => {
    t = await startTestHub();
  });
  after(async () => {
    await t.dispose();
  });

  test("a message with the tutorial properties reaches Event Hubs readers stamped exactly as the same device's MQTT message", async () => {
    const connection = await registerIdentity(t, 'https-tutorial');
    const http = await createDeviceClient(connection, 'http', { features: ['telemetry'] });
    const mqtt = await openDevice(connection);
    try {
      await http.open();
      const sent = await http.sendEvent(tutorialMessage(1, 'https'));
      assert.equal(sent.constructor.name, 'MessageEnqueued');
      await mqtt.sendEvent(tutorialMessage(2, 'mqtt'));
    } finally {
      await http.close();
      await mqtt.close();
    }
    const client = consumer(t.hub.eventHubConnectionString());
    const received = collect(client, earliestEventPosition);
    const byRun = (run: string) => received.events.find((e) => e.properties?.run === run);
    try {
      await received.until(WAIT_MS, 'both messages', () => !!byRun('https') && !!byRun('mqtt'));
      const [https, mqttEvent] = [byRun('https')!, byRun('mqtt')!];
      assert.deepEqual(https.body, { n: 1, windSpeed: 12.5 }); // a JSON body: @azure/event-hubs gives it parsed
      assert.equal(https.messageId, 'message_1');
      assert.equal(https.correlationId, 'correlation_1');
      assert.equal(https.contentType, 'application/json');
      assert.deepEqual(https.properties, { Property: 'PropMsg_1', run: 'https' });
      // The same stamps (device, auth method, generation id, source) and the same system properties as over MQTT.
      const stamps = (e: ReceivedEventData) =>
        Object.fromEntries(
          Object.entries(e.systemProperties ?? {}).filter(([k]) => k.startsWith('iothub-') && k !== 'iothub-enqueuedtime'),
        );
      assert.equal(stamps(https)['iothub-connection-device-id'], 'https-tutorial');
      assert.deepEqual(stamps(https), stamps(mqttEvent));
      assert.deepEqual(Object.keys(https.systemProperties ?? {}).sort(), Object.keys(mqttEvent.systemProperties ?? {}).sort());
    } finally {
      await received.close();
      await client.close();
    }
  });

  test('an X.509 device (a client certificate, no token): telemetry stamped x509, cloud-to-device polled; a certificate not its own is 401', async () => {
    const deviceId = 'https-x509';
    const cert = makeCertificate({ commonName: deviceId });
    const registry = createRegistry(t.connection);
    const selfSigned = (thumbprint: string) => ({ type: 'selfSigned', x509Thumbprint: { primaryThumbprint: thumbprint } });
    await registry.create({ deviceId, authentication: selfSigned(cert.sha256) } as any);
    await registry.create({
      deviceId: `${deviceId}-other`,
      authentication: selfSigned(makeCertificate({ commonName: 'other' }).sha256),
    } as any);
    const clientFor = (id: string) =>
      createDeviceClient(
        certificateConnection({ hostName: 'localhost', transport: t.connection.transport }, { deviceId: id }, cert),
        'http',
      );
    const client = await clientFor(deviceId);
    try {
      await client.open();
      await client.sendEvent(new deviceSdk.Message('from a certificate'));
      assert.equal(await c2dRoundTrip(client, t.connection, deviceId, 'to a certificate'), 'to a certificate');
    } finally {
      await client.close();
    }
    const [event] = storedOf(t, deviceId);
    assert.match(String(event!.annotations['iothub-connection-auth-method']), /"type":"x509Certificate"/);
    // This certificate for another device, and a request with neither token nor certificate: 401, with why.
    const other = await clientFor(`${deviceId}-other`);
    try {
      await assert.rejects(other.sendEvent(new deviceSdk.Message('not mine')), { name: 'UnauthorizedError' });
    } finally {
      await other.close();
    }
    const bare = await restCall(t, 'POST', `/devices/${deviceId}/messages/events?api-version=2021-04-12`, '', 'x');
    assert.equal(bare.status, 401);
    assert.match(bare.body.Message, /no Authorization header with a SharedAccessSignature, and no client certificate/);
  });

  test('sendEventBatch: each message of a batch is its own event, in order, with its properties', async () => {
    const connection = await registerIdentity(t, 'https-batch');
    const http = await createDeviceClient(connection, 'http', { features: ['telemetry'] });
    try {
      await http.sendEventBatch([1, 2, 3].map((n) => tutorialMessage(n, 'batch')));
    } finally {
      await http.close();
    }
    const stored = storedOf(t, 'https-batch');
    assert.deepEqual(
      stored.map((e) => JSON.parse(Buffer.from(e.body).toString()).n),
      [1, 2, 3],
    );
    assert.deepEqual(
      stored.map((e) => e.properties),
      [1, 2, 3].map((n) => ({ Property: `PropMsg_${n}`, run: 'batch' })),
    );
    assert.equal(stored[0]!.annotations['iothub-message-source'], 'Telemetry');
  });

  test('a batch as the C# SDK writes it: system properties among the properties, and base64Encoded false for text', async () => {
    const connection = await registerIdentity(t, 'https-batch-raw');
    const batch = [
      {
        body: Buffer.from('{"a":1}').toString('base64'),
        properties: {
          'iothub-messageid': 'm1',
          'IoTHub-CorrelationId': 'c1',
          'iothub-app-Kind': 'first',
          'iothub-to': '/devices/x/messages/events',
        },
      },
      { body: 'plain text', base64Encoded: false, properties: { 'iothub-contenttype': 'text/plain' } },
    ];
    const answer = await restCall(t, 'POST', EVENTS('https-batch-raw'), deviceToken(connection), JSON.stringify(batch), {
      headers: { 'Content-Type': BATCH_CONTENT_TYPE },
    });
    assert.equal(answer.status, 204);
    const stored = storedOf(t, 'https-batch-raw');
    assert.deepEqual(
      stored.map((e) => Buffer.from(e.body).toString()),
      ['{"a":1}', 'plain text'],
    );
    assert.deepEqual(stored[0]!.systemProperties, { messageId: 'm1', correlationId: 'c1' });
    assert.deepEqual(stored[0]!.properties, { Kind: 'first' });
    assert.deepEqual(stored[1]!.systemProperties, { contentType: 'text/plain' });
  });

  test('a batch that is not a JSON array of messages is 400 ArgumentInvalid, and nothing of it is stored', async () => {
    const connection = await registerIdentity(t, 'https-bad-batch');
    const good = { body: Buffer.from('ok').toString('base64') };
    for (const bad of [
      '{"body":"b2s="}',
      '[]',
      'not json',
      JSON.stringify([good, { body: 'not base64!' }]),
      JSON.stringify([good, { body: 'b2s=', properties: { 'iothub-app-n': 1 } }]),
      JSON.stringify([good, 42]),
    ]) {
      const answer = await restCall(t, 'POST', EVENTS('https-bad-batch'), deviceToken(connection), bad, {
        headers: { 'Content-Type': BATCH_CONTENT_TYPE },
      });
      assert.equal(answer.status, 400, bad);
      assert.equal(answer.body.errorCode, 400004, bad);
    }
    assert.equal(storedOf(t, 'https-bad-batch').length, 0);
  });

  test("IoT Hub's 401 for a missing, expired, malformed or foreign token, a module's token, a disabled device and a policy without DeviceConnect", async () => {
    const connection = await registerIdentity(t, 'https-auth');
    const other = await registerIdentity(t, 'https-auth-other');
    const module = await registerIdentity(t, 'https-auth-gw', 'https-auth-mod');
    const policy = (name: string) => t.hub.auth.policy(name)!.primaryKey;
    const post = (authorization?: string, deviceId = 'https-auth') =>
      restCall(t, 'POST', EVENTS(deviceId), authorization, 'x', { headers: { 'Content-Type': 'text/plain' } });
    const refused: Array<[string, string | undefined, string?]> = [
      ['no Authorization header', undefined],
      ['a token that is not a SharedAccessSignature', 'Bearer abc'],
      ['an expired token', deviceToken(connection, -10)],
      ["another device's token", deviceToken(other, 600, 'localhost/devices/https-auth')],
      ["another device's token for its own device", deviceToken(other)],
      [
        "a module's token on its device's path",
        deviceToken(module, 600, 'localhost/devices/https-auth-gw/modules/https-auth-mod'),
        'https-auth-gw',
      ],
      ['the service policy (no DeviceConnect)', createSasToken('localhost', policy('service'), 'service', 600)],
      ['an unregistered device', deviceToken({ ...connection, deviceId: 'https-nobody' }), 'https-nobody'],
    ];
    const messages = new Map<string, string>();
    for (const [what, authorization, deviceId] of refused) {
      const answer = await post(authorization, deviceId);
      assert.equal(answer.status, 401, what);
      assert.equal(answer.body.errorCode, 401002, what);
      assert.match(answer.body.Message, /^ErrorCode:IotHubUnauthorizedAccess;/, what);
      messages.set(what, answer.body.message);
    }
    // Whether a device exists is not told to a caller without its key: an unknown one reads as a wrong key.
    assert.equal(messages.get('an unregistered device'), messages.get("another device's token")!.replace("'https-auth'", "'https-nobody'"));
    assert.equal(
      (await post(createSasToken('localhost/devices', policy('device'), 'device', 600))).status,
      204,
      'the device policy (DeviceConnect) is accepted',
    );
    assert.equal((await post(deviceToken(connection))).status, 204, "the device's own token is accepted");

    t.hub.registry.createOrUpdate({ deviceId: 'https-auth' }, { status: 'disabled' }, '*');
    const disabled = await post(deviceToken(connection));
    assert.equal(disabled.status, 401, 'a disabled device');
    assert.equal(storedOf(t, 'https-auth').length, 2, 'only the two accepted messages are stored');

    // The SDK makes IoT Hub's 401 its UnauthorizedError.
    const wrongKey = { ...connection, connectionString: other.connectionString.replace('https-auth-other', 'https-auth') };
    const stranger = await createDeviceClient(wrongKey, 'http', { features: ['telemetry'] });
    try {
      await assert.rejects(stranger.sendEvent(new deviceSdk.Message('x')), (err: Error) => err.constructor.name === 'UnauthorizedError');
    } finally {
      await stranger.close();
    }
  });

  test("a module's message on its own path (as the Java SDK posts it) is stamped as the module's MQTT message; only the module's token reaches it", async () => {
    const module = await registerIdentity(t, 'https-mod-gw', 'https-mod');
    const deviceKey = t.hub.registry.get('https-mod-gw').primaryKey!;
    const siblingKey = t.hub.registry.createOrUpdate({ deviceId: 'https-mod-gw', moduleId: 'https-mod-sibling' }, {}, undefined).record
      .primaryKey!;
    const path = `/devices/https-mod-gw/modules/https-mod/messages/events?api-version=2021-04-12`;
    const post = (authorization: string, run: string) =>
      restCall(t, 'POST', path, authorization, `{"run":"${run}"}`, {
        headers: { 'Content-Type': 'application/json', 'iothub-messageid': `m-${run}`, 'iothub-app-run': run },
      });
    const refused: Array<[string, string]> = [
      ["the module's device's token", createSasToken('localhost/devices/https-mod-gw', deviceKey, undefined, 600)],
      ["another module's token", createSasToken('localhost/devices/https-mod-gw/modules/https-mod-sibling', siblingKey, undefined, 600)],
      [
        "another module's key, scoped to this module",
        createSasToken('localhost/devices/https-mod-gw/modules/https-mod', siblingKey, undefined, 600),
      ],
    ];
    for (const [what, authorization] of refused) {
      const answer = await post(authorization, 'refused');
      assert.equal(answer.status, 401, what);
      assert.match(answer.body.message, /module 'https-mod' of device 'https-mod-gw'/, what);
    }
    assert.equal((await post(deviceToken(module, 600, 'localhost/devices/https-mod-gw/modules/https-mod'), 'https')).status, 204);
    const mqtt = await openDevice(module);
    try {
      const message = new deviceSdk.Message('{"run":"mqtt"}');
      message.properties.add('run', 'mqtt');
      await mqtt.sendEvent(message);
    } finally {
      await mqtt.close();
    }
    const stored = t.hub.eventLog
      .read(t.hub.eventLog.partitionOf('https-mod-gw'), 0, 100_000)
      .filter((e) => e.annotations['iothub-connection-module-id'] === 'https-mod');
    assert.deepEqual(
      stored.map((e) => e.properties.run),
      ['https', 'mqtt'],
      'nothing of the refused posts is stored',
    );
    const stamps = (e: (typeof stored)[number]) =>
      Object.fromEntries(Object.entries(e.annotations).filter(([k]) => k.startsWith('iothub-connection-')));
    assert.deepEqual(stamps(stored[0]!), stamps(stored[1]!));
    assert.equal(stored[0]!.annotations['iothub-connection-device-id'], 'https-mod-gw');

    // azure-iot-device-http posts a module's messages to its device's path, where the module's token is refused.
    const sdkModule = await createDeviceClient(module, 'http', { features: ['telemetry'] });
    try {
      await assert.rejects(sdkModule.sendEvent(new deviceSdk.Message('x')), (err: Error) => err.constructor.name === 'UnauthorizedError');
    } finally {
      await sdkModule.close();
    }
  });

  test('256 KB: a message over the limit (body and properties) is 413 MessageTooLarge and not stored; one at the limit is', async () => {
    const connection = await registerIdentity(t, 'https-size');
    const properties = { 'iothub-app-Property': 'PropMsg_1', 'iothub-messageid': 'message_1' };
    const propertyBytes = Object.entries(properties).reduce((sum, [k, v]) => sum + k.length + v.length, 0);
    const post = (bodyBytes: number) =>
      restCall(t, 'POST', EVENTS('https-size'), deviceToken(connection), Buffer.alloc(bodyBytes, 0x61), {
        headers: { 'Content-Type': 'application/octet-stream', ...properties },
      });
    assert.equal((await post(256 * 1024 - propertyBytes)).status, 204);
    const over = await post(256 * 1024 - propertyBytes + 1);
    assert.equal(over.status, 413);
    assert.equal(over.body.errorCode, 413001);
    const farOver = await post(1024 * 1024);
    assert.equal(farOver.status, 413);
    assert.deepEqual(
      storedOf(t, 'https-size').map((e) => e.body.length),
      [256 * 1024 - propertyBytes],
    );

    // The SDK makes the 413 its MessageTooLargeError.
    const http = await createDeviceClient(connection, 'http', { features: ['telemetry'] });
    try {
      await assert.rejects(
        http.sendEvent(new deviceSdk.Message(Buffer.alloc(300 * 1024))),
        (err: Error) => err.constructor.name === 'MessageTooLargeError',
      );
    } finally {
      await http.close();
    }
  });

  test('GET on the events path is 405 MethodNotAllowed', async () => {
    const connection = await registerIdentity(t, 'https-get-events');
    const answer = await restCall(t, 'GET', EVENTS('https-get-events'), deviceToken(connection));
    assert.equal(answer.status, 405);
    assert.equal(answer.body.errorCode, 405000);
  });

  test("beyond the tier's device-to-cloud throttle a send is 429, each message of a batch counting", async () => {
    const throttle = new Throttle('s1', () => 0); // a stopped clock: nothing refills
    const throttled = await startTestHub({ throttle });
    try {
      const connection = await registerIdentity(throttled, 'https-throttled');
      // All but two batches of the minute's sends are spent before: what the route meters is the rest.
      const spent = 5800;
      assert.equal(throttle.allow('d2c', spent), true);
      const batch = JSON.stringify(Array.from({ length: 100 }, () => ({ body: 'eA==' })));
      const post = () =>
        restCall(throttled, 'POST', EVENTS('https-throttled'), deviceToken(connection), batch, {
          headers: { 'Content-Type': BATCH_CONTENT_TYPE },
        });
      let accepted = 0;
      let answer = await post();
      while (answer.status === 204 && accepted < 10_000) {
        accepted += 100;
        answer = await post();
      }
      assert.equal(answer.status, 429);
      assert.equal(answer.body.errorCode, 429001);
      assert.equal(spent + accepted, 6000, "a minute of S1's 100 sends a second, 100 to a batch");
    } finally {
      await throttled.dispose();
    }
  });
});
