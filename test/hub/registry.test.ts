import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRegistry } from '../../src/clients/service-clients.js';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import type mqtt from 'mqtt';
import { onDisk, restCall, startTestHub, tempDir, type TestHub } from '../helpers/hub.js';
import { until } from '../helpers/devices.js';
import { deviceToken, rawConnect } from '../helpers/mqtt.js';

/** The SDK's error class name: what the toolkit maps to messages and exit codes. */
async function errorName(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as Error).constructor.name;
  }
  return 'no error';
}

describe('identity registry over HTTPS with azure-iothub', () => {
  let t: TestHub;
  before(async () => (t = await startTestHub()));
  after(() => t.dispose());

  test('device CRUD: create generates keys, get, list, update status with If-Match, delete', async () => {
    const registry = createRegistry(t.connection);
    const created = (await registry.create({ deviceId: 'crud-1' })).responseBody;
    assert.equal(created.deviceId, 'crud-1');
    assert.equal(created.status, 'enabled');
    assert.equal(Buffer.from(created.authentication!.symmetricKey!.primaryKey, 'base64').length, 32);
    assert.notEqual(created.authentication!.symmetricKey!.primaryKey, created.authentication!.symmetricKey!.secondaryKey);
    assert.equal(created.connectionState, 'Disconnected');
    assert.match(created.generationId!, /^\d{18}$/);

    const got = (await registry.get('crud-1')).responseBody;
    assert.deepEqual(got.authentication, created.authentication);
    assert.ok((await registry.list()).responseBody.some((d) => d.deviceId === 'crud-1'));

    const updated = (await registry.update({ deviceId: 'crud-1', status: 'disabled' })).responseBody;
    assert.equal(updated.status, 'disabled');
    assert.notEqual(updated.etag, created.etag);

    await registry.delete('crud-1');
    assert.equal(await errorName(registry.get('crud-1')), 'DeviceNotFoundError');
  });

  test('given keys are kept', async () => {
    const registry = createRegistry(t.connection);
    const primaryKey = Buffer.alloc(32, 1).toString('base64');
    const secondaryKey = Buffer.alloc(32, 2).toString('base64');
    const d = (await registry.create({ deviceId: 'keys-1', authentication: { symmetricKey: { primaryKey, secondaryKey } } } as any))
      .responseBody;
    assert.equal(d.authentication!.symmetricKey!.primaryKey, primaryKey);
    assert.equal(d.authentication!.symmetricKey!.secondaryKey, secondaryKey);
  });

  test('module CRUD, and deleting a device deletes its modules', async () => {
    const registry = createRegistry(t.connection);
    await registry.create({ deviceId: 'mod-host' });
    const m = (await registry.addModule({ deviceId: 'mod-host', moduleId: 'm1' })).responseBody as any;
    assert.equal(m.moduleId, 'm1');
    assert.ok(m.authentication.symmetricKey.primaryKey);
    await registry.addModule({ deviceId: 'mod-host', moduleId: 'm2' });
    const list = (await registry.getModulesOnDevice('mod-host')).responseBody;
    assert.deepEqual(list.map((x) => x.moduleId).sort(), ['m1', 'm2']);
    assert.deepEqual(((await registry.getModule('mod-host', 'm1')).responseBody as any).authentication, m.authentication);
    await registry.removeModule('mod-host', 'm1');
    assert.equal((await registry.getModulesOnDevice('mod-host')).responseBody.length, 1);
    await registry.delete('mod-host');
    await registry.create({ deviceId: 'mod-host' });
    assert.equal((await registry.getModulesOnDevice('mod-host')).responseBody.length, 0);
  });

  test("IoT Hub's errors: 409 duplicate device and module, 404 unknown device and module, 400 bad ids", async () => {
    const registry = createRegistry(t.connection);
    await registry.create({ deviceId: 'dup-1' });
    assert.equal(await errorName(registry.create({ deviceId: 'dup-1' })), 'DeviceAlreadyExistsError');
    await registry.addModule({ deviceId: 'dup-1', moduleId: 'm' });
    assert.equal(await errorName(registry.addModule({ deviceId: 'dup-1', moduleId: 'm' })), 'DeviceAlreadyExistsError');
    assert.equal(await errorName(registry.get('nobody')), 'DeviceNotFoundError');
    assert.equal(await errorName(registry.addModule({ deviceId: 'nobody', moduleId: 'm' })), 'DeviceNotFoundError');
    const owner = t.hub.serviceConnectionString().match(/SharedAccessKey=([^;]+)/)![1];
    const token = createSasToken('localhost', owner, 'iothubowner', 60);
    const missingModule = await restCall(t, 'GET', '/devices/dup-1/modules/nope?api-version=2021-04-12', token);
    assert.equal(missingModule.status, 404);
    assert.equal(missingModule.body.errorCode, 404010);
    assert.match(missingModule.body.Message, /^ErrorCode:ModuleNotFound;/);
    assert.equal(await errorName(registry.create({ deviceId: 'x'.repeat(129) })), 'ArgumentError');
    assert.equal(await errorName(registry.create({ deviceId: 'has space' })), 'ArgumentError');
    assert.equal(await errorName(registry.create({ deviceId: 'slash#hash' })), 'ArgumentError');
    const invalidJson = await restCall(t, 'PUT', '/devices/json-1?api-version=2021-04-12', token);
    assert.equal(invalidJson.status, 400);
  });

  test('412 on a stale etag, If-Match * always matches', async () => {
    const owner = t.hub.serviceConnectionString().match(/SharedAccessKey=([^;]+)/)![1];
    const token = createSasToken('localhost', owner, 'iothubowner', 60);
    const first = await restCall(t, 'PUT', '/devices/etag-1?api-version=2021-04-12', token, JSON.stringify({ deviceId: 'etag-1' }));
    assert.equal(first.status, 200);
    const { request } = await import('node:https');
    const put = (ifMatch: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: t.hub.port,
            method: 'PUT',
            path: '/devices/etag-1',
            ca: t.hub.tls.ca,
            servername: 'localhost',
            headers: { Authorization: token, 'If-Match': ifMatch, 'Content-Type': 'application/json' },
          },
          (res) => res.resume().on('end', () => resolve(res.statusCode!)),
        );
        req.on('error', reject);
        req.end(JSON.stringify({ deviceId: 'etag-1', status: 'enabled' }));
      });
    assert.equal(await put('"stale"'), 412);
    assert.equal(await put(`"${first.body.etag}"`), 200);
    assert.equal(await put(`"${first.body.etag}"`), 412, 'the etag changed with the update');
    assert.equal(await put('"*"'), 200);
  });
});

describe('shared access policies', () => {
  let t: TestHub;
  before(async () => (t = await startTestHub()));
  after(() => t.dispose());

  // policy -> [can create, can read, can delete]
  const matrix: Record<string, [boolean, boolean, boolean]> = {
    iothubowner: [true, true, true],
    registryReadWrite: [true, true, true],
    registryRead: [false, true, false],
    service: [false, false, false],
    device: [false, false, false],
  };

  for (const [policy, [canCreate, canRead, canDelete]] of Object.entries(matrix)) {
    test(`${policy}: create ${canCreate}, read ${canRead}, delete ${canDelete}`, async () => {
      const owner = createRegistry(t.connection);
      const registry = createRegistry(t.connectionFor(policy));
      const id = `policy-${policy}`;
      const denied = 'TooManyDevicesError'; // azure-iothub's name for a 403
      assert.equal(await errorName(registry.create({ deviceId: id })), canCreate ? 'no error' : denied);
      if (!canCreate) await owner.create({ deviceId: id });
      assert.equal(await errorName(registry.get(id)), canRead ? 'no error' : denied);
      assert.equal(await errorName(registry.delete(id)), canDelete ? 'no error' : denied);
      assert.equal(await errorName(owner.get(id)), canDelete ? 'DeviceNotFoundError' : 'no error');
    });
  }

  test('an expired token, a wrong key, another audience and no token are 401', async () => {
    const key = t.hub.serviceConnectionString().match(/SharedAccessKey=([^;]+)/)![1];
    assert.equal((await restCall(t, 'GET', '/devices', createSasToken('localhost', key, 'iothubowner', -10))).status, 401);
    const wrongKey = Buffer.alloc(32, 7).toString('base64');
    assert.equal((await restCall(t, 'GET', '/devices', createSasToken('localhost', wrongKey, 'iothubowner', 60))).status, 401);
    assert.equal((await restCall(t, 'GET', '/devices', createSasToken('otherhub.azure-devices.net', key, 'iothubowner', 60))).status, 401);
    assert.equal((await restCall(t, 'GET', '/devices', createSasToken('localhost', key, 'nopolicy', 60))).status, 401);
    assert.equal((await restCall(t, 'GET', '/devices', '')).status, 401);
    const wrong = createRegistry({ ...t.connection, key: wrongKey });
    assert.equal(await errorName(wrong.list()), 'UnauthorizedError');
  });
});

test('a restart with the same data dir keeps every identity, key and policy', onDisk(), async () => {
  const dataDir = tempDir();
  const first = await startTestHub({ dataDir });
  const registry = createRegistry(first.connection);
  const devices = [];
  for (let i = 0; i < 20; i++) devices.push((await registry.create({ deviceId: `keep-${i}` })).responseBody);
  const module = (await registry.addModule({ deviceId: 'keep-0', moduleId: 'mod' })).responseBody as any;
  const ownerString = first.hub.serviceConnectionString();
  const ca = first.hub.tls.ca;
  await first.stop();

  const second = await startTestHub({ dataDir });
  try {
    assert.equal(second.hub.serviceConnectionString(), ownerString, 'policy keys survive');
    assert.equal(second.hub.tls.ca, ca, 'the CA survives, so clients keep trusting the hub');
    const again = createRegistry(second.connection);
    for (const d of devices) {
      const got = (await again.get(d.deviceId)).responseBody;
      assert.deepEqual(got.authentication, d.authentication);
      assert.equal(got.etag, d.etag);
    }
    assert.deepEqual(((await again.getModule('keep-0', 'mod')).responseBody as any).authentication, module.authentication);
  } finally {
    await second.dispose();
  }
});

test(
  'connection states are written before the hub stops: a device connected at the stop is Disconnected after a restart',
  onDisk(),
  async () => {
    const dataDir = tempDir();
    const first = await startTestHub({ dataDir });
    const key = (await createRegistry(first.connection).create({ deviceId: 'at-stop' })).responseBody.authentication!.symmetricKey!
      .primaryKey!;
    const client = await rawConnect(first.hub, { deviceId: 'at-stop' }, deviceToken({ deviceId: 'at-stop' }, key));
    assert.notEqual(typeof client, 'number', 'connected');
    await until(() => first.hub.registry.find('at-stop')?.connectionState === 'Connected', 'the connect is written');
    await first.stop();
    (client as mqtt.MqttClient).end(true);

    const second = await startTestHub({ dataDir });
    try {
      const record = second.hub.registry.get('at-stop');
      assert.equal(record.connectionState, 'Disconnected');
      assert.ok(record.connectionStateUpdatedTime >= record.createdTime);
    } finally {
      await second.dispose();
    }
  },
);
