import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import rhea, { type Connection, type EventContext, type Receiver, type Sender } from 'rhea';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { registerIdentity, until } from './helpers/devices.js';
import { createLog } from '../src/hub/log.js';
import { createSasToken } from '../src/hub/auth/sas-token.js';
import { within } from './helpers/events.js';

// Devices and modules over AMQP on the hub's TLS port: the link dispatch (which identity's links a
// connection may attach, by the tokens it put on $cbs), with a bare rhea client, for what the SDK
// never does on its own (attach another device's links, skip $cbs).

/** A bare AMQPS connection to the hub's TLS port. */
async function connect(t: TestHub): Promise<Connection> {
  const connection = rhea.create_container().connect({
    transport: 'tls',
    host: '127.0.0.1',
    servername: 'localhost',
    port: t.hub.port,
    ca: t.hub.tls.ca,
    reconnect: false,
  } as rhea.ConnectionOptions);
  connection.on('error', () => {});
  connection.on('disconnected', () => {});
  await within(10_000, 'the AMQP connection', once(connection, 'connection_open'));
  return connection;
}

/** A put-token round trip on $cbs; resolves to the reply's status code. */
async function putToken(connection: Connection, audience: string, token: string): Promise<number> {
  const replyTo = `cbs-reply-${rhea.generate_uuid()}`;
  const replies = connection.open_receiver({ name: replyTo, source: { address: '$cbs' }, target: { address: replyTo } });
  const requests = connection.open_sender({ target: { address: '$cbs' } });
  await within(10_000, 'the $cbs links', once(requests, 'sendable'));
  requests.send({
    message_id: rhea.generate_uuid(),
    reply_to: replyTo,
    application_properties: { operation: 'put-token', name: audience, type: 'servicebus.windows.net:sastoken' },
    body: token,
  });
  const [context] = (await within(10_000, 'the $cbs reply', once(replies, 'message'))) as [EventContext];
  return context.message!.application_properties!['status-code'] as number;
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
    key1 = (await registerIdentity(t, 'amqp-d1')).connectionString.match(/SharedAccessKey=([^;]+)/)![1]!;
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
