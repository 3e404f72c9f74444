import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRegistry } from '../../src/clients/service-clients.js';
import { startTestHub, type TestHub } from '../helpers/hub.js';

async function errorOf(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => assert.fail('the call should fail'),
    (err: Error) => err,
  );
}

describe('IoT Edge identities: deviceScope and parentScopes with azure-iothub Registry', () => {
  let t: TestHub;
  let registry: ReturnType<typeof createRegistry>;
  before(async () => {
    t = await startTestHub();
    registry = createRegistry(t.connection);
  });
  after(() => t.dispose());

  test('an Edge device gets its own scope; leaf and nested Edge children name it, and the twin and query show it', async () => {
    const edge = (await registry.create({ deviceId: 'edge-1', capabilities: { iotEdge: true } })).responseBody as any;
    assert.equal(edge.deviceScope, `ms-azure-iot-edge://edge-1-${edge.generationId}`);
    assert.deepEqual(edge.parentScopes, []);

    const leaf = (await registry.create({ deviceId: 'leaf-1', deviceScope: edge.deviceScope } as any)).responseBody as any;
    assert.equal(leaf.deviceScope, edge.deviceScope);
    assert.deepEqual(leaf.parentScopes, [edge.deviceScope], "a leaf's parentScopes follow its deviceScope");
    const byParents = (await registry.create({ deviceId: 'leaf-2', parentScopes: [edge.deviceScope] } as any)).responseBody as any;
    assert.equal(byParents.deviceScope, edge.deviceScope, 'and its deviceScope follows its parentScopes');

    const nested = (await registry.create({ deviceId: 'edge-2', capabilities: { iotEdge: true }, parentScopes: [edge.deviceScope] } as any))
      .responseBody as any;
    assert.equal(nested.deviceScope, `ms-azure-iot-edge://edge-2-${nested.generationId}`, 'a nested Edge device keeps its own scope');
    assert.deepEqual(nested.parentScopes, [edge.deviceScope]);

    const read = (await registry.get('leaf-1')).responseBody as any;
    assert.deepEqual([read.deviceScope, read.parentScopes], [edge.deviceScope, [edge.deviceScope]]);
    const twin = (await registry.getTwin('leaf-1')).responseBody as any;
    assert.equal(twin.deviceScope, edge.deviceScope);
    const children = await registry
      .createQuery(`SELECT deviceId FROM devices WHERE deviceScope = '${edge.deviceScope}' AND capabilities.iotEdge = false`)
      .nextAsTwin();
    assert.deepEqual(children.result.map((d: any) => d.deviceId).sort(), ['leaf-1', 'leaf-2']);

    const cleared = (await registry.update({ ...read, deviceScope: '', parentScopes: [] })).responseBody as any;
    assert.equal(cleared.deviceScope, undefined, "'' takes the leaf out of its parent");
    assert.deepEqual(cleared.parentScopes, []);
    const kept = (await registry.update({ deviceId: 'leaf-2', status: 'disabled' } as any)).responseBody as any;
    assert.equal(kept.deviceScope, edge.deviceScope, 'an update without scopes keeps them');
  });

  test('scopes are validated as IoT Hub does: 400 for an unknown or non-Edge scope, two parents, a changed Edge scope, a loop', async () => {
    const edgeA = (await registry.create({ deviceId: 'edge-a', capabilities: { iotEdge: true } })).responseBody as any;
    const edgeB = (await registry.create({ deviceId: 'edge-b', capabilities: { iotEdge: true }, parentScopes: [edgeA.deviceScope] } as any))
      .responseBody as any;
    await registry.create({ deviceId: 'plain' });
    const cases: Array<[string, object, RegExp]> = [
      ['unknown scope', { deviceId: 'bad-1', deviceScope: 'ms-azure-iot-edge://nobody-123' }, /not the scope of an IoT Edge device/],
      ['a stale generation', { deviceId: 'bad-2', deviceScope: 'ms-azure-iot-edge://edge-a-1' }, /not the scope of an IoT Edge device/],
      [
        'a non-Edge device',
        { deviceId: 'bad-3', parentScopes: [`ms-azure-iot-edge://plain-${(await registry.get('plain')).responseBody.generationId}`] },
        /not the scope of an IoT Edge device/,
      ],
      ['two parents', { deviceId: 'bad-4', parentScopes: [edgeA.deviceScope, edgeB.deviceScope] }, /at most one parent/],
      [
        'disagreeing scopes',
        { deviceId: 'bad-5', deviceScope: edgeA.deviceScope, parentScopes: [edgeB.deviceScope] },
        /must name the same parent/,
      ],
      [
        'an Edge device with another scope',
        { deviceId: 'bad-6', capabilities: { iotEdge: true }, deviceScope: edgeA.deviceScope },
        /is its own/,
      ],
      ['not a string', { deviceId: 'bad-7', deviceScope: 7 }, /deviceScope must be a string/],
    ];
    for (const [what, device, message] of cases) {
      const err = await errorOf(registry.create(device as any));
      assert.equal(err.constructor.name, 'ArgumentError', what);
      assert.match(err.message, message, what);
    }
    const loop = await errorOf(
      registry.update({ deviceId: 'edge-a', capabilities: { iotEdge: true }, parentScopes: [edgeB.deviceScope] } as any),
    );
    assert.match(loop.message, /cannot be its own parent or ancestor/);
    const names = (await registry.list()).responseBody.map((d) => d.deviceId);
    assert.ok(!names.some((n) => n.startsWith('bad-')), 'nothing refused was stored');
  });
});
