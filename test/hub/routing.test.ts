import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import deviceSdk from 'azure-iot-device';
import { earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import { restCall, startTestHub, type TestHub } from '../helpers/hub.js';
import { openDevice, registerIdentity, until } from '../helpers/devices.js';
import { collect, consumer, type Collected } from '../helpers/events.js';
import { createRegistry } from '../../src/clients/service-clients.js';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import { parseRoutingSettings, RoutingSettingsError } from '../../src/hub/routing/routing-settings.js';
import { jsonPatch } from '../../src/hub/routing/notifications.js';
import { createDeviceClient, type DeviceClient } from '../../src/clients/device-clients.js';

// Message routing to the built-in endpoint, driven as apps drive IoT Hub: devices send with
// azure-iot-device, the service writes twins and identities with azure-iothub, and what the endpoint
// holds is read with @azure/event-hubs. Routes are what `az iot hub show` prints under properties.routing.

const events = ['events'];

/** Routes of every source, the fallback route off, and enrichments. */
const ROUTING = {
  routes: [
    {
      name: 'hot',
      source: 'DeviceMessages',
      condition: "$body.temperature > 30 AND level = 'critical'",
      endpointNames: events,
      isEnabled: true,
    },
    { name: 'lab-devices', source: 'DeviceMessages', condition: "$twin.tags.site = 'lab'", endpointNames: events, isEnabled: true },
    { name: 'markers', source: 'DeviceMessages', condition: "KIND = 'end'", endpointNames: events, isEnabled: true },
    { name: 'everything-but-off', source: 'DeviceMessages', condition: 'true', endpointNames: events, isEnabled: false },
    { name: 'twins', source: 'TwinChangeEvents', condition: "$connectionDeviceId = 'twin-device'", endpointNames: events, isEnabled: true },
    { name: 'lifecycle', source: 'DeviceLifecycleEvents', endpointNames: events, isEnabled: true },
    {
      name: 'presence',
      source: 'DeviceConnectionStateEvents',
      condition: "deviceId = 'presence-device'",
      endpointNames: events,
      isEnabled: true,
    },
    { name: 'digital-twins', source: 'DigitalTwinChangeEvents', condition: 'true', endpointNames: events, isEnabled: true },
  ],
  fallbackRoute: { name: '$fallback', source: 'DeviceMessages', condition: 'true', endpointNames: events, isEnabled: false },
  enrichments: [
    { key: 'site', value: '$twin.tags.Site', endpointNames: events }, // twin paths ignore case, as routing queries' do
    { key: 'hub', value: '$iothubname', endpointNames: events },
    { key: 'workshop', value: 'room-1', endpointNames: events },
  ],
};

function jsonBody(event: ReceivedEventData): any {
  return Buffer.isBuffer(event.body) ? JSON.parse(event.body.toString('utf8')) : event.body;
}

function source(event: ReceivedEventData): unknown {
  return event.systemProperties?.['iothub-message-source'];
}

function from(event: ReceivedEventData): unknown {
  return event.systemProperties?.['iothub-connection-device-id'];
}

function telemetry(body: object, properties: Record<string, string> = {}, json = true): deviceSdk.Message {
  const message = new deviceSdk.Message(JSON.stringify(body));
  if (json) {
    message.contentType = 'application/json';
    message.contentEncoding = 'utf-8';
  }
  for (const [name, value] of Object.entries(properties)) message.properties.add(name, value);
  return message;
}

describe('message routing', () => {
  let t: TestHub;
  let reader: ReturnType<typeof consumer>;
  let received: Collected;
  const clients: DeviceClient[] = [];

  before(async () => {
    t = await startTestHub({ routing: parseRoutingSettings({ properties: { routing: ROUTING } }) });
    reader = consumer(t.hub.eventHubConnectionString());
    received = collect(reader, earliestEventPosition);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await received.close();
    await reader.close();
    await t.dispose();
  });

  async function device(deviceId: string, transport: 'mqtt' | 'amqp' | 'http' = 'mqtt'): Promise<DeviceClient> {
    const client = await openDevice(await registerIdentity(t, deviceId), transport);
    clients.push(client);
    return client;
  }

  /** The events from `deviceId` of `kind` once `count` are there. */
  async function eventsOf(deviceId: string, kind: string, count: number): Promise<ReceivedEventData[]> {
    const matching = () => received.events.filter((e) => from(e) === deviceId && source(e) === kind);
    await received.until(30_000, `${count} ${kind} of ${deviceId}`, () => matching().length >= count);
    return matching();
  }

  for (const transport of ['mqtt', 'amqp', 'http'] as const) {
    test(`${transport}: a device message goes to the endpoint when a route's condition holds, and is dropped when none does`, async () => {
      const deviceId = `routed-${transport}`;
      const client = await device(deviceId, transport);
      await client.sendEvent(telemetry({ temperature: 35, n: 1 }, { level: 'critical' }));
      await client.sendEvent(telemetry({ temperature: 20, n: 2 }, { level: 'critical' })); // too cool
      await client.sendEvent(telemetry({ temperature: 35, n: 3 }, { level: 'info' })); // not critical
      await client.sendEvent(telemetry({ temperature: 35, n: 4 }, { level: 'critical' }, false)); // not JSON: $body is undefined
      await client.sendEvent(telemetry({ temperature: 36, n: 5 }, { LEVEL: 'critical' })); // property names ignore case
      await client.sendEvent(telemetry({ n: 6 }, { kind: 'end' }));
      // One device's messages keep their order in its partition: the marker comes after all the others.
      const routed = await eventsOf(deviceId, 'Telemetry', 3);
      assert.deepEqual(
        routed.map((e) => jsonBody(e).n),
        [1, 5, 6],
      );
      // Enrichments: the hub's name, a static value, and a twin path the twin lacks, stamped as written.
      assert.equal(routed[0]!.properties?.hub, 'localhost');
      assert.equal(routed[0]!.properties?.workshop, 'room-1');
      assert.equal(routed[0]!.properties?.site, '$twin.tags.Site');
      assert.equal(routed[0]!.properties?.level, 'critical', "the device's own properties stay");
    });
  }

  test("a condition on the sender's twin, and an enrichment from it", async () => {
    const client = await device('lab-device');
    await createRegistry(t.connection).updateTwin('lab-device', { tags: { site: 'lab' } }, '*');
    await client.sendEvent(telemetry({ n: 1 }));
    const [event] = await eventsOf('lab-device', 'Telemetry', 1);
    assert.equal(jsonBody(event!).n, 1);
    assert.equal(event!.properties?.site, 'lab');
  });

  test('twin change events: a service patch, a device report and a replace, with what changed and its metadata', async () => {
    const registry = createRegistry(t.connection);
    const client = await device('twin-device');
    await registry.updateTwin('twin-device', { tags: { floor: 3 }, properties: { desired: { telemetryInterval: 5 } } }, '*');
    const twin = await client.getTwin();
    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update({ firmware: '1.2' }, (err?: Error) => (err ? reject(err) : resolve())),
    );
    // Replace Twin (PUT /twins/{id}), which the C# and Python service SDKs call; azure-iothub has no call for it.
    const policy = t.hub.auth.policy('iothubowner')!;
    const owner = createSasToken(t.hub.hostName, policy.primaryKey, policy.keyName, 600);
    const replace = JSON.stringify({ tags: { floor: 4 }, properties: { desired: {} } });
    assert.equal(
      (await restCall(t, 'PUT', '/twins/twin-device?api-version=2021-04-12', owner, replace, { headers: { 'If-Match': '*' } })).status,
      200,
    );

    const changes = await eventsOf('twin-device', 'twinChangeEvents', 3);
    const [desired, reported, replaced] = changes;
    for (const event of changes) {
      assert.equal(event.properties?.['iothub-message-schema'], 'twinChangeNotification');
      assert.equal(event.properties?.hubName, 'localhost');
      assert.equal(event.properties?.deviceId, 'twin-device');
      assert.ok(!Number.isNaN(Date.parse(event.properties?.operationTimestamp as string)), 'operationTimestamp is a date');
      assert.equal(event.contentType, 'application/json');
      assert.equal(event.properties?.workshop, 'room-1', 'enrichments apply to twin change events too');
      assert.ok(event.correlationId, 'each event has a correlation id');
    }
    assert.equal(desired!.properties?.opType, 'updateTwin');
    const desiredBody = jsonBody(desired!);
    assert.deepEqual(desiredBody.tags, { floor: 3 });
    assert.equal(desiredBody.properties.desired.telemetryInterval, 5);
    assert.equal(desiredBody.properties.desired.$version, 2);
    assert.equal(desiredBody.properties.desired.$metadata.telemetryInterval.$lastUpdatedVersion, 2);
    assert.equal(desiredBody.properties.reported, undefined, 'only what the write touched');
    assert.equal(typeof desiredBody.version, 'number');

    const reportedBody = jsonBody(reported!);
    assert.equal(reported!.properties?.opType, 'updateTwin');
    assert.equal(reportedBody.properties.reported.firmware, '1.2');
    assert.ok(reportedBody.properties.reported.$metadata.firmware.$lastUpdated, 'the reported property has its metadata');
    assert.equal(reportedBody.properties.desired, undefined);
    assert.ok(reportedBody.version > desiredBody.version, 'versions grow');

    assert.equal(replaced!.properties?.opType, 'replaceTwin');
    const replacedBody = jsonBody(replaced!);
    assert.equal(replacedBody.deviceId, 'twin-device');
    assert.deepEqual(replacedBody.tags, { floor: 4 });
    assert.equal(replacedBody.properties.reported.firmware, '1.2', 'a replace carries the whole twin');
  });

  test("a module's twin change event names the module; a route's condition on the device id leaves other devices' out", async () => {
    const registry = createRegistry(t.connection);
    await registry.addModule({ deviceId: 'twin-device', moduleId: 'twin-module' });
    await registerIdentity(t, 'other-twin-device');
    await registry.updateTwin('other-twin-device', { tags: { x: 1 } }, '*');
    await registry.updateModuleTwin('twin-device', 'twin-module', { properties: { desired: { mode: 'eco' } } }, '*');
    const [event] = (await eventsOf('twin-device', 'twinChangeEvents', 4)).filter((e) => e.properties?.moduleId);
    assert.equal(event!.properties?.moduleId, 'twin-module');
    assert.equal(event!.systemProperties?.['iothub-connection-module-id'], 'twin-module');
    assert.equal(jsonBody(event!).properties.desired.mode, 'eco');
    assert.equal(
      received.events.filter((e) => from(e) === 'other-twin-device' && source(e) === 'twinChangeEvents').length,
      0,
      "the route's condition left the other device's change out",
    );
  });

  test('lifecycle events: a device and a module created and deleted, each with its twin', async () => {
    const registry = createRegistry(t.connection);
    await registry.create({ deviceId: 'life-device' });
    await registry.addModule({ deviceId: 'life-device', moduleId: 'life-module' });
    await registry.updateTwin('life-device', { tags: { kept: 'in the delete event' } }, '*');
    await registry.delete('life-device');
    const lifecycle = await eventsOf('life-device', 'deviceLifecycleEvents', 4);
    const ops = lifecycle.map((e) => `${e.properties?.opType}${e.properties?.moduleId ? ` ${e.properties.moduleId}` : ''}`);
    assert.deepEqual(ops.slice(0, 2), ['createDeviceIdentity', 'createDeviceIdentity life-module']);
    assert.deepEqual(ops.slice(2).sort(), ['deleteDeviceIdentity', 'deleteDeviceIdentity life-module']);
    for (const event of lifecycle) assert.equal(event.properties?.['iothub-message-schema'], 'deviceLifecycleNotification');
    const created = jsonBody(lifecycle[0]!);
    assert.equal(created.deviceId, 'life-device');
    assert.ok(created.etag && created.properties.desired.$version === 1, 'a new twin');
    const deleted = jsonBody(lifecycle.find((e) => e.properties?.opType === 'deleteDeviceIdentity' && !e.properties?.moduleId)!);
    assert.deepEqual(deleted.tags, { kept: 'in the delete event' }, 'the twin as it was when deleted');
  });

  test("digital twin change events: what a write changed in an IoT Plug and Play device's digital twin, as JSON Patch", async () => {
    const model = 'dtmi:com:example:Thermostat;1';
    const client = await createDeviceClient(await registerIdentity(t, 'pnp-routed'));
    clients.push(client);
    await client.setOptions({ ca: t.hub.tls.ca, modelId: model }); // the SDK's IoT Plug and Play announcement
    await client.open();
    await until(() => t.hub.registry.find('pnp-routed')?.modelId === model, 'the model id is recorded');
    const registry = createRegistry(t.connection);
    await registry.updateTwin('pnp-routed', { tags: { floor: 2 } }, '*'); // no digital twin change: tags are not in it
    await registry.updateTwin('pnp-routed', { properties: { desired: { targetTemperature: 21.8 } } }, '*');
    const twin = await client.getTwin();
    const ack = { targetTemperature: { value: 21.8, ac: 200, av: 2, ad: 'Successfully executed patch' } };
    await new Promise<void>((resolve, reject) => twin.properties.reported.update(ack, (err?: Error) => (err ? reject(err) : resolve())));
    await registry.updateTwin('lab-device', { properties: { desired: { x: 1 } } }, '*'); // no model: no digital twin event

    const [desired, acknowledged] = await eventsOf('pnp-routed', 'digitalTwinChangeEvents', 2);
    for (const event of [desired, acknowledged]) {
      assert.equal(event!.contentType, 'application/json-patch+json');
      assert.equal(event!.systemProperties?.['dt-dataschema'], model);
      assert.equal(event!.properties?.['iothub-message-schema'], 'digitalTwinChangeNotification');
      assert.equal(event!.properties?.workshop, undefined, "enrichments don't apply to digital twin change events");
    }
    assert.deepEqual(jsonBody(desired!), [
      { op: 'add', path: '/$metadata/targetTemperature', value: { desiredValue: 21.8, desiredVersion: 2 } },
    ]);
    const ops = jsonBody(acknowledged!) as Array<{ op: string; path: string; value: unknown }>;
    const byPath = new Map(ops.map((op) => [op.path, op.value]));
    assert.equal(byPath.get('/targetTemperature'), 21.8);
    assert.equal(byPath.get('/$metadata/targetTemperature/ackCode'), 200);
    assert.equal(byPath.get('/$metadata/targetTemperature/ackVersion'), 2);
    assert.ok(ops.every((op) => op.op === 'add'));
    assert.equal(received.events.filter((e) => source(e) === 'digitalTwinChangeEvents' && from(e) === 'lab-device').length, 0);
  });

  test('connection state events: connected and disconnected, with growing sequence numbers', async () => {
    const client = await openDevice(await registerIdentity(t, 'presence-device'), 'mqtt');
    await client.close();
    const [connected, disconnected] = await eventsOf('presence-device', 'deviceConnectionStateEvents', 2);
    assert.equal(connected!.properties?.opType, 'deviceConnected');
    assert.equal(disconnected!.properties?.opType, 'deviceDisconnected');
    assert.equal(connected!.properties?.['iothub-message-schema'], 'deviceConnectionStateNotification');
    const [first, second] = [connected, disconnected].map((e) => jsonBody(e!).sequenceNumber as string);
    assert.match(first!, /^[0-9a-f]{64}$/);
    assert.ok(second! > first!, `${second} > ${first}`);
    // The route takes one device only: other devices' connects stay out.
    assert.equal(received.events.filter((e) => source(e) === 'deviceConnectionStateEvents' && from(e) !== 'presence-device').length, 0);
  });
});

describe('message routing: the fallback route', () => {
  let t: TestHub;
  before(async () => {
    t = await startTestHub({
      routing: parseRoutingSettings({
        routes: [{ name: 'hot', source: 'DeviceMessages', condition: '$body.temperature > 30', endpointNames: events, isEnabled: true }],
        fallbackRoute: { name: '$fallback', source: 'DeviceMessages', condition: 'true', endpointNames: events, isEnabled: true },
      }),
    });
  });
  after(async () => t.dispose());

  test('takes what no route takes; a message a route takes arrives once; no other source is routed', async () => {
    const client = await openDevice(await registerIdentity(t, 'fallback-device'), 'mqtt');
    try {
      await createRegistry(t.connection).updateTwin('fallback-device', { tags: { a: 1 } }, '*');
      await client.sendEvent(telemetry({ temperature: 35, n: 1 }));
      await client.sendEvent(telemetry({ temperature: 5, n: 2 }));
    } finally {
      await client.close();
    }
    const reader = consumer(t.hub.eventHubConnectionString());
    const received = collect(reader, earliestEventPosition);
    try {
      await received.until(30_000, 'two messages', () => received.events.length >= 2);
      assert.deepEqual(
        received.events.map((e) => jsonBody(e).n),
        [1, 2],
      );
    } finally {
      await received.close();
      await reader.close();
    }
    // Stored is all there is: no twin change, lifecycle or connection event without a route of its source.
    const stored = t.hub.eventLog.partitionIds().reduce((n, p) => n + t.hub.eventLog.partitionInfo(Number(p)).lastSequenceNumber + 1, 0);
    assert.equal(stored, 2);
  });
});

describe('routing settings', () => {
  const route = (extra: object) => ({
    name: 'r',
    source: 'DeviceMessages',
    condition: 'true',
    endpointNames: events,
    isEnabled: true,
    ...extra,
  });
  const refused = (settings: object, message: RegExp) =>
    assert.throws(
      () => parseRoutingSettings(settings),
      (err: Error) => err instanceof RoutingSettingsError && message.test(err.message),
    );

  test("reads what 'az iot hub show' prints, the routing object alone, and defaults as IoT Hub does", () => {
    const whole = parseRoutingSettings({
      name: 'my-hub',
      properties: { routing: { routes: [route({ condition: undefined })], endpoints: {} } },
    });
    assert.deepEqual(whole.routes, [
      { name: 'r', source: 'DeviceMessages', condition: 'true', endpointNames: ['events'], isEnabled: true },
    ]);
    assert.deepEqual(whole.fallback, { isEnabled: true, condition: 'true' }, 'the fallback route is on unless turned off');
    assert.equal(parseRoutingSettings({ routes: [route({ source: 'twinchangeevents' })] }).routes[0]!.source, 'TwinChangeEvents');
  });

  test('refuses endpoints it does not serve, unknown sources, bad names and limits, each with why', () => {
    const endpoints = { eventHubs: [{ name: 'hot-path', connectionString: 'Endpoint=sb://x/' }] };
    refused(
      { endpoints, routes: [route({ endpointNames: ['hot-path'] })] },
      /'hot-path', an endpoint of eventHubs: the local hub serves the built-in endpoint 'events' and storageContainers/,
    );
    refused({ routes: [route({ endpointNames: ['nowhere'] })] }, /'nowhere', which is not an endpoint/);
    refused({ routes: [route({ source: 'Telemetry' })] }, /source "Telemetry": it is one of DeviceMessages/);
    refused({ routes: [route({ name: 'has space' })] }, /routes\[0\] needs a name/);
    refused({ routes: [route({}), route({ name: 'R' })] }, /two routes are named 'R'/);
    refused({ routes: Array.from({ length: 101 }, (_, i) => route({ name: `r${i}` })) }, /101 routes: IoT Hub allows 100/);
    refused({ routes: [route({ isEnabled: 'yes' })] }, /isEnabled "yes"/);
    refused({ enrichments: [{ key: 'k', value: '$twin.deviceId', endpointNames: events }] }, /enrichment 'k' needs a value/);
    refused({ fallbackRoute: { source: 'TwinChangeEvents', endpointNames: events } }, /fallback route's source is DeviceMessages/);
    refused({ hello: 1 }, /no routes, fallbackRoute, enrichments or endpoints/);
    refused({ enrichments: [{ key: '__proto__', value: 'x', endpointNames: events }] }, /enrichments\[0\] needs a key/);
  });

  test('a condition that is not a routing query stops the hub from starting, naming the route', async () => {
    await assert.rejects(
      startTestHub({ routing: parseRoutingSettings({ routes: [route({ condition: "level = 'x' AND" })] }) }),
      /The condition of route 'r' is not a routing query: Syntax error at position/,
    );
  });
});

describe('the JSON Patch of a digital twin change', () => {
  test('adds what is new or changed, removes what is gone, walks into objects both hold, escapes ~ and / in names', () => {
    const from = { a: 1, b: { c: 2, d: 3 }, 'x/y': 1, gone: true, same: [1, 2] };
    const to = { a: 2, b: { c: 2, e: 4 }, 'x/y': 2, '~t': 0, same: [1, 2], obj: { n: 1 } };
    assert.deepEqual(jsonPatch(from, to), [
      { op: 'add', path: '/a', value: 2 },
      { op: 'remove', path: '/b/d' },
      { op: 'add', path: '/b/e', value: 4 },
      { op: 'remove', path: '/gone' },
      { op: 'add', path: '/obj', value: { n: 1 } },
      { op: 'add', path: '/x~1y', value: 2 },
      { op: 'add', path: '/~0t', value: 0 },
    ]);
    assert.deepEqual(jsonPatch(to, to), []);
  });
});
