import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRegistry } from '../../src/clients/service-clients.js';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import { restCall, startTestHub, type TestHub } from '../helpers/hub.js';

/** The body of the BulkRegistryOperationResult an SDK call answered or failed with. */
async function bulkResult(call: Promise<{ responseBody: unknown }>): Promise<{ failed: boolean; result: any }> {
  try {
    return { failed: false, result: (await call).responseBody };
  } catch (err) {
    const body = (err as { responseBody?: string }).responseBody;
    assert.ok(body, `the call failed without a response body: ${(err as Error).message}`);
    return { failed: true, result: JSON.parse(body) };
  }
}

describe("bulk registry operations (POST /devices) with azure-iothub's addDevices / updateDevices / removeDevices", () => {
  let t: TestHub;
  let registry: ReturnType<typeof createRegistry>;
  let token: string;
  before(async () => {
    t = await startTestHub();
    registry = createRegistry(t.connection);
    token = createSasToken('localhost', t.hub.serviceConnectionString().match(/SharedAccessKey=([^;]+)/)![1], 'iothubowner', 600);
  });
  after(() => t.dispose());

  test('100 devices in one call: all created with generated keys and twins', async () => {
    const devices = Array.from({ length: 100 }, (_, i) => ({ deviceId: `bulk-${i}` }));
    const { failed, result } = await bulkResult(registry.addDevices(devices));
    assert.equal(failed, false);
    assert.deepEqual(result, { isSuccessful: true, errors: [], warnings: [] });
    const listed = (await registry.list()).responseBody.filter((d) => d.deviceId.startsWith('bulk-'));
    assert.equal(listed.length, 100);
    assert.equal(Buffer.from(listed[0].authentication!.symmetricKey!.primaryKey, 'base64').length, 32);
    assert.equal((await registry.getTwin('bulk-42')).responseBody.deviceId, 'bulk-42');
  });

  test('101 identities, none, or one named twice: the whole call is a 400 and nothing is written', async () => {
    const items = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}`, importMode: 'create' }));
    const tooMany = await restCall(t, 'POST', '/devices?api-version=2021-04-12', token, JSON.stringify(items(101, 'over')));
    assert.equal(tooMany.status, 400);
    assert.match(tooMany.body.Message, /^ErrorCode:ArgumentInvalid;.*1 to 100 identities, not 101/);
    assert.equal((await restCall(t, 'POST', '/devices?api-version=2021-04-12', token, '[]')).status, 400);
    const twice = await restCall(
      t,
      'POST',
      '/devices?api-version=2021-04-12',
      token,
      JSON.stringify([...items(2, 'dup'), { id: 'dup-0', importMode: 'delete' }]),
    );
    assert.equal(twice.status, 400);
    assert.match(twice.body.Message, /'dup-0' is named more than once/);
    const badMode = await restCall(
      t,
      'POST',
      '/devices?api-version=2021-04-12',
      token,
      JSON.stringify([{ id: 'mode-1', importMode: 'upsert' }]),
    );
    assert.equal(badMode.status, 400);
    const names = (await registry.list()).responseBody.map((d) => d.deviceId);
    assert.ok(!names.some((n) => /^(over|dup|mode)-/.test(n)), 'a refused call writes nothing');
  });

  test('mixed success: the failing items are listed with their errors, the others are applied', async () => {
    await registry.create({ deviceId: 'mixed-exists' });
    const { failed, result } = await bulkResult(
      registry.addDevices([
        { deviceId: 'mixed-new' },
        { deviceId: 'mixed-exists' },
        { deviceId: 'mixed-badkey', authentication: { symmetricKey: { primaryKey: 'c2hvcnQ=', secondaryKey: '' } } } as any,
      ]),
    );
    assert.equal(failed, true, 'IoT Hub answers 400 when an item failed');
    assert.equal(result.isSuccessful, false);
    assert.deepEqual(
      result.errors.map((e: any) => [e.deviceId, e.errorCode, e.operation]),
      [
        ['mixed-exists', 'DeviceAlreadyExists', 'create'],
        ['mixed-badkey', 'ArgumentInvalid', 'create'],
      ],
    );
    assert.match(result.errors[1].errorStatus, /between 16 and 64 bytes/);
    assert.equal((await registry.get('mixed-new')).responseBody.deviceId, 'mixed-new');
    await assert.rejects(registry.get('mixed-badkey'));
  });

  test('updateDevices: forced, or only when the eTag matches; removeDevices likewise; unknown ids are per-item errors', async () => {
    await registry.addDevices([{ deviceId: 'upd-1' }, { deviceId: 'upd-2' }]);
    const current = (await registry.get('upd-1')).responseBody;
    const stale = await bulkResult(
      registry.updateDevices(
        [
          { deviceId: 'upd-1', status: 'disabled', etag: 'c3RhbGU=' },
          { deviceId: 'upd-2', status: 'disabled', etag: (await registry.get('upd-2')).responseBody.etag },
        ] as any,
        false,
      ),
    );
    assert.deepEqual(
      stale.result.errors.map((e: any) => [e.deviceId, e.errorCode, e.operation]),
      [['upd-1', 'PreconditionFailed', 'updateIfMatchETag']],
    );
    assert.equal((await registry.get('upd-1')).responseBody.status, 'enabled');
    assert.equal((await registry.get('upd-2')).responseBody.status, 'disabled');
    const forced = await bulkResult(
      registry.updateDevices(
        [
          { deviceId: 'upd-1', status: 'disabled' },
          { deviceId: 'upd-nobody', status: 'disabled' },
        ] as any,
        true,
      ),
    );
    assert.deepEqual(
      forced.result.errors.map((e: any) => [e.deviceId, e.errorCode, e.operation]),
      [['upd-nobody', 'DeviceNotFound', 'update']],
    );
    const updated = (await registry.get('upd-1')).responseBody;
    assert.equal(updated.status, 'disabled');
    assert.equal(
      updated.authentication!.symmetricKey!.primaryKey,
      current.authentication!.symmetricKey!.primaryKey,
      'keys left empty are kept',
    );
    const removeStale = await bulkResult(registry.removeDevices([{ deviceId: 'upd-1', etag: current.etag }] as any, false));
    assert.deepEqual(
      removeStale.result.errors.map((e: any) => e.errorCode),
      ['PreconditionFailed'],
    );
    const removed = await bulkResult(registry.removeDevices([{ deviceId: 'upd-1' }, { deviceId: 'upd-2' }] as any, true));
    assert.equal(removed.result.isSuccessful, true);
    await assert.rejects(registry.get('upd-1'));
    await assert.rejects(registry.getTwin('upd-2'));
  });

  test('modules in bulk: an item with a moduleId creates and deletes that module; an unknown device is its error', async () => {
    await registry.create({ deviceId: 'mod-host' });
    const post = (items: object[]) => restCall(t, 'POST', '/devices?api-version=2021-04-12', token, JSON.stringify(items));
    const created = await post([
      { id: 'mod-host', moduleId: 'm1', importMode: 'create' },
      { id: 'mod-nobody', moduleId: 'm1', importMode: 'create' },
    ]);
    assert.equal(created.status, 400);
    assert.deepEqual(
      created.body.errors.map((e: any) => [e.deviceId, e.moduleId, e.errorCode]),
      [['mod-nobody', 'm1', 'DeviceNotFound']],
    );
    assert.equal((await registry.getModule('mod-host', 'm1')).responseBody.moduleId, 'm1');
    const removed = await post([{ id: 'mod-host', moduleId: 'm1', importMode: 'delete' }]);
    assert.deepEqual([removed.status, removed.body], [200, { isSuccessful: true, errors: [], warnings: [] }]);
    await assert.rejects(registry.getModule('mod-host', 'm1'));
    assert.equal((await registry.get('mod-host')).responseBody.deviceId, 'mod-host', 'deleting a module leaves its device');
  });

  test('registryRead cannot write in bulk (403)', async () => {
    const read = createSasToken(
      'localhost',
      t.hub.serviceConnectionString('registryRead').match(/SharedAccessKey=([^;]+)/)![1],
      'registryRead',
      600,
    );
    const answer = await restCall(
      t,
      'POST',
      '/devices?api-version=2021-04-12',
      read,
      JSON.stringify([{ id: 'ro-1', importMode: 'create' }]),
    );
    assert.equal(answer.status, 403);
  });
});
