import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServiceClient } from '../../src/clients/service-clients.js';
import { rebootDevice, type RebootEvent } from '../../src/apps/reboot-device.js';
import { invokeReboot } from '../../src/apps/invoke-reboot.js';
import { startTestHub, type TestHub } from '../helpers/hub.js';
import { registerIdentity, until } from '../helpers/devices.js';

describe('device management apps against the local hub', () => {
  let t: TestHub;
  before(async () => (t = await startTestHub()));
  after(() => t.dispose());

  /** Starts rebootDevice and resolves once it listens for the method. */
  async function startDevice(deviceId: string, options: { rebootSeconds: number; count?: number; signal?: AbortSignal }) {
    const connection = await registerIdentity(t, deviceId);
    const events: RebootEvent[] = [];
    const running = rebootDevice(connection, { ...options, onEvent: (e) => events.push(e) });
    await Promise.race([until(() => events.some((e) => e.event === 'ready'), `${deviceId} is ready`), running]);
    return { running, events };
  }

  test('invokeReboot gets the answer and the rebootTime the device reported after the call', async () => {
    const { running, events } = await startDevice('dm-app', { rebootSeconds: 1, count: 1 });
    const before = Date.now();
    const result = await invokeReboot(t.connection, { deviceId: 'dm-app', waitSeconds: 30 });
    assert.equal(result.status, 200);
    assert.deepEqual(result.payload, { Response: 'Rebooting device' });
    assert.ok(result.rebootTime && Date.parse(result.rebootTime) >= before);
    assert.deepEqual(await running, { reboots: 1 });
    assert.deepEqual(
      events.find((e) => e.event === 'reported'),
      { event: 'reported', rebootTime: result.rebootTime },
    );
    assert.equal(t.hub.twins.deviceView({ deviceId: 'dm-app' }).reported.rebootTime, result.rebootTime, 'the twin holds it');
  });

  test('a method other than rebootDevice is answered 404 Unknown method', async () => {
    const stop = new AbortController();
    const { running } = await startDevice('dm-other', { rebootSeconds: 1, signal: stop.signal });
    const { result } = await createServiceClient(t.connection).invokeDeviceMethod('dm-other', {
      methodName: 'factoryReset',
      payload: null,
      responseTimeoutInSeconds: 10,
    });
    assert.deepEqual(result, { status: 404, payload: { Response: 'Unknown method' } });
    stop.abort();
    assert.deepEqual(await running, { reboots: 0 });
  });

  test('aborting during a reboot stops the device without reporting; invokeReboot then times out waiting', async () => {
    const stop = new AbortController();
    const { running, events } = await startDevice('dm-abort', { rebootSeconds: 60, signal: stop.signal });
    const watching = invokeReboot(t.connection, { deviceId: 'dm-abort', waitSeconds: 2 });
    await until(() => events.some((e) => e.event === 'rebooting'), 'the reboot started');
    stop.abort();
    assert.deepEqual(await running, { reboots: 0 });
    assert.ok(!events.some((e) => e.event === 'reported'));
    await assert.rejects(watching, (err: any) => err.exitCode === 5 && /no new rebootTime/.test(err.message));
  });

  test('invokeReboot to an offline device is exit code 6; to an unknown one 3', async () => {
    await registerIdentity(t, 'dm-off');
    await assert.rejects(invokeReboot(t.connection, { deviceId: 'dm-off' }), (err: any) => err.exitCode === 6);
    await assert.rejects(invokeReboot(t.connection, { deviceId: 'dm-none' }), (err: any) => err.exitCode === 3);
  });
});
