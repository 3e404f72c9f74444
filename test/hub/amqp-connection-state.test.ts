import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import deviceSdk from 'azure-iot-device';
import { earliestEventPosition } from '@azure/event-hubs';
import type { Connection, Sender } from 'rhea';
import { startTestHub, type TestHub } from '../helpers/hub.js';
import { openDevice, registerIdentity, until } from '../helpers/devices.js';
import { collect, consumer, within } from '../helpers/events.js';
import { open, putToken } from '../helpers/amqp.js';
import { closed, deviceToken, rawConnect } from '../helpers/mqtt.js';
import { createRegistry, restApiClient } from '../../src/clients/service-clients.js';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import type { DeviceClient } from '../../src/clients/device-clients.js';
import type { IdentityKey } from '../../src/hub/registry/registry.js';

// An identity's connectionState over AMQP (the unchanged SDK's Amqp and AmqpWs): Connected while it
// has a link of its own open, across MQTT and AMQP at once; and an IoT Plug and Play model id
// announced on an AMQP attach (`com.microsoft:model-id`, as the C#, Java and C SDKs send it).

const THERMOSTAT = 'dtmi:com:example:Thermostat;1';

describe('connection state over AMQP', () => {
  let t: TestHub;
  const open_: DeviceClient[] = [];
  const connections: Connection[] = [];
  before(async () => (t = await startTestHub()));
  after(async () => {
    await Promise.all(open_.map((c) => c.close().catch(() => {})));
    for (const c of connections) c.close();
    await t.dispose();
  });

  function stateOf(key: IdentityKey): string | undefined {
    return t.hub.registry.find(key.deviceId, key.moduleId)?.connectionState;
  }

  /** An SDK client that opened a link (its telemetry link, by sending once). */
  async function sending(deviceId: string, transport: 'amqp' | 'amqp-ws' | 'http', moduleId?: string): Promise<DeviceClient> {
    const client = await openDevice(await registerIdentity(t, deviceId, moduleId), transport);
    open_.push(client);
    await client.sendEvent(new deviceSdk.Message('hello'));
    return client;
  }

  for (const transport of ['amqp', 'amqp-ws'] as const) {
    test(`${transport}: Connected in the registry, the twin and a query while it has a link open; Disconnected after close`, async () => {
      const deviceId = `state-${transport}`;
      const registry = createRegistry(t.connection);
      const client = await sending(deviceId, transport);
      await until(() => stateOf({ deviceId }) === 'Connected', 'the device shows Connected');
      const device = (await registry.get(deviceId)).responseBody;
      assert.equal(device.connectionState, 'Connected');
      assert.notEqual(device.connectionStateUpdatedTime, '0001-01-01T00:00:00Z');
      assert.notEqual(device.lastActivityTime, '0001-01-01T00:00:00Z');
      assert.equal(((await registry.getTwin(deviceId)).responseBody as { connectionState?: string }).connectionState, 'Connected');
      const query = registry.createQuery(`SELECT * FROM devices WHERE connectionState = 'Connected' AND deviceId = '${deviceId}'`);
      assert.deepEqual(
        ((await query.nextAsTwin()).result as Array<{ deviceId: string }>).map((d) => d.deviceId),
        [deviceId],
      );

      await client.close();
      await until(() => stateOf({ deviceId }) === 'Disconnected', 'the device shows Disconnected after close');
      assert.equal(((await registry.getTwin(deviceId)).responseBody as { connectionState?: string }).connectionState, 'Disconnected');
    });
  }

  test('an HTTPS device holds no connection: its sends leave it Disconnected, as on IoT Hub', async () => {
    const client = await sending('state-http', 'http');
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.hub.registry.flush();
    assert.equal(stateOf({ deviceId: 'state-http' }), 'Disconnected');
    assert.equal(t.hub.presence.isConnected({ deviceId: 'state-http' }), false);
    await client.close();
  });

  test('GET /statistics/service counts the devices connected now, over MQTT and AMQP, and not their modules', async () => {
    // azure-iothub has no call of its own for it (the C# SDK's GetServiceStatisticsAsync); its REST client, with the service policy.
    const { client } = restApiClient(t.connectionFor('service'));
    const connectedDevices = () =>
      new Promise<number>((resolve, reject) =>
        (client as unknown as { executeApiCall: (...args: unknown[]) => void }).executeApiCall(
          'GET',
          '/statistics/service?api-version=2021-04-12',
          {},
          null,
          undefined,
          undefined,
          (err: Error | null, body: { connectedDeviceCount: number }) => (err ? reject(err) : resolve(body.connectedDeviceCount)),
        ),
      );
    const before = await connectedDevices(); // what the tests before this one left connected
    assert.ok(Number.isInteger(before), `connectedDeviceCount ${before}`);
    const clients = [
      await openDevice(await registerIdentity(t, 'stats-mqtt'), 'mqtt'),
      await openDevice(await registerIdentity(t, 'stats-amqp'), 'amqp'),
      await openDevice(await registerIdentity(t, 'stats-edge', 'module'), 'mqtt'),
    ];
    open_.push(...clients);
    await clients[1]!.sendEvent(new deviceSdk.Message('opens its link'));
    await until(() => t.hub.presence.isConnected({ deviceId: 'stats-edge', moduleId: 'module' }), 'the module connected');
    assert.equal(await connectedDevices(), before + 2);
    await Promise.all(clients.map((c) => c.close()));
    await until(() => ['stats-mqtt', 'stats-amqp'].every((deviceId) => !t.hub.presence.isConnected({ deviceId })), 'the devices gone');
    assert.equal(await connectedDevices(), before);
  });

  test('a module over AMQP is Connected on its own; its device stays Disconnected', async () => {
    const key = { deviceId: 'state-edge', moduleId: 'filter' };
    const client = await sending(key.deviceId, 'amqp', key.moduleId);
    await until(() => stateOf(key) === 'Connected', 'the module shows Connected');
    assert.equal(stateOf({ deviceId: key.deviceId }), 'Disconnected');
    await client.close();
    await until(() => stateOf(key) === 'Disconnected', 'the module shows Disconnected after close');
  });

  test('over MQTT and AMQP at once: Connected until both are gone, whichever goes first', async () => {
    for (const first of ['mqtt', 'amqp'] as const) {
      const deviceId = `state-both-${first}`;
      const connection = await registerIdentity(t, deviceId);
      const clients = { mqtt: await openDevice(connection, 'mqtt'), amqp: await openDevice(connection, 'amqp') };
      open_.push(clients.mqtt, clients.amqp);
      await clients.amqp.sendEvent(new deviceSdk.Message('over amqp'));
      await until(() => t.hub.presence.isConnected({ deviceId }) && stateOf({ deviceId }) === 'Connected', 'Connected');
      await clients[first].close();
      // Its other transport still holds it: give a wrong Disconnected the time to land, then look.
      await new Promise((resolve) => setTimeout(resolve, 300));
      t.hub.registry.flush();
      assert.equal(stateOf({ deviceId }), 'Connected', `still Connected after its ${first} client closed`);
      await clients[first === 'mqtt' ? 'amqp' : 'mqtt'].close();
      await until(() => stateOf({ deviceId }) === 'Disconnected', 'Disconnected once both are gone');
    }
  });

  test('an MQTT session taken over by a new connect is one MQTT presence: Disconnected once that and AMQP are gone', async () => {
    const deviceId = 'state-takeover';
    const connection = await registerIdentity(t, deviceId);
    const { key } = connection as { key: string };
    const amqp = await openDevice(connection, 'amqp');
    open_.push(amqp);
    await amqp.sendEvent(new deviceSdk.Message('over amqp'));
    const first = await rawConnect(t.hub, { deviceId }, deviceToken({ deviceId }, key));
    assert.notEqual(typeof first, 'number', 'the first MQTT connect is accepted');
    const second = await rawConnect(t.hub, { deviceId }, deviceToken({ deviceId }, key));
    assert.notEqual(typeof second, 'number', 'the second MQTT connect is accepted');
    await closed(first as Exclude<typeof first, number>); // taken over
    await amqp.close();
    (second as Exclude<typeof second, number>).end(true);
    await until(() => stateOf({ deviceId }) === 'Disconnected', 'Disconnected once the new MQTT session and AMQP are gone');
  });

  test('a dropped connection, an expired token and a revocation each leave the identity Disconnected', async () => {
    const deviceId = 'state-raw';
    const { key } = (await registerIdentity(t, deviceId)) as { key: string };
    const audience = `localhost/devices/${deviceId}`;
    async function linked(ttlSeconds: number, properties?: Record<string, string>): Promise<{ connection: Connection; sender: Sender }> {
      const connection = await open(t.hub.port, {}, t.hub.tls);
      connections.push(connection);
      assert.equal(await putToken(connection, encodeURIComponent(audience), createSasToken(audience, key, undefined, ttlSeconds)), 200);
      const sender = connection.open_sender({ target: { address: `/devices/${deviceId}/messages/events` }, properties });
      await within(10_000, 'the telemetry link', once(sender, 'sendable'));
      return { connection, sender };
    }
    // Two links on two connections: the first one's drop leaves the identity Connected by the second.
    const dropped = await linked(3600);
    const kept = await linked(3600);
    await until(() => stateOf({ deviceId }) === 'Connected', 'Connected');
    dropped.connection.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.hub.registry.flush();
    assert.equal(stateOf({ deviceId }), 'Connected', 'still Connected by its other connection');
    kept.connection.close();
    await until(() => stateOf({ deviceId }) === 'Disconnected', 'Disconnected once its last connection dropped');

    await linked(2);
    await until(() => stateOf({ deviceId }) === 'Connected', 'Connected again');
    await until(() => stateOf({ deviceId }) === 'Disconnected', 'Disconnected once its token expired', 30_000);

    await linked(3600);
    await until(() => stateOf({ deviceId }) === 'Connected', 'Connected again');
    await createRegistry(t.connection).update({ deviceId, status: 'disabled' });
    await until(() => stateOf({ deviceId }) === 'Disconnected', 'Disconnected once it was disabled');
  });

  test("a model id on an AMQP attach (com.microsoft:model-id) is the twin's modelId and its events' dt-dataschema; dt-subject is the component", async () => {
    const deviceId = 'state-pnp';
    const { key } = (await registerIdentity(t, deviceId)) as { key: string };
    const audience = `localhost/devices/${deviceId}`;
    const connection = await open(t.hub.port, {}, t.hub.tls);
    connections.push(connection);
    assert.equal(await putToken(connection, encodeURIComponent(audience), createSasToken(audience, key, undefined, 3600)), 200);
    // The C# SDK's order: twin links first (no model id on them), then the telemetry link with it.
    const twin = connection.open_receiver({ source: { address: `/devices/${deviceId}/twin` }, credit_window: 0 });
    await within(10_000, 'the twin link', once(twin, 'receiver_open'));
    const sender = connection.open_sender({
      target: { address: `/devices/${deviceId}/messages/events` },
      properties: { 'com.microsoft:model-id': THERMOSTAT },
    });
    await within(10_000, 'the telemetry link', once(sender, 'sendable'));
    sender.send({ message_id: 'pnp-amqp', body: '{"temperature":21}', message_annotations: { 'dt-subject': 'thermostat1' } });
    await within(10_000, 'the message accepted', once(sender, 'accepted'));

    await until(() => t.hub.registry.find(deviceId)?.modelId === THERMOSTAT, 'the model id is recorded');
    assert.equal((await createRegistry(t.connection).getTwin(deviceId)).responseBody.modelId, THERMOSTAT);
    const reader = consumer(t.hub.eventHubConnectionString());
    const received = collect(reader, earliestEventPosition);
    try {
      await received.until(60_000, 'the PnP event', () => received.events.some((e) => e.messageId === 'pnp-amqp'));
      const event = received.events.find((e) => e.messageId === 'pnp-amqp')!;
      assert.equal(event.systemProperties?.['dt-dataschema'], THERMOSTAT);
      assert.equal(event.systemProperties?.['dt-subject'], 'thermostat1');
    } finally {
      await received.close();
      await reader.close();
    }
  });
});
