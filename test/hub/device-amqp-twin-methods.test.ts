import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import deviceSdk, { type DeviceMethodRequest, type DeviceMethodResponse, type Twin } from 'azure-iot-device';
import amqpSdk from 'azure-iot-device-amqp';
import { createRegistry, createServiceClient } from '../../src/clients/service-clients.js';
import { hubAgent } from '../../src/clients/hub-transport.js';
import type { DeviceConnection } from '../../src/clients/connection-string.js';
import { startTestHub, type TestHub } from '../helpers/hub.js';
import { registerIdentity, until } from '../helpers/devices.js';

// Direct methods and twins over AMQP and AMQP over WebSockets, with the unchanged device SDK
// (azure-iot-device-amqp's Amqp and AmqpWs, Client and ModuleClient) against the local hub: the
// tutorials' flows, IoT Hub's status, correlation and versions (what a device's token may attach:
// device-amqp.test.ts).

const { Amqp, AmqpWs } = amqpSdk;
type Transport = typeof Amqp | typeof AmqpWs;
type AnyClient = deviceSdk.Client | deviceSdk.ModuleClient;

/** The error a promise fails with (the test fails if it does not). */
async function failure(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail('expected a failure');
}

describe('direct methods and twins over AMQP (azure-iot-device-amqp)', () => {
  let t: TestHub;
  let registry: ReturnType<typeof createRegistry>;
  const clients: AnyClient[] = [];
  before(async () => {
    t = await startTestHub();
    registry = createRegistry(t.connection);
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await t.dispose();
  });

  /** An opened SDK client over Amqp (to the hub's port) or AmqpWs (through an agent to it). */
  async function openClient(Transport: Transport, connection: DeviceConnection): Promise<AnyClient> {
    const cs = Transport === Amqp ? `${connection.connectionString};GatewayHostName=localhost:${t.hub.port}` : connection.connectionString;
    const client = connection.moduleId
      ? deviceSdk.ModuleClient.fromConnectionString(cs, Transport)
      : deviceSdk.Client.fromConnectionString(cs, Transport);
    await client.setOptions(
      Transport === Amqp ? { ca: t.hub.tls.ca } : { ca: t.hub.tls.ca, amqp: { webSocketAgent: hubAgent(connection.transport) } },
    );
    clients.push(client);
    await client.open();
    return client;
  }

  /** A new identity's opened client. */
  const openIdentity = async (Transport: Transport, deviceId: string, moduleId?: string) =>
    openClient(Transport, await registerIdentity(t, deviceId, moduleId));

  /**
   * The client's twin, listening for desired patches: `patches` collects those after the SDK's first
   * callback (the subscription, a PUT on the twin links, is in place once it has come).
   */
  async function desiredPatches(client: AnyClient): Promise<{ twin: Twin; patches: any[] }> {
    const twin: Twin = await client.getTwin();
    const patches: any[] = [];
    twin.on('properties.desired', (patch: any) => patches.push(patch));
    await until(() => patches.length > 0, 'the first properties.desired callback');
    patches.length = 0;
    return { twin, patches };
  }

  test('the module twin tutorial: the service sets desired, the module gets the patch; the module reports, the service sees it', async () => {
    const module = await openIdentity(Amqp, 'amqp-twin', 'myFirstModule');
    const { twin, patches } = await desiredPatches(module);
    assert.deepEqual(twin.properties.desired, { $version: 1 });

    await registry.updateModuleTwin('amqp-twin', 'myFirstModule', { properties: { desired: { telemetryInterval: 122 } } }, '*');
    await until(() => patches.length > 0, 'the desired patch reaches the module');
    assert.deepEqual(patches[0], { telemetryInterval: 122, $version: 2 });
    assert.equal((twin.properties.desired as Record<string, unknown>).telemetryInterval, 122);

    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update({ telemetryInterval: 122 }, (err?: Error) => (err ? reject(err) : resolve())),
    );
    const seen = (await registry.getModuleTwin('amqp-twin', 'myFirstModule')).responseBody as any;
    assert.equal(seen.properties.reported.telemetryInterval, 122);
    assert.equal(seen.properties.reported.$version, 2, 'reported versions count as on MQTT');
    const again: Twin = await module.getTwin();
    assert.equal(again.properties.reported.telemetryInterval, 122, 'a GET returns what was reported');
  });

  test('a desired patch is pushed to its own identity only', async () => {
    const device = await openIdentity(Amqp, 'amqp-twin-other');
    const { patches } = await desiredPatches(device);
    // Another device's patch never reaches this one; this one's does.
    await registerIdentity(t, 'amqp-twin-bystander');
    await registry.updateTwin('amqp-twin-bystander', { properties: { desired: { x: 1 } } }, '*');
    await registry.updateTwin('amqp-twin-other', { properties: { desired: { y: 2 } } }, '*');
    await until(() => patches.length > 0, 'its own patch');
    assert.deepEqual(patches, [{ y: 2, $version: 2 }]);
  });

  test('DELETE of the desired-notification subscription stops the pushes; a PUT starts them again', async () => {
    const device = await openIdentity(AmqpWs, 'amqp-twin-unsubscribe');
    const { patches } = await desiredPatches(device);
    // The transport's own calls: the client sends the PUT when a listener is added, and no DELETE of its own.
    const transport = (device as unknown as { _transport: InstanceType<typeof AmqpWs> })._transport;
    const call = (method: 'enableTwinDesiredPropertiesUpdates' | 'disableTwinDesiredPropertiesUpdates') =>
      new Promise<void>((resolve, reject) => transport[method]((err?: Error) => (err ? reject(err) : resolve())));
    await call('disableTwinDesiredPropertiesUpdates');
    await registry.updateTwin('amqp-twin-unsubscribe', { properties: { desired: { unseen: true } } }, '*');
    await call('enableTwinDesiredPropertiesUpdates');
    await registry.updateTwin('amqp-twin-unsubscribe', { properties: { desired: { seen: true } } }, '*');
    await until(() => patches.length > 0, 'the patch after the PUT');
    // A push of the first patch would have come before the answer to the PUT, on the same link.
    assert.deepEqual(patches, [{ seen: true, $version: 3 }]);
  });

  for (const [name, Transport] of [
    ['AMQP', Amqp],
    ['AMQP over WebSockets', AmqpWs],
  ] as const) {
    test(`the reboot method over ${name}: the call waits for the device to listen, the answer is correlated, rebootTime is reported`, async () => {
      const deviceId = `amqp-reboot-${Transport === Amqp ? 'tls' : 'ws'}`;
      const connection = await registerIdentity(t, deviceId);
      const service = createServiceClient(t.connection);
      // Invoked before the device listens: connectTimeoutInSeconds holds it until the method links attach.
      const calling = service.invokeDeviceMethod(deviceId, {
        methodName: 'rebootDevice',
        payload: { delay: 0 },
        responseTimeoutInSeconds: 30,
        connectTimeoutInSeconds: 60,
      });
      const requests: DeviceMethodRequest[] = [];
      const client = (await openClient(Transport, connection)) as deviceSdk.Client;
      client.onDeviceMethod('rebootDevice', (request: DeviceMethodRequest, response: DeviceMethodResponse) => {
        requests.push(request);
        response.send(200, { Response: 'Rebooting device' }, async () => {
          const twin = await client.getTwin();
          twin.properties.reported.update({ rebootTime: '2026-12-02T04:00:00.000Z' }, () => {});
        });
      });
      const { result } = await calling;
      assert.deepEqual(result, { status: 200, payload: { Response: 'Rebooting device' } });
      assert.equal(requests.length, 1);
      assert.deepEqual(requests[0]!.payload, { delay: 0 });
      assert.match(
        requests[0]!.requestId,
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$/,
        'the correlation id is a uuid, as IoT Hub sends',
      );
      await until(() => t.hub.twins.deviceView({ deviceId }).reported.rebootTime !== undefined, 'rebootTime is reported');
      assert.equal(t.hub.twins.deviceView({ deviceId }).reported.rebootTime, '2026-12-02T04:00:00.000Z');
    });
  }

  test("a device's error status and a module's method over AMQP are passed through", async () => {
    const module = (await openIdentity(AmqpWs, 'amqp-module-method', 'm1')) as deviceSdk.ModuleClient;
    module.onMethod('fail', (_req, res) => res!.send(500, { why: 'broken' }));
    const { result } = await createServiceClient(t.connection).invokeDeviceMethod('amqp-module-method', 'm1', {
      methodName: 'fail',
      payload: null,
      responseTimeoutInSeconds: 10,
      connectTimeoutInSeconds: 30,
    });
    assert.deepEqual(result, { status: 500, payload: { why: 'broken' } });
  });

  test('no answer within responseTimeout, or one over 128 KB (rejected to the device): 504101 GatewayTimeout; the late answer is dropped and the next call works', async () => {
    const device = (await openIdentity(Amqp, 'amqp-slow')) as deviceSdk.Client;
    let respond: (() => void) | undefined;
    device.onDeviceMethod(
      'slow',
      (_req: DeviceMethodRequest, res: DeviceMethodResponse) => (respond = () => res.send(200, 'too late', () => {})),
    );
    const bigAnswer = new Promise<Error | undefined>((resolve) =>
      device.onDeviceMethod('big', (_req: DeviceMethodRequest, res: DeviceMethodResponse) =>
        res.send(200, 'x'.repeat(129 * 1024), (err?: Error) => resolve(err)),
      ),
    );
    device.onDeviceMethod('fast', (_req: DeviceMethodRequest, res: DeviceMethodResponse) => res.send(200, 'ok', () => {}));
    const service = createServiceClient(t.connection);
    const call = (methodName: string) =>
      failure(
        service.invokeDeviceMethod('amqp-slow', { methodName, payload: null, responseTimeoutInSeconds: 5, connectTimeoutInSeconds: 30 }),
      );
    for (const err of await Promise.all([call('slow'), call('big')])) {
      assert.equal(err.constructor.name, 'GatewayTimeoutError');
      assert.equal(JSON.parse(err.responseBody).errorCode, 504101);
    }
    // The SDK hands over the rejection's AMQP error as rhea decoded it: a described list (condition, description).
    const refused = (await bigAnswer) as unknown as { value: Array<{ value: string }> };
    assert.deepEqual(
      refused.value.map((field) => field.value),
      ['amqp:invalid-field', 'ErrorCode:ArgumentInvalid;response payload is 132098 bytes; IoT Hub allows at most 131072 bytes (128 KB)'],
    );
    assert.equal(t.hub.methods.inFlight(), 0);
    assert.ok(respond, 'the device got the call');
    respond!();
    const { result } = await service.invokeDeviceMethod('amqp-slow', { methodName: 'fast', payload: null, responseTimeoutInSeconds: 10 });
    assert.deepEqual(result, { status: 200, payload: 'ok' });
  });

  test('a bad reported patch is answered with 400 (FormatError); the twin is unchanged and the links stay usable', async () => {
    const device = await openIdentity(AmqpWs, 'amqp-bad-report');
    const twin: Twin = await device.getTwin();
    const before = t.hub.twins.get({ deviceId: 'amqp-bad-report' }).version;
    const big = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, 'x'.repeat(4000)]));
    const err = await failure(
      new Promise<void>((resolve, reject) => twin.properties.reported.update(big, (e?: Error) => (e ? reject(e) : resolve()))),
    );
    // The SDK names its operation and adds the hub's message; the status is in the error it wraps.
    assert.match(err.message, /^could not update twin reported properties\. properties\.reported would be \d+ bytes/);
    assert.equal(err.amqpError?.constructor?.name, 'FormatError');
    assert.equal(err.amqpError.amqpError.message_annotations.status, 400);
    assert.equal(t.hub.twins.get({ deviceId: 'amqp-bad-report' }).version, before, 'the twin is unchanged');
    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update({ small: true }, (e?: Error) => (e ? reject(e) : resolve())),
    );
    assert.equal(t.hub.twins.deviceView({ deviceId: 'amqp-bad-report' }).reported.small, true);
  });
});
