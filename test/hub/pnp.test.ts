import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import deviceSdk from 'azure-iot-device';
import iothub from 'azure-iothub';
import { earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import { createRegistry } from '../../src/clients/service-clients.js';
import { createDeviceClient, type DeviceClient } from '../../src/clients/device-clients.js';
import { hubAgent } from '../../src/clients/hub-transport.js';
import { startTestHub, type TestHub } from '../helpers/hub.js';
import { registerIdentity, until } from '../helpers/devices.js';
import { collect, consumer } from '../helpers/events.js';

// IoT Plug and Play end to end: a device that announces a model id (the SDK's setOptions({ modelId })),
// reports and acknowledges properties by the PnP conventions, sends component telemetry and answers
// commands, seen from the service side through Registry, DigitalTwinClient and an Event Hubs reader.

const WAIT_MS = 30_000;
const CONTROLLER = 'dtmi:com:example:TemperatureController;2';
const THERMOSTAT = 'dtmi:com:example:Thermostat;1';

const require = createRequire(import.meta.url);
const { IotHubGatewayServiceAPIs } = require('azure-iothub/dist/pl/iotHubGatewayServiceAPIs.js');
const { DigitalTwinClient, IoTHubTokenCredentials } = iothub;
type DigitalTwinClient = iothub.DigitalTwinClient;

/** azure-iothub's DigitalTwinClient, its REST pipeline given the hub's CA and port (as the toolkit's registry gets them). */
function digitalTwinClient(t: TestHub): DigitalTwinClient {
  const credentials = new IoTHubTokenCredentials(t.hub.serviceConnectionString());
  const client = new DigitalTwinClient(credentials);
  const agent = hubAgent(t.connection.transport);
  (client as any)._pl = new IotHubGatewayServiceAPIs(credentials, {
    baseUri: `https://${credentials.getHubName()}`,
    apiVersion: '2021-04-12',
    agentSettings: { http: agent, https: agent },
  });
  return client;
}

async function pnpDevice(t: TestHub, deviceId: string, modelId: string | undefined, moduleId?: string): Promise<DeviceClient> {
  const client = await createDeviceClient(await registerIdentity(t, deviceId, moduleId));
  // setOptions replaces the options set before: the hub's CA goes along with the model id.
  if (modelId) await client.setOptions({ ca: t.hub.tls.ca, modelId });
  await client.open();
  return client;
}

function report(client: DeviceClient, patch: object): Promise<void> {
  return client
    .getTwin()
    .then(
      (twin) =>
        new Promise<void>((resolve, reject) => twin.properties.reported.update(patch, (err?: Error) => (err ? reject(err) : resolve()))),
    );
}

function send(client: DeviceClient, body: object, properties: Record<string, string>): Promise<unknown> {
  const message = new deviceSdk.Message(JSON.stringify(body));
  for (const [key, value] of Object.entries(properties)) message.properties.add(key, value);
  return client.sendEvent(message);
}

/** The REST error's status and IoT Hub error code, from whatever the SDK rejected with. */
async function refusal(call: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await call;
  } catch (err: any) {
    return { status: err.statusCode, message: String(err.response?.body ?? err) };
  }
  throw new Error('the call was not refused');
}

describe('IoT Plug and Play', () => {
  let t: TestHub;
  const clients: DeviceClient[] = [];
  before(async () => {
    t = await startTestHub();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await t.dispose();
  });

  test("a model id announced at connect is the twin's modelId (devices, modules, query); a connect without one shows ''", async () => {
    clients.push(await pnpDevice(t, 'pnp-model', CONTROLLER), await pnpDevice(t, 'pnp-plain', undefined));
    // A module announces its own model.
    clients.push(await pnpDevice(t, 'pnp-host', THERMOSTAT, 'pnp-module'));
    const registry = createRegistry(t.connection);
    await until(() => t.hub.registry.find('pnp-model')?.modelId === CONTROLLER, 'the model id is recorded');
    await until(() => t.hub.registry.find('pnp-host', 'pnp-module')?.modelId === THERMOSTAT, "the module's model id is recorded");
    assert.equal((await registry.getTwin('pnp-model')).responseBody.modelId, CONTROLLER);
    assert.equal((await registry.getTwin('pnp-plain')).responseBody.modelId, '');
    assert.equal((await registry.getModuleTwin('pnp-host', 'pnp-module')).responseBody.modelId, THERMOSTAT);
    assert.equal((await registry.getTwin('pnp-host')).responseBody.modelId, '', "the module's model is not its device's");
    const query = registry.createQuery(`SELECT * FROM devices WHERE modelId = '${CONTROLLER}'`);
    assert.deepEqual(
      (await query.nextAsTwin()).result.map((twin) => twin.deviceId),
      ['pnp-model'],
    );
  });

  test("events carry dt-dataschema from the connection's model id, and dt-subject from $.sub (the SDK's dt-subject property)", async () => {
    const device = await pnpDevice(t, 'pnp-events', CONTROLLER);
    const plain = await pnpDevice(t, 'pnp-events-plain', undefined);
    clients.push(device, plain);
    const reader = consumer(t.hub.eventHubConnectionString());
    const received = collect(reader, earliestEventPosition);
    try {
      await send(device, { temperature: 21 }, { run: 'pnp', n: 'component', 'dt-subject': 'thermostat1' });
      await send(device, { workingSet: 100 }, { run: 'pnp', n: 'root' });
      await send(plain, { temperature: 5 }, { run: 'pnp', n: 'plain' });
      const ofRun = (n: string) => received.events.find((e: ReceivedEventData) => e.properties?.run === 'pnp' && e.properties?.n === n);
      await received.until(WAIT_MS, 'the three events', () => ['component', 'root', 'plain'].every((n) => ofRun(n)));
      const component = ofRun('component')!;
      assert.equal(component.systemProperties?.['dt-dataschema'], CONTROLLER);
      assert.equal(component.systemProperties?.['dt-subject'], 'thermostat1');
      assert.equal(component.properties?.['dt-subject'], undefined, 'dt-subject is a system property, not an application one');
      assert.equal(component.systemProperties?.['iothub-connection-device-id'], 'pnp-events');
      const root = ofRun('root')!;
      assert.equal(root.systemProperties?.['dt-dataschema'], CONTROLLER);
      assert.equal(root.systemProperties?.['dt-subject'], undefined);
      const other = ofRun('plain')!;
      assert.equal(other.systemProperties?.['dt-dataschema'], undefined, 'a connection without a model id stamps none');
    } finally {
      await received.close();
      await reader.close();
    }
  });

  describe('the digital twin API (DigitalTwinClient)', () => {
    let device: DeviceClient;
    let digitalTwins: DigitalTwinClient;
    /** The desired patches the device received. */
    const desiredPatches: any[] = [];
    before(async () => {
      device = await pnpDevice(t, 'pnp-dt', CONTROLLER);
      clients.push(device);
      digitalTwins = digitalTwinClient(t);
      const twin = await device.getTwin();
      // The PnP convention: acknowledge each writable property with { value, ac, av, ad }.
      twin.on('properties.desired', (patch: any) => {
        desiredPatches.push(patch);
        const thermostat = patch.thermostat1;
        if (thermostat?.targetTemperature !== undefined) {
          const ack = { value: thermostat.targetTemperature, ac: 200, av: patch.$version, ad: 'Successfully executed patch' };
          twin.properties.reported.update({ thermostat1: { __t: 'c', targetTemperature: ack } }, () => {});
        }
      });
      device.onDeviceMethod('thermostat1*getMaxMinReport', (request, response) => {
        response.send(200, { maxTemp: 25.3, since: request.payload }, () => {});
      });
      device.onDeviceMethod('reboot', (request, response) => {
        response.send(202, { delay: request.payload }, () => {});
      });
      await report(device, { serialNumber: 'SN-42', thermostat1: { __t: 'c', maxTempSinceLastReboot: 25.3 } });
    });

    test("GET shows the device's properties, components and model as IoT Hub's digital twin", async () => {
      const got: any = await digitalTwins.getDigitalTwin('pnp-dt');
      assert.equal(got.$dtId, 'pnp-dt');
      assert.equal(got.$metadata.$model, CONTROLLER);
      assert.equal(got.serialNumber, 'SN-42');
      assert.match(got.$metadata.serialNumber.lastUpdateTime, /^\d{4}-\d\d-\d\dT/);
      assert.equal(got.thermostat1.maxTempSinceLastReboot, 25.3);
      assert.equal(got.thermostat1.__t, undefined, 'the component marker is not shown');
      assert.ok(got.thermostat1.$metadata.maxTempSinceLastReboot.lastUpdateTime);
      assert.match(got._response.headers.get('etag'), /^"[A-Za-z0-9+/=]+"$/);
      const missing = await refusal(digitalTwins.getDigitalTwin('pnp-nobody'));
      assert.equal(missing.status, 404);
      assert.match(missing.message, /DeviceNotFound/);
    });

    test('PATCH sets writable properties (root and component) as desired properties; the acknowledgement shows in $metadata', async () => {
      const etag = ((await digitalTwins.getDigitalTwin('pnp-dt')) as any)._response.headers.get('etag');
      // The SDK resolves on IoT Hub's 202 (and nothing else), with no body.
      await digitalTwins.updateDigitalTwin(
        'pnp-dt',
        [
          { op: 'add', path: '/thermostat1/targetTemperature', value: 21.5 },
          { op: 'add', path: '/fanSpeed', value: 2 },
        ],
        etag,
      );
      await until(() => desiredPatches.some((p) => p.thermostat1?.targetTemperature === 21.5), 'the device receives the desired patch');
      const patch = desiredPatches.find((p) => p.thermostat1?.targetTemperature === 21.5);
      assert.deepEqual(
        { ...patch!, $version: undefined },
        { thermostat1: { __t: 'c', targetTemperature: 21.5 }, fanSpeed: 2, $version: undefined },
      );
      const twin = (await createRegistry(t.connection).getTwin('pnp-dt')).responseBody;
      assert.deepEqual(twin.properties.desired.thermostat1, { __t: 'c', targetTemperature: 21.5 });
      // The device acknowledges in its own time: read until its reported value is there (bounded).
      let got: any;
      const deadline = Date.now() + WAIT_MS;
      while ((got = (await digitalTwins.getDigitalTwin('pnp-dt')) as any).thermostat1.targetTemperature !== 21.5 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(got.thermostat1.targetTemperature, 21.5, "the device's acknowledged value is the property's value");
      const meta = got.thermostat1.$metadata.targetTemperature;
      assert.equal(meta.desiredValue, 21.5);
      assert.equal(meta.desiredVersion, patch.$version);
      assert.equal(meta.ackVersion, patch.$version);
      assert.equal(meta.ackCode, 200);
      assert.equal(meta.ackDescription, 'Successfully executed patch');
      assert.ok(meta.lastUpdateTime);
      assert.deepEqual(
        got.$metadata.fanSpeed,
        { desiredValue: 2, desiredVersion: patch.$version },
        'a desired value not reported yet shows in $metadata only',
      );
      assert.equal(got.fanSpeed, undefined);
    });

    test('PATCH: a stale etag is 412; remove clears a desired value; a component is replaced whole; bad operations are 400', async () => {
      const stale = await refusal(digitalTwins.updateDigitalTwin('pnp-dt', [{ op: 'add', path: '/fanSpeed', value: 3 }], '"AAAAAAAAAAE="'));
      assert.equal(stale.status, 412);
      assert.match(stale.message, /PreconditionFailed/);
      await digitalTwins.updateDigitalTwin('pnp-dt', [{ op: 'remove', path: '/fanSpeed' }]);
      await digitalTwins.updateDigitalTwin('pnp-dt', [
        { op: 'replace', path: '/thermostat1', value: { targetTemperature: 19, $metadata: {} } },
      ]);
      await digitalTwins.updateDigitalTwin('pnp-dt', [
        { op: 'add', path: '/thermostat2', value: { targetTemperature: 30, $metadata: {} } },
      ]);
      await digitalTwins.updateDigitalTwin('pnp-dt', [{ op: 'remove', path: '/thermostat2/targetTemperature' }]);
      const desired = (await createRegistry(t.connection).getTwin('pnp-dt')).responseBody.properties.desired;
      assert.equal(desired.fanSpeed, undefined);
      assert.deepEqual(desired.thermostat1, { __t: 'c', targetTemperature: 19 });
      assert.deepEqual(desired.thermostat2, { __t: 'c' });
      for (const [operations, why] of [
        [[{ op: 'move', from: '/a', path: '/b' }], /not supported/],
        [[{ op: 'add', path: '/thermostat1/a/b', value: 1 }], /must be/],
        [[{ op: 'add', path: '/1bad', value: 1 }], /DTDL name/],
        [[{ op: 'add', path: '/list', value: [1, 2] }], /array/],
        [[], /non-empty array/],
      ] as const) {
        const bad = await refusal(digitalTwins.updateDigitalTwin('pnp-dt', operations as any));
        assert.equal(bad.status, 400, JSON.stringify(operations));
        assert.match(bad.message, why);
        assert.match(bad.message, /ArgumentInvalid/);
      }
    });

    test('commands: a component command is the method {component}*{command}, a root command the method itself, with the status in x-ms-command-statuscode', async () => {
      const report: any = await digitalTwins.invokeComponentCommand('pnp-dt', 'thermostat1', 'getMaxMinReport', '2020-01-01T00:00:00Z', {
        responseTimeoutInSeconds: 10,
      });
      assert.deepEqual(report._response.parsedBody, { maxTemp: 25.3, since: '2020-01-01T00:00:00Z' });
      assert.equal(report._response.headers.get('x-ms-command-statuscode'), '200');
      assert.ok(report._response.headers.get('x-ms-request-id'));
      const reboot: any = await digitalTwins.invokeCommand('pnp-dt', 'reboot', 5, {
        connectTimeoutInSeconds: 0,
        responseTimeoutInSeconds: 5,
      });
      assert.equal(reboot._response.headers.get('x-ms-command-statuscode'), '202');
      assert.deepEqual(reboot._response.parsedBody, { delay: 5 });
      const offline = await refusal(digitalTwins.invokeCommand('pnp-plain-offline-nobody', 'reboot', {}));
      assert.equal(offline.status, 404);
      const tooShort = await refusal(digitalTwins.invokeCommand('pnp-dt', 'reboot', {}, { responseTimeoutInSeconds: 1 }));
      assert.equal(tooShort.status, 400);
      assert.match(tooShort.message, /responseTimeoutInSeconds/);
    });

    test('a command to a device that is not connected is 404 DeviceNotOnline; with connectTimeoutInSeconds it waits for the device', async () => {
      const connection = await registerIdentity(t, 'pnp-late');
      const notOnline = await refusal(digitalTwins.invokeCommand('pnp-late', 'reboot', {}));
      assert.equal(notOnline.status, 404);
      assert.match(notOnline.message, /DeviceNotOnline/);
      const waiting = digitalTwins.invokeCommand(
        'pnp-late',
        'reboot',
        { now: true },
        { connectTimeoutInSeconds: 30, responseTimeoutInSeconds: 30 },
      );
      const late = await createDeviceClient(connection);
      clients.push(late);
      late.onDeviceMethod('reboot', (request, response) => response.send(200, request.payload, () => {}));
      await late.open();
      const answered: any = await waiting;
      assert.deepEqual(answered._response.parsedBody, { now: true });
      assert.equal(answered._response.headers.get('x-ms-command-statuscode'), '200');
    });
  });
});
