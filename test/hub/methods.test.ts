import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServiceClient } from '../../src/clients/service-clients.js';
import type { DeviceClient } from '../../src/clients/device-clients.js';
import type { ModuleClient } from 'azure-iot-device';
import { startTestHub, type TestHub } from '../helpers/hub.js';
import { openDevice, registerIdentity, until } from '../helpers/devices.js';

const METHODS = '$iothub/methods/POST/';

/** The error an invocation fails with: the SDK's class name and the hub's errorCode from the body. */
async function failure(promise: Promise<unknown>): Promise<{ name: string; status?: number; errorCode?: number }> {
  try {
    await promise;
  } catch (err) {
    const e = err as { constructor: { name: string }; response?: { statusCode: number }; responseBody?: string };
    return {
      name: e.constructor.name,
      status: e.response?.statusCode,
      errorCode: e.responseBody ? JSON.parse(e.responseBody).errorCode : undefined,
    };
  }
  throw new Error('the invocation succeeded');
}

describe('direct methods with azure-iothub and azure-iot-device over MQTT', () => {
  let t: TestHub;
  const devices: DeviceClient[] = [];
  before(async () => (t = await startTestHub()));
  after(async () => {
    await Promise.all(devices.map((d) => d.close()));
    await t.dispose();
  });

  async function listeningDevice(deviceId: string, moduleId?: string): Promise<DeviceClient> {
    const client = await openDevice(await registerIdentity(t, deviceId, moduleId));
    devices.push(client);
    return client;
  }
  const listening = (deviceId: string, moduleId?: string) =>
    until(() => t.hub.mqtt.isSubscribed({ deviceId, moduleId }, METHODS), `${deviceId} listens for methods`);

  test("a device method round trip: name, payload and the device's status and payload", async () => {
    const device = await listeningDevice('m-dev');
    const seen: unknown[] = [];
    device.onDeviceMethod('rebootDevice', (req, res) => {
      seen.push({ name: req.methodName, payload: req.payload });
      res.send(200, { Response: 'Rebooting device', echo: req.payload });
    });
    await listening('m-dev');
    const service = createServiceClient(t.connection);
    const { result } = await service.invokeDeviceMethod('m-dev', {
      methodName: 'rebootDevice',
      payload: { method_number: '42' },
      responseTimeoutInSeconds: 30,
    });
    assert.deepEqual(result, { status: 200, payload: { Response: 'Rebooting device', echo: { method_number: '42' } } });
    assert.deepEqual(seen, [{ name: 'rebootDevice', payload: { method_number: '42' } }]);
  });

  test("a device's error status is passed through as the result", async () => {
    const device = await listeningDevice('m-404');
    device.onDeviceMethod('other', (_req, res) => res.send(404, 'Unknown method'));
    await listening('m-404');
    const { result } = await createServiceClient(t.connection).invokeDeviceMethod('m-404', { methodName: 'other', payload: null });
    assert.deepEqual(result, { status: 404, payload: 'Unknown method' });
  });

  test('a module method round trip', async () => {
    const module = await listeningDevice('m-host', 'm-mod');
    (module as unknown as ModuleClient).onMethod('getState', (req, res) => res!.send(201, { module: true, got: req!.payload }));
    await listening('m-host', 'm-mod');
    const { result } = await createServiceClient(t.connection).invokeDeviceMethod('m-host', 'm-mod', {
      methodName: 'getState',
      payload: 7,
    });
    assert.deepEqual(result, { status: 201, payload: { module: true, got: 7 } });
  });

  test('a registered device that is not connected: 404103 DeviceNotOnline at once with connectTimeout 0', async () => {
    await registerIdentity(t, 'm-offline');
    const started = Date.now();
    const f = await failure(
      createServiceClient(t.connection).invokeDeviceMethod('m-offline', { methodName: 'rebootDevice', payload: null }),
    );
    assert.deepEqual(f, { name: 'Error', status: 404, errorCode: 404103 });
    assert.ok(Date.now() - started < 4000, 'it does not wait for the response timeout');
  });

  test('a connected device that does not listen for methods is not online for them', async () => {
    await listeningDevice('m-deaf');
    await until(() => t.hub.mqtt.session({ deviceId: 'm-deaf' }) !== undefined, 'm-deaf is connected');
    const f = await failure(createServiceClient(t.connection).invokeDeviceMethod('m-deaf', { methodName: 'x', payload: null }));
    assert.equal(f.errorCode, 404103);
  });

  test('an unknown device is DeviceNotFound; an unknown module 404 ModuleNotFound', async () => {
    const service = createServiceClient(t.connection);
    assert.deepEqual(await failure(service.invokeDeviceMethod('m-nobody', { methodName: 'x', payload: null })), {
      name: 'DeviceNotFoundError',
      status: 404,
      errorCode: 404001,
    });
    await registerIdentity(t, 'm-nomod');
    assert.equal((await failure(service.invokeDeviceMethod('m-nomod', 'ghost', { methodName: 'x', payload: null }))).errorCode, 404010);
  });

  test('connectTimeout: a call waits for the device to connect and subscribe', async () => {
    const connection = await registerIdentity(t, 'm-late');
    const call = createServiceClient(t.connection).invokeDeviceMethod('m-late', {
      methodName: 'hello',
      payload: 'hi',
      connectTimeoutInSeconds: 60,
    });
    await new Promise((r) => setTimeout(r, 300));
    const device = await openDevice(connection);
    devices.push(device);
    device.onDeviceMethod('hello', (req, res) => res.send(200, `${req.payload} back`));
    const { result } = await call;
    assert.deepEqual(result, { status: 200, payload: 'hi back' });
  });

  test('no answer within responseTimeout: 504101 GatewayTimeout; the late answer is dropped', async () => {
    const device = await listeningDevice('m-slow');
    let respond: (() => Promise<unknown>) | undefined;
    device.onDeviceMethod('slow', (_req, res) => (respond = () => res.send(200, 'too late')));
    await listening('m-slow');
    const service = createServiceClient(t.connection);
    const f = await failure(service.invokeDeviceMethod('m-slow', { methodName: 'slow', payload: null, responseTimeoutInSeconds: 5 }));
    assert.deepEqual(f, { name: 'GatewayTimeoutError', status: 504, errorCode: 504101 });
    assert.equal(t.hub.methods.inFlight(), 0);
    assert.ok(respond, 'the device got the call');
    await respond!();
    // The device stays connected and the next call works.
    device.onDeviceMethod('fast', (_req, res) => res.send(200, 'ok'));
    await until(() => t.hub.mqtt.isSubscribed({ deviceId: 'm-slow' }, METHODS), 'm-slow still listens');
    const { result } = await service.invokeDeviceMethod('m-slow', { methodName: 'fast', payload: null });
    assert.deepEqual(result, { status: 200, payload: 'ok' });
  });

  test("20 concurrent calls on 20 devices: each caller gets its own device's answer", async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `m-many-${i}`);
    const clients = await Promise.all(ids.map((id) => listeningDevice(id)));
    clients.forEach((client, i) =>
      client.onDeviceMethod('whoami', (req, res) => {
        // Answer in a shuffled order so that pairing by arrival would fail.
        setTimeout(() => res.send(200, { id: ids[i], asked: req.payload }), (i * 37) % 200);
      }),
    );
    await Promise.all(ids.map((id) => listening(id)));
    const service = createServiceClient(t.connection);
    const results = await Promise.all(ids.map((id, i) => service.invokeDeviceMethod(id, { methodName: 'whoami', payload: i })));
    results.forEach(({ result }, i) => assert.deepEqual(result, { status: 200, payload: { id: ids[i], asked: i } }));
  });

  test('out-of-range timeouts and a bad method name are 400', async () => {
    await listeningDevice('m-args');
    await until(() => t.hub.mqtt.session({ deviceId: 'm-args' }) !== undefined, 'm-args is connected');
    const service = createServiceClient(t.connection);
    const bad = [
      { methodName: 'x', responseTimeoutInSeconds: 4 },
      { methodName: 'x', responseTimeoutInSeconds: 301 },
      { methodName: 'x', connectTimeoutInSeconds: 301 },
      { methodName: 'x', connectTimeoutInSeconds: -1 },
      { methodName: 'a/b' },
    ];
    for (const params of bad) {
      const f = await failure(service.invokeDeviceMethod('m-args', { payload: null, ...params }));
      assert.deepEqual(f, { name: 'ArgumentError', status: 400, errorCode: 400004 }, JSON.stringify(params));
    }
  });
});
