import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import rhea, { type Connection, type EventContext, type Receiver, type Sender } from 'rhea';
import { startTestHub, type TestHub } from '../helpers/hub.js';
import deviceSdk from 'azure-iot-device';
import { earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import { openDevice, registerIdentity, until } from '../helpers/devices.js';
import { createDeviceClient, type DeviceTransport } from '../../src/clients/device-clients.js';
import { createRegistry, createServiceClient } from '../../src/clients/service-clients.js';
import { certificateConnection } from '../../src/clients/connection-string.js';
import { createLog } from '../../src/hub/log.js';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import { makeCertificate } from '../../src/clients/certificates.js';
import { collect, consumer, within } from '../helpers/events.js';
import { c2dRoundTrip } from '../helpers/c2d.js';
import { open, putToken } from '../helpers/amqp.js';

// Devices and modules over AMQP on the hub's TLS port: the link dispatch (which identity's links a
// connection may attach, by the tokens it put on $cbs), with a bare rhea client, for what the SDK
// never does on its own (attach another device's links, skip $cbs).

/** A bare AMQPS connection to the hub's TLS port. */
function connect(t: TestHub): Promise<Connection> {
  return open(t.hub.port, {}, t.hub.tls);
}

type AmqpError = { condition: string; description: string };

/** The condition of a link's error (rhea leaves some errors as their described list). */
function errorOf(error: unknown): AmqpError {
  const value = (error as { value?: Array<{ value: string }> }).value;
  if (Array.isArray(value)) return { condition: value[0]!.value, description: value[1]?.value ?? '' };
  return error as AmqpError;
}

/**
 * Attaches a link; resolves with the error it was detached with, or undefined when it stays open. The
 * hub answers a refused attach with its ATTACH and DETACH in one write: a link still open a moment
 * after its ATTACH was accepted.
 */
async function attach(link: Sender | Receiver): Promise<AmqpError | undefined> {
  const closed = new Promise<AmqpError>((resolve) =>
    link.once(link.is_sender() ? 'sender_close' : 'receiver_close', () => resolve(errorOf(link.error))),
  );
  const opened = once(link, link.is_sender() ? 'sender_open' : 'receiver_open').then(() => undefined);
  const first = await within(10_000, 'the attach', Promise.race([closed, opened]));
  if (first) return first;
  return Promise.race([closed, new Promise<undefined>((resolve) => setTimeout(resolve, 200))]);
}

describe('AMQP device links: dispatch and claims', () => {
  let t: TestHub;
  const logLines: string[] = [];
  const connections: Connection[] = [];
  let key1: string;
  before(async () => {
    t = await startTestHub({ log: createLog('info', (line) => logLines.push(line)) });
    key1 = (await registerIdentity(t, 'amqp-d1')).key;
    await registerIdentity(t, 'amqp-d2');
  });
  after(async () => {
    for (const c of connections) c.close();
    await t.dispose();
  });
  async function deviceConnection(): Promise<Connection> {
    const connection = await connect(t);
    connections.push(connection);
    const audience = 'localhost/devices/amqp-d1';
    // As the SDK does: the token's sr, URL-encoded, is the audience.
    assert.equal(await putToken(connection, encodeURIComponent(audience), createSasToken(audience, key1, undefined, 3600)), 200);
    return connection;
  }

  test("a device's token opens its own telemetry link, and not another device's: amqp:unauthorized-access, logged", async () => {
    const connection = await deviceConnection();
    assert.equal(await attach(connection.open_sender({ target: { address: '/devices/amqp-d1/messages/events' } })), undefined);
    const refused = await attach(connection.open_sender({ target: { address: '/devices/amqp-d2/messages/events' } }));
    assert.equal(refused?.condition, 'amqp:unauthorized-access');
    await until(
      () =>
        logLines.some((l) =>
          /info {2}amqp: refused the link .* to '\/devices\/amqp-d2\/messages\/events': amqp:unauthorized-access/.test(l),
        ),
      'the refusal is logged',
    );
    // Nor its modules' links, nor the service's.
    const module = await attach(connection.open_sender({ target: { address: '/devices/amqp-d1/modules/m1/messages/events' } }));
    assert.equal(module?.condition, 'amqp:unauthorized-access');
    const service = await attach(connection.open_sender({ target: { address: '/messages/devicebound' } }));
    assert.equal(service?.condition, 'amqp:unauthorized-access');
  });

  test('the amqps://host prefix form is the same address; an unknown suffix is amqp:not-found', async () => {
    const connection = await deviceConnection();
    assert.equal(
      await attach(connection.open_sender({ target: { address: 'amqps://localhost/devices/amqp-d1/messages/events' } })),
      undefined,
    );
    const unknown = await attach(connection.open_sender({ target: { address: '/devices/amqp-d1/nowhere' } }));
    assert.equal(unknown?.condition, 'amqp:not-found');
  });

  test("twin and method links: its own attach in both directions, another device's are refused", async () => {
    const connection = await deviceConnection();
    for (const suffix of ['twin', 'methods/devicebound']) {
      for (const deviceId of ['amqp-d1', 'amqp-d2']) {
        const address = `/devices/${deviceId}/${suffix}`;
        const outcomes = [
          await attach(connection.open_receiver({ source: { address } })),
          await attach(connection.open_sender({ target: { address } })),
        ];
        const expected = deviceId === 'amqp-d1' ? undefined : 'amqp:unauthorized-access';
        assert.deepEqual(
          outcomes.map((o) => o?.condition),
          [expected, expected],
          address,
        );
      }
    }
  });

  test('the method links on the wire: no credit, no call (404103, or the call waits for credit); the answer by correlation id and IoThub-status', async () => {
    const connection = await deviceConnection();
    const address = '/devices/amqp-d1/methods/devicebound';
    const calls = connection.open_receiver({ source: { address }, credit_window: 0 });
    assert.equal(await attach(calls), undefined);
    const answers = connection.open_sender({ target: { address } });
    assert.equal(await attach(answers), undefined);
    const service = createServiceClient(t.connection);
    const offline: any = await service
      .invokeDeviceMethod('amqp-d1', { methodName: 'm', payload: null, responseTimeoutInSeconds: 5 })
      .catch((err: unknown) => err);
    assert.equal(JSON.parse(offline.responseBody).errorCode, 404103, 'a device that gives no credit is not listening');
    const calling = service.invokeDeviceMethod('amqp-d1', {
      methodName: 'm',
      payload: { n: 1 },
      responseTimeoutInSeconds: 10,
      connectTimeoutInSeconds: 30,
    });
    const received = once(calls, 'message');
    calls.add_credit(1);
    const [context] = (await within(10_000, 'the call', received)) as [EventContext];
    const call = context.message!;
    assert.equal(call.application_properties?.['IoThub-methodname'], 'm');
    assert.deepEqual(JSON.parse(call.body.content.toString()), { n: 1 });
    assert.ok(Buffer.isBuffer(call.correlation_id) && call.correlation_id.length === 16, 'the correlation id is an AMQP uuid');
    answers.send({
      correlation_id: call.correlation_id,
      application_properties: { 'IoThub-status': 201 },
      body: rhea.message.data_section(Buffer.from('"done"')),
    });
    assert.deepEqual((await calling).result, { status: 201, payload: 'done' });
  });

  /** amqp-d1's twin link pair, as the SDK attaches it (one channel correlation id), its receiving end without credit. */
  async function twinLinks(): Promise<{ answers: Receiver; requests: Sender }> {
    const connection = await deviceConnection();
    const address = '/devices/amqp-d1/twin';
    const properties = { 'com.microsoft:channel-correlation-id': `twin:${rhea.generate_uuid()}` };
    const answers = connection.open_receiver({ source: { address }, credit_window: 0, properties });
    assert.equal(await attach(answers), undefined);
    const requests = connection.open_sender({ target: { address }, properties });
    assert.equal(await attach(requests), undefined);
    return { answers, requests };
  }

  test('the twin links on the wire: answers on the paired link with status and version; without credit a few pushes held, the rest dropped (logged); a bad operation is 400', async () => {
    const { answers, requests } = await twinLinks();
    const ask = async (correlationId: string, annotations: Record<string, string>, body = ' ') => {
      const answered = once(answers, 'message');
      answers.add_credit(1);
      requests.send({
        correlation_id: correlationId,
        message_annotations: annotations,
        body: rhea.message.data_section(Buffer.from(body)),
      });
      const [context] = (await within(10_000, `the answer to ${correlationId}`, answered)) as [EventContext];
      return context.message!;
    };
    const put = await ask('put-1', { operation: 'PUT', resource: '/notifications/twin/properties/desired' });
    assert.equal(put.correlation_id, 'put-1');
    assert.equal(put.message_annotations?.status, 200);
    const patched = await ask('patch-1', { operation: 'PATCH', resource: '/properties/reported' }, '{"wire":true}');
    assert.equal(patched.message_annotations?.status, 204);
    assert.equal(patched.message_annotations?.version, t.hub.twins.get({ deviceId: 'amqp-d1' }).reportedVersion);
    const bad = await ask('bad-1', { operation: 'POST', resource: '/properties/reported' });
    assert.equal(bad.message_annotations?.status, 400);
    assert.equal(JSON.parse(bad.body.content.toString()).errorCode, 400004);

    // Without credit the hub holds a few pushes, in order, and drops those past them (logged); the service's updates succeed.
    const registry = createRegistry(t.connection);
    const { desiredVersion } = t.hub.twins.get({ deviceId: 'amqp-d1' });
    for (let n = 1; n <= 17; n++) await registry.updateTwin('amqp-d1', { properties: { desired: { n } } }, '*');
    await until(
      () => logLines.some((l) => /info {2}amqp: dropped a desired patch for amqp-d1: its link .* gives no credit/.test(l)),
      'the dropped patch is logged',
    );
    const pushed: rhea.Message[] = [];
    answers.on('message', (context: EventContext) => pushed.push(context.message!));
    answers.add_credit(20);
    await until(() => pushed.length === 16, 'the held patches');
    assert.deepEqual(
      pushed.map((m) => JSON.parse(m.body.content.toString()).n),
      Array.from({ length: 16 }, (_, i) => i + 1),
    );
    assert.equal(pushed[0]!.correlation_id, undefined);
    assert.deepEqual(JSON.parse(pushed[0]!.body.content.toString()), { n: 1, $version: desiredVersion + 1 });
    assert.equal(pushed[0]!.message_annotations?.version, desiredVersion + 1);
  });

  test('twin answers held for credit go out in order, a DELETE of the subscription among them', async () => {
    const { answers, requests } = await twinLinks();
    const got: rhea.Message[] = [];
    answers.on('message', (context: EventContext) => got.push(context.message!));
    let accepted = 0;
    requests.on('accepted', () => accepted++);
    const desired = '/notifications/twin/properties/desired';
    for (const [id, operation, resource] of [
      ['get-1', 'GET', undefined],
      ['put-1', 'PUT', desired],
      ['delete-1', 'DELETE', desired],
    ] as const) {
      requests.send({
        correlation_id: id,
        message_annotations: { operation, ...(resource ? { resource } : {}) },
        body: rhea.message.data_section(Buffer.from(' ')),
      });
    }
    // The hub settles each request once handled: then all three answers wait for credit.
    await until(() => accepted === 3, 'the requests are handled');
    assert.equal(got.length, 0);
    answers.add_credit(3);
    await until(() => got.length === 3, 'the three answers');
    assert.deepEqual(
      got.map((m) => [m.correlation_id, m.message_annotations?.status]),
      [
        ['get-1', 200],
        ['put-1', 200],
        ['delete-1', 200],
      ],
    );
  });

  test("a module's token opens that module's links, not its device's; modules have no cloud-to-device queue", async () => {
    const { key } = await registerIdentity(t, 'amqp-d3', 'm1');
    const connection = await connect(t);
    connections.push(connection);
    const audience = 'localhost/devices/amqp-d3/modules/m1';
    assert.equal(await putToken(connection, encodeURIComponent(audience), createSasToken(audience, key, undefined, 3600)), 200);
    assert.equal(await attach(connection.open_sender({ target: { address: '/devices/amqp-d3/modules/m1/messages/events' } })), undefined);
    const device = await attach(connection.open_sender({ target: { address: '/devices/amqp-d3/messages/events' } }));
    assert.equal(device?.condition, 'amqp:unauthorized-access');
    const c2d = await attach(connection.open_receiver({ source: { address: '/devices/amqp-d3/modules/m1/messages/devicebound' } }));
    assert.equal(c2d?.condition, 'amqp:not-found');
  });

  test('a disabled device attaches nothing, even with a DeviceConnect policy token', async () => {
    await registerIdentity(t, 'amqp-off');
    const registry = createRegistry(t.connection);
    await registry.update({ ...(await registry.get('amqp-off')).responseBody, status: 'disabled' });
    const connection = await connect(t);
    connections.push(connection);
    const token = createSasToken('localhost', t.hub.auth.policy('device')!.primaryKey, 'device', 3600);
    assert.equal(await putToken(connection, 'localhost', token), 200);
    const refused = await attach(connection.open_sender({ target: { address: '/devices/amqp-off/messages/events' } }));
    assert.equal(refused?.condition, 'amqp:unauthorized-access');
    assert.match(refused!.description, /device 'amqp-off' is disabled/);
  });

  test('a connection with no token attaches nothing', async () => {
    const connection = await connect(t);
    connections.push(connection);
    const refused = await attach(connection.open_receiver({ source: { address: '/devices/amqp-d1/messages/devicebound' } }));
    assert.equal(refused?.condition, 'amqp:unauthorized-access');
  });

  test('a policy token with DeviceConnect opens any device; one with ServiceConnect only does not', async () => {
    const policyToken = (name: string) => createSasToken('localhost', t.hub.auth.policy(name)!.primaryKey, name, 3600);
    const devicePolicy = await connect(t);
    const servicePolicy = await connect(t);
    connections.push(devicePolicy, servicePolicy);
    assert.equal(await putToken(devicePolicy, 'localhost', policyToken('device')), 200);
    assert.equal(await putToken(servicePolicy, 'localhost', policyToken('service')), 200);
    assert.equal(await attach(devicePolicy.open_sender({ target: { address: '/devices/amqp-d2/messages/events' } })), undefined);
    const refused = await attach(servicePolicy.open_sender({ target: { address: '/devices/amqp-d2/messages/events' } }));
    assert.equal(refused?.condition, 'amqp:unauthorized-access');
    // And the device policy cannot send cloud-to-device messages.
    const c2d = await attach(devicePolicy.open_sender({ target: { address: '/messages/devicebound' } }));
    assert.equal(c2d?.condition, 'amqp:unauthorized-access');
  });
});

/** A message with the ids, content type and encoding, and application properties a tutorial's device sets. */
function telemetryMessage(id: string): deviceSdk.Message {
  const message = new deviceSdk.Message(JSON.stringify({ temperature: 21.5, id }));
  message.messageId = id;
  message.correlationId = `corr-${id}`;
  message.contentType = 'application/json';
  message.contentEncoding = 'utf-8';
  message.properties.add('temperatureAlert', 'true');
  message.properties.add('note', 'a&b c');
  return message;
}

/** What an event carries beyond its body that must not depend on the transport. */
function stamps(event: ReceivedEventData): Record<string, unknown> {
  const { messageId, correlationId, contentType, contentEncoding } = event as ReceivedEventData & Record<string, unknown>;
  const system = { ...event.systemProperties } as Record<string, unknown>;
  for (const name of ['x-opt-sequence-number', 'x-opt-offset', 'x-opt-enqueued-time', 'iothub-enqueuedtime', 'x-opt-partition-key'])
    delete system[name];
  // The device's id differs per transport; the rest is the same.
  system['iothub-connection-device-id'] = typeof system['iothub-connection-device-id'];
  system['iothub-connection-auth-generation-id'] = typeof system['iothub-connection-auth-generation-id'];
  system.messageId = typeof system.messageId;
  system.correlationId = typeof system.correlationId;
  return {
    messageId: typeof messageId,
    correlationId,
    contentType,
    contentEncoding,
    system,
    properties: event.properties,
    body: event.body,
  };
}

// Each test has its devices and connections: their waits for expiries and renewals overlap.
describe('AMQP device tokens: expiry, renewal, several identities on one connection, revocation', { concurrency: true }, () => {
  let t: TestHub;
  const logLines: string[] = [];
  const connections: Connection[] = [];
  before(async () => (t = await startTestHub({ log: createLog('info', (line) => logLines.push(line)) })));
  after(async () => {
    for (const c of connections) c.close();
    await t.dispose();
  });
  async function tokenConnection(): Promise<Connection> {
    const connection = await connect(t);
    connections.push(connection);
    return connection;
  }
  const audienceOf = (deviceId: string) => `localhost/devices/${deviceId}`;
  async function putDeviceToken(connection: Connection, deviceId: string, key: string, ttlSeconds: number): Promise<number> {
    return putToken(connection, encodeURIComponent(audienceOf(deviceId)), createSasToken(audienceOf(deviceId), key, undefined, ttlSeconds));
  }
  /** Resolves with the error a link is detached with (bounded). */
  function detached(link: Sender | Receiver, what: string): Promise<AmqpError> {
    return within(
      30_000,
      what,
      new Promise<AmqpError>((resolve) =>
        link.once(link.is_sender() ? 'sender_close' : 'receiver_close', () => resolve(errorOf(link.error))),
      ),
    );
  }

  test("two devices on one connection, each with its own token: one token's expiry detaches that device's link only", async () => {
    const short = await registerIdentity(t, 'mux-short');
    const long = await registerIdentity(t, 'mux-long');
    const connection = await tokenConnection();
    assert.equal(await putDeviceToken(connection, 'mux-short', short.key, 2), 200);
    assert.equal(await putDeviceToken(connection, 'mux-long', long.key, 3600), 200);
    const shortLink = connection.open_sender({ target: { address: '/devices/mux-short/messages/events' } });
    assert.equal(await attach(shortLink), undefined);
    const longLink = connection.open_sender({ target: { address: '/devices/mux-long/messages/events' } });
    assert.equal(await attach(longLink), undefined);
    const error = await detached(shortLink, 'the short token to expire');
    assert.equal(error.condition, 'amqp:unauthorized-access');
    assert.ok(
      logLines.some((l) =>
        /info {2}amqp: detached the link .* to '\/devices\/mux-short\/messages\/events': the token for .* expired/.test(l),
      ),
      logLines.join(''),
    );
    // The other device's link is still open, and its messages are still taken.
    assert.ok(longLink.is_open(), "the other device's link is open");
    const accepted = within(10_000, 'the acceptance', once(longLink, 'accepted'));
    longLink.send({ message_id: 'mux-long-1', body: rhea.message.data_section(Buffer.from('{}')) });
    await accepted;
    // A new token for the first device lets it attach again.
    assert.equal(await putDeviceToken(connection, 'mux-short', short.key, 3600), 200);
    assert.equal(await attach(connection.open_sender({ target: { address: '/devices/mux-short/messages/events' } })), undefined);
  });

  test('a token renewed before its expiry keeps the link open past the first expiry', async () => {
    const device = await registerIdentity(t, 'renewed');
    const connection = await tokenConnection();
    // 6 s: time for the attach and the renewal on a busy machine, before the first token expires.
    const firstExpiry = Date.now() + 6000;
    assert.equal(await putDeviceToken(connection, 'renewed', device.key, 6), 200);
    const link = connection.open_sender({ target: { address: '/devices/renewed/messages/events' } });
    assert.equal(await attach(link), undefined);
    let closed = false;
    link.once('sender_close', () => (closed = true));
    assert.equal(await putDeviceToken(connection, 'renewed', device.key, 3600), 200);
    assert.equal(closed, false, 'renewed before the first token expired');
    // Past the first token's expiry and a sweep (once a second): still open.
    const pastExpiry = firstExpiry + 2000;
    await until(() => Date.now() > pastExpiry, 'the first token has expired', 10_000);
    assert.equal(closed, false);
    const accepted = within(10_000, 'the acceptance', once(link, 'accepted'));
    link.send({ body: rhea.message.data_section(Buffer.from('{}')) });
    await accepted;
  });

  test('the SDK renews its token on a long connection (a 12 s token, renewed 8 s before expiry): telemetry goes on, no link is detached', async () => {
    const connection = await registerIdentity(t, 'sdk-renewal');
    const provider = deviceSdk.SharedAccessKeyAuthenticationProvider.fromConnectionString(
      `${connection.connectionString};GatewayHostName=localhost:${t.hub.port}`,
      // Renewed every 4 s, with 7 s or more to spare: a busy machine delays a timer by seconds, not that.
      12,
      8,
    );
    const { Amqp } = (await import('azure-iot-device-amqp')).default;
    const client = deviceSdk.Client.fromAuthenticationProvider(provider, Amqp);
    await client.setOptions({ ca: t.hub.tls.ca });
    let disconnects = 0;
    client.on('disconnect', () => disconnects++);
    await client.open();
    try {
      // Past the first token's expiry (12 s) and a sweep.
      const until15s = Date.now() + 15_000;
      for (let n = 0; Date.now() < until15s; n++) {
        await client.sendEvent(new deviceSdk.Message(JSON.stringify({ n })));
        await new Promise((r) => setTimeout(r, 1000));
      }
      assert.equal(disconnects, 0);
      assert.ok(!logLines.some((l) => l.includes("to '/devices/sdk-renewal/messages/events': the token")), logLines.join(''));
    } finally {
      await client.close();
    }
  });

  for (const [change, why] of [
    ['disabled', 'it was disabled'],
    ['deleted', 'the identity was deleted'],
    ['rekeyed', 'its keys were changed'],
  ] as const) {
    test(`a device ${change}: its AMQP links and connection are closed at once, and its old token opens nothing`, async () => {
      const deviceId = `revoked-${change}`;
      const device = await registerIdentity(t, deviceId);
      const connection = await tokenConnection();
      assert.equal(await putDeviceToken(connection, deviceId, device.key, 3600), 200);
      const link = connection.open_sender({ target: { address: `/devices/${deviceId}/messages/events` } });
      assert.equal(await attach(link), undefined);
      const closed = within(10_000, 'the connection to close', new Promise((resolve) => connection.once('connection_close', resolve)));
      const registry = createRegistry(t.connection);
      const identity = (await registry.get(deviceId)).responseBody;
      if (change === 'disabled') await registry.update({ ...identity, status: 'disabled' });
      else if (change === 'deleted') await registry.delete(deviceId);
      else {
        const fresh = Buffer.alloc(32, 7).toString('base64');
        await registry.update({ ...identity, authentication: { type: 'sas', symmetricKey: { primaryKey: fresh, secondaryKey: fresh } } });
      }
      await closed;
      assert.ok(
        logLines.some((l) => l.includes(`auth: Closed 1 connection(s) of ${deviceId}: ${why}`)),
        logLines.join(''),
      );
      const again = await tokenConnection();
      assert.equal(await putDeviceToken(again, deviceId, device.key, 3600), 401);
    });
  }
});

describe('devices and modules over the SDK: Amqp and AmqpWs', () => {
  let t: TestHub;
  const logLines: string[] = [];
  before(async () => (t = await startTestHub({ log: createLog('info', (line) => logLines.push(line)) })));
  after(async () => t.dispose());

  /** Every event of the hub from the start, once `done` holds for them. */
  async function readEvents(what: string, done: (events: ReceivedEventData[]) => boolean): Promise<ReceivedEventData[]> {
    const reader = consumer(t.hub.eventHubConnectionString());
    const received = collect(reader, earliestEventPosition);
    try {
      await received.until(60_000, what, () => done(received.events));
      return received.events;
    } finally {
      await received.close();
      await reader.close();
    }
  }

  test('telemetry with ids, content type and properties arrives with the same stamps over amqp, amqp-ws and mqtt (devices and modules)', async () => {
    const senders: Array<{ transport: DeviceTransport; deviceId: string; moduleId?: string }> = [];
    for (const transport of ['mqtt', 'amqp', 'amqp-ws'] as const) {
      senders.push({ transport, deviceId: `tel-${transport}` }, { transport, deviceId: `tel-${transport}-edge`, moduleId: 'filter' });
    }
    for (const { transport, deviceId, moduleId } of senders) {
      const client = await openDevice(await registerIdentity(t, deviceId, moduleId), transport);
      try {
        await client.sendEvent(telemetryMessage(`${deviceId}${moduleId ? `/${moduleId}` : ''}`));
      } finally {
        await client.close();
      }
    }
    const events = await readEvents('the events of every transport', (events) => events.length >= senders.length);
    const byId = new Map(events.map((e) => [String(e.messageId), e]));
    for (const withModule of [false, true]) {
      const of = (transport: DeviceTransport) => {
        const sender = senders.find((s) => s.transport === transport && Boolean(s.moduleId) === withModule)!;
        const id = `${sender.deviceId}${sender.moduleId ? `/${sender.moduleId}` : ''}`;
        const event = byId.get(id);
        assert.ok(event, `${id} arrived`);
        assert.equal(event.systemProperties?.['iothub-connection-device-id'], sender.deviceId);
        assert.equal(event.systemProperties?.['iothub-connection-module-id'], sender.moduleId);
        assert.equal(event.correlationId, `corr-${id}`);
        assert.deepEqual({ ...event.properties }, { temperatureAlert: 'true', note: 'a&b c' });
        const stamped = stamps(event);
        (stamped.body as Record<string, unknown>).id = typeof (stamped.body as Record<string, unknown>).id;
        stamped.correlationId = typeof stamped.correlationId;
        return stamped;
      };
      const mqtt = of('mqtt');
      assert.equal((mqtt.system as Record<string, unknown>)['iothub-connection-auth-method'] !== undefined, true);
      assert.deepEqual(of('amqp'), mqtt, `amqp as mqtt (${withModule ? 'module' : 'device'})`);
      assert.deepEqual(of('amqp-ws'), mqtt, `amqp-ws as mqtt (${withModule ? 'module' : 'device'})`);
    }
  });

  test('a message over 256 KB is refused with MessageTooLarge and nothing is stored; the link goes on', async () => {
    const client = await openDevice(await registerIdentity(t, 'tel-big'), 'amqp');
    try {
      await assert.rejects(client.sendEvent(new deviceSdk.Message(Buffer.alloc(256 * 1024 + 1, 'x'))), (err: Error) => {
        assert.equal(err.constructor.name, 'MessageTooLargeError', err.message);
        return true;
      });
      await until(
        () => logLines.some((l) => /info {2}amqp: refused a device-to-cloud message: ErrorCode:MessageTooLarge;/.test(l)),
        'logged',
      );
      const small = new deviceSdk.Message('fits');
      small.messageId = 'tel-big-small';
      await client.sendEvent(small);
    } finally {
      await client.close();
    }
    const events = await readEvents('the small message', (events) => events.some((e) => e.messageId === 'tel-big-small'));
    assert.ok(!events.some((e) => e.systemProperties?.['iothub-connection-device-id'] === 'tel-big' && e.messageId !== 'tel-big-small'));
  });

  /** The feedback records the service's receiver gets, until `done` holds for them (bounded). */
  async function feedbackUntil(done: (records: any[]) => boolean, open: () => Promise<void>): Promise<any[]> {
    const service = createServiceClient(t.connection);
    await service.open();
    try {
      const receiver = (await service.getFeedbackReceiver()).result;
      const records: any[] = [];
      receiver.on('message', (m: deviceSdk.Message) => records.push(...JSON.parse(m.getData().toString())));
      await open();
      await until(() => done(records), 'the feedback', 60_000);
      return records;
    } finally {
      await service.close();
    }
  }

  for (const transport of ['amqp', 'amqp-ws'] as const) {
    test(`cloud-to-device over ${transport}: properties as sent, in order; complete, reject and abandon, with their feedback`, async () => {
      const deviceId = `c2d-${transport}`;
      const connection = await registerIdentity(t, deviceId);
      const service = createServiceClient(t.connection);
      await service.open();
      const send = (id: string, properties: Record<string, string> = {}) => {
        const message = new deviceSdk.Message(`body of ${id}`);
        message.messageId = id;
        message.correlationId = `corr-${id}`;
        message.ack = 'full';
        for (const [k, v] of Object.entries(properties)) message.properties.add(k, v);
        return service.send(deviceId, message);
      };
      // Queued while the device is away: delivered in order when it attaches.
      for (const id of ['complete-me', 'reject-me', 'abandon-me']) await send(`${transport}-${id}`, { colour: 'blue' });
      await service.close();

      const received: deviceSdk.Message[] = [];
      const device = await createDeviceClient(connection, transport);
      // Settled one at a time, a moment apart: rhea (the SDK's AMQP client) merges dispositions written in
      // one turn into a range with the first one's outcome when only two differ (write_dispositions).
      let settling = Promise.resolve();
      device.on('message', (message: deviceSdk.Message) => {
        received.push(message);
        const id = String(message.messageId);
        const first = received.filter((m) => m.messageId === message.messageId).length === 1;
        settling = settling.then(async () => {
          await new Promise((resolve) => setTimeout(resolve, 20));
          if (id.endsWith('reject-me')) await device.reject(message);
          // abandoned once: the second delivery is completed
          else if (id.endsWith('abandon-me') && first) await device.abandon(message);
          else await device.complete(message);
        });
      });
      try {
        const ours = (records: any[]) => records.filter((r) => String(r.originalMessageId).startsWith(`${transport}-`));
        const records = await feedbackUntil(
          (records) => received.length === 4 && new Set(ours(records).map((r) => r.originalMessageId)).size === 3,
          async () => void (await device.open()),
        );
        const ids = received.map((m) => String(m.messageId).slice(transport.length + 1));
        assert.deepEqual(ids, ['complete-me', 'reject-me', 'abandon-me', 'abandon-me']);
        const first = received[0]!;
        assert.equal(first.getData().toString(), `body of ${transport}-complete-me`);
        assert.equal(first.correlationId, `corr-${transport}-complete-me`);
        assert.equal(first.ack, 'full');
        assert.equal(first.to, `/devices/${deviceId}/messages/deviceBound`);
        assert.ok(first.expiryTimeUtc, 'an expiry');
        const colour = first.properties.getItem(0);
        assert.deepEqual({ key: colour.key, value: colour.value }, { key: 'colour', value: 'blue' });
        const status = Object.fromEntries(ours(records).map((r) => [r.originalMessageId.slice(transport.length + 1), r.statusCode]));
        assert.deepEqual(status, { 'complete-me': 'Success', 'reject-me': 'Rejected', 'abandon-me': 'Success' });
        assert.equal(t.hub.c2d.depth(deviceId), 0);
      } finally {
        await device.close();
      }
    });
  }

  test('credit bounds what is in flight: a link with credit 1 gets the next message only once it settled the first', async () => {
    const { key } = await registerIdentity(t, 'c2d-credit');
    const service = createServiceClient(t.connection);
    await service.open();
    for (let i = 0; i < 3; i++) await service.send('c2d-credit', new deviceSdk.Message(`m${i}`));
    await service.close();
    const connection = await connect(t);
    try {
      const audience = 'localhost/devices/c2d-credit';
      assert.equal(await putToken(connection, audience, createSasToken(audience, key, undefined, 3600)), 200);
      const receiver = connection.open_receiver({
        source: { address: '/devices/c2d-credit/messages/devicebound' },
        credit_window: 0,
        autoaccept: false,
      });
      const got: EventContext[] = [];
      receiver.on('message', (context: EventContext) => got.push(context));
      await within(10_000, 'the attach', once(receiver, 'receiver_open'));
      receiver.add_credit(1);
      await until(() => got.length === 1, 'the first message');
      // No more credit, nothing more comes (checked after a round trip on the connection: an attach).
      assert.equal(await attach(connection.open_sender({ target: { address: '/devices/c2d-credit/messages/events' } })), undefined);
      assert.equal(got.length, 1);
      got[0]!.delivery!.accept();
      receiver.add_credit(1);
      await until(() => got.length === 2, 'the second message');
      assert.equal((got[1]!.message!.body as { content: Buffer }).content.toString(), 'm1');
    } finally {
      connection.close();
    }
  });

  for (const transport of ['amqp', 'amqp-ws'] as const) {
    test(`an X.509 device over ${transport} (a client certificate, no $cbs token): telemetry and cloud-to-device; another device's certificate is refused`, async () => {
      const deviceId = `x509-${transport}`;
      const cert = makeCertificate({ commonName: deviceId });
      const registry = createRegistry(t.connection);
      const selfSigned = (thumbprint: string) => ({ type: 'selfSigned', x509Thumbprint: { primaryThumbprint: thumbprint } });
      await registry.create({ deviceId, authentication: selfSigned(cert.sha256) } as any);
      const otherCert = makeCertificate({ commonName: `${deviceId}-other` });
      await registry.create({ deviceId: `${deviceId}-other`, authentication: selfSigned(otherCert.sha256) } as any);
      const clientFor = (id: string) =>
        createDeviceClient(
          certificateConnection({ hostName: 'localhost', transport: t.connection.transport }, { deviceId: id }, cert),
          transport,
        );
      const client = await clientFor(deviceId);
      try {
        await client.open();
        const message = new deviceSdk.Message('from a certificate');
        message.messageId = `${deviceId}-1`;
        await client.sendEvent(message);
        assert.equal(await c2dRoundTrip(client, t.connection, deviceId, 'to a certificate'), 'to a certificate');
      } finally {
        await client.close();
      }
      const events = await readEvents('the X.509 message', (events) => events.some((e) => e.messageId === `${deviceId}-1`));
      const event = events.find((e) => e.messageId === `${deviceId}-1`)!;
      assert.match(String(event.systemProperties?.['iothub-connection-auth-method']), /"type":"x509Certificate"/);
      // This certificate for another device: refused, and the log says why.
      const other = await clientFor(`${deviceId}-other`);
      try {
        await other.open();
        await assert.rejects(other.sendEvent(new deviceSdk.Message('not mine')));
        await until(
          () =>
            logLines.some(
              (l) => l.includes(`${deviceId}-other/messages/events': amqp:unauthorized-access`) && l.includes('thumbprintMismatch'),
            ),
          'logged',
        );
      } finally {
        await other.close();
      }
    });
  }
});
