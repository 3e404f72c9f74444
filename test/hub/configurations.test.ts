import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRegistry } from '../../src/clients/service-clients.js';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import { onDisk, restCall, startTestHub, tempDir, type TestHub } from '../helpers/hub.js';
import { openDevice, registerIdentity, until } from '../helpers/devices.js';

/** The SDK's error class name and the hub's error code, from a failed call. */
async function failure(promise: Promise<unknown>): Promise<{ name: string; status?: number; code?: string }> {
  try {
    await promise;
  } catch (err: any) {
    const body = err.responseBody ? JSON.parse(err.responseBody) : {};
    return { name: err.constructor.name, status: err.response?.statusCode, code: /ErrorCode:(\w+)/.exec(body.Message ?? '')?.[1] };
  }
  assert.fail('expected the call to fail');
}

const tokenFor = (t: TestHub, policy: string) => createSasToken('localhost', t.hub.auth.policy(policy)!.primaryKey, policy, 3600);

const chiller = (temperature: number) => ({ deviceContent: { 'properties.desired.chillerWaterSettings': { temperature, pressure: 78 } } });

describe('automatic device configurations with azure-iothub', () => {
  let t: TestHub;
  let registry: ReturnType<typeof createRegistry>;
  before(async () => {
    t = await startTestHub();
    registry = createRegistry(t.connection);
  });
  after(() => t.dispose());

  const twinOf = async (deviceId: string, moduleId?: string): Promise<any> =>
    (moduleId ? await registry.getModuleTwin(deviceId, moduleId) : await registry.getTwin(deviceId)).responseBody;
  const tag = (deviceId: string, tags: object) => registry.updateTwin(deviceId, { tags }, '*');
  const config = async (id: string): Promise<any> => (await registry.getConfiguration(id)).responseBody;

  test('content is applied to the twins the condition targets; metrics count them; a device online gets the patch', async () => {
    const connection = await registerIdentity(t, 'chiller-1');
    await registerIdentity(t, 'chiller-2');
    await registerIdentity(t, 'chiller-3');
    await tag('chiller-1', { site: 'wa' });
    await tag('chiller-2', { site: 'wa' });
    await tag('chiller-3', { site: 'or' });
    const device = await openDevice(connection);
    try {
      const twin = await device.getTwin();
      const patches: any[] = [];
      twin.on('properties.desired', (patch: any) => patches.push(structuredClone(patch)));
      await new Promise<void>((resolve, reject) =>
        twin.enableTwinDesiredPropertiesUpdates((err?: Error) => (err ? reject(err) : resolve())),
      );

      const created = (
        await registry.addConfiguration({
          id: 'chillers-wa',
          schemaVersion: '1.0',
          priority: 10,
          targetCondition: "tags.site='wa'",
          labels: { team: 'cooling' },
          content: chiller(38),
          metrics: {
            queries: {
              pending:
                "SELECT deviceId FROM devices WHERE configurations.[[chillers-wa]].status='Applied' AND NOT IS_DEFINED(properties.reported.chillerWaterSettings)",
            },
          },
        })
      ).responseBody as any;
      assert.equal(created.id, 'chillers-wa');
      assert.match(created.etag, /^[A-Za-z0-9+/=]+$/);
      assert.deepEqual(created.labels, { team: 'cooling' });
      assert.deepEqual(created.systemMetrics.results, { targetedCount: 2, appliedCount: 2 });
      assert.equal(created.systemMetrics.queries.targetedCount, "select deviceId from devices where tags.site='wa'");
      assert.deepEqual(created.metrics.results, { pending: 2 });

      assert.deepEqual((await twinOf('chiller-1')).properties.desired.chillerWaterSettings, { temperature: 38, pressure: 78 });
      assert.deepEqual((await twinOf('chiller-1')).configurations, { 'chillers-wa': { status: 'Applied' } });
      const untouched = await twinOf('chiller-3');
      assert.equal(untouched.properties.desired.chillerWaterSettings, undefined);
      assert.equal(untouched.configurations, undefined);
      await until(() => patches.some((p) => p.chillerWaterSettings?.temperature === 38), 'the device receives the desired patch');

      // The device reports back: the custom metric follows its reported properties.
      await new Promise<void>((resolve, reject) =>
        twin.properties.reported.update({ chillerWaterSettings: { status: 'current' } }, (err?: Error) => (err ? reject(err) : resolve())),
      );
      assert.deepEqual((await config('chillers-wa')).metrics.results, { pending: 1 });

      const query = registry.createQuery("SELECT deviceId FROM devices WHERE configurations.[[chillers-wa]].status = 'Applied'");
      const applied = ((await query.nextAsTwin()).result as any[]).map((r) => r.deviceId).sort();
      assert.deepEqual(applied, ['chiller-1', 'chiller-2']);
    } finally {
      await device.close();
    }
  });

  test('the highest priority wins, whatever the order of creation; the others only target', async () => {
    await registerIdentity(t, 'prio-1');
    await tag('prio-1', { fleet: 'prio' });
    await registry.addConfiguration({
      id: 'prio-high',
      schemaVersion: '1.0',
      priority: 20,
      targetCondition: "tags.fleet='prio'",
      content: chiller(30),
    });
    await registry.addConfiguration({
      id: 'prio-low',
      schemaVersion: '1.0',
      priority: 5,
      targetCondition: "tags.fleet='prio'",
      content: chiller(50),
    });
    let twin = await twinOf('prio-1');
    assert.deepEqual(twin.configurations, { 'prio-high': { status: 'Applied' }, 'prio-low': { status: 'Targeted' } });
    assert.equal(twin.properties.desired.chillerWaterSettings.temperature, 30);
    assert.deepEqual((await config('prio-low')).systemMetrics.results, { targetedCount: 1, appliedCount: 0 });

    // A new configuration above both takes over; removing it hands the twin to the next one in line.
    await registry.addConfiguration({
      id: 'prio-top',
      schemaVersion: '1.0',
      priority: 99,
      targetCondition: "tags.fleet='prio'",
      content: chiller(10),
    });
    twin = await twinOf('prio-1');
    assert.equal(twin.configurations['prio-top'].status, 'Applied');
    assert.equal(twin.configurations['prio-high'].status, 'Targeted');
    assert.equal(twin.properties.desired.chillerWaterSettings.temperature, 10);
    await registry.removeConfiguration('prio-top');
    twin = await twinOf('prio-1');
    assert.deepEqual(twin.configurations, { 'prio-high': { status: 'Applied' }, 'prio-low': { status: 'Targeted' } });
    assert.equal(twin.properties.desired.chillerWaterSettings.temperature, 30);
    for (const id of ['prio-high', 'prio-low']) await registry.removeConfiguration(id);
  });

  test('a twin that stops matching leaves the metrics and keeps its desired properties; a new device that matches is applied', async () => {
    await registerIdentity(t, 'move-1');
    await tag('move-1', { ring: 'canary' });
    await registry.addConfiguration({ id: 'canary', schemaVersion: '1.0', targetCondition: "tags.ring='canary'", content: chiller(21) });
    assert.deepEqual((await config('canary')).systemMetrics.results, { targetedCount: 1, appliedCount: 1 });

    await tag('move-1', { ring: 'stable' });
    const moved = await twinOf('move-1');
    assert.equal(moved.configurations, undefined);
    assert.equal(moved.properties.desired.chillerWaterSettings.temperature, 21);
    assert.deepEqual((await config('canary')).systemMetrics.results, { targetedCount: 0, appliedCount: 0 });

    await registerIdentity(t, 'move-2');
    await tag('move-2', { ring: 'canary' });
    assert.equal((await twinOf('move-2')).properties.desired.chillerWaterSettings.temperature, 21);
    assert.deepEqual((await config('canary')).systemMetrics.results, { targetedCount: 1, appliedCount: 1 });

    // Deleting the device takes it out of the metrics.
    await registry.delete('move-2');
    assert.deepEqual((await config('canary')).systemMetrics.results, { targetedCount: 0, appliedCount: 0 });
    await registry.removeConfiguration('canary');
  });

  test('module configurations target module twins with FROM devices.modules WHERE', async () => {
    await registerIdentity(t, 'mod-dev', 'sensor');
    await registry.updateModuleTwin('mod-dev', 'sensor', { tags: { kind: 'thermo' } }, '*');
    await registry.addConfiguration({
      id: 'thermo-modules',
      schemaVersion: '1.0',
      targetCondition: "FROM devices.modules WHERE tags.kind='thermo'",
      content: { moduleContent: { 'properties.desired.interval': 30 } },
    });
    const twin = await twinOf('mod-dev', 'sensor');
    assert.equal(twin.properties.desired.interval, 30);
    assert.deepEqual(twin.configurations, { 'thermo-modules': { status: 'Applied' } });
    const got = await config('thermo-modules');
    assert.deepEqual(got.systemMetrics.results, { targetedCount: 1, appliedCount: 1 });
    assert.match(got.systemMetrics.queries.appliedCount, /from devices\.modules where configurations\.\[\[thermo-modules\]\]/);
    // moduleContent with a device condition is refused.
    const refused = await failure(
      registry.addConfiguration({
        id: 'bad-modules',
        schemaVersion: '1.0',
        targetCondition: "tags.x='y'",
        content: { moduleContent: { 'properties.desired.a': 1 } },
      }),
    );
    assert.equal(refused.code, 'InvalidConfigurationTargetCondition');
    await registry.removeConfiguration('thermo-modules');
  });

  test('etags, immutable content, duplicates, missing ids and bad input answer as IoT Hub does', async () => {
    const created = (
      await registry.addConfiguration({
        id: 'etag-test',
        schemaVersion: '1.0',
        priority: 1,
        targetCondition: "tags.none='x'",
        content: chiller(1),
      })
    ).responseBody as any;
    assert.equal((await failure(registry.addConfiguration({ id: 'etag-test', schemaVersion: '1.0' }))).code, 'ConfigurationAlreadyExists');

    const updated = (await registry.updateConfiguration({ ...created, priority: 7, labels: { stage: 'two' } })).responseBody as any;
    assert.equal(updated.priority, 7);
    assert.notEqual(updated.etag, created.etag);
    assert.equal(updated.createdTimeUtc, created.createdTimeUtc);
    const stale = await failure(registry.updateConfiguration({ ...created, priority: 8 }));
    assert.equal(stale.name, 'InvalidEtagError'); // azure-iothub's class for a 412
    const immutable = await failure(registry.updateConfiguration({ ...updated, content: chiller(2) }, true));
    assert.equal(immutable.code, 'CannotModifyImmutableConfigurationContent');
    assert.equal(
      (await failure(registry.addConfiguration({ id: 'bad-path', schemaVersion: '1.0', content: { deviceContent: { 'tags.x': 1 } } })))
        .code,
      'InvalidConfigurationContent',
    );
    assert.equal(
      (await failure(registry.addConfiguration({ id: 'bad-condition', schemaVersion: '1.0', targetCondition: 'tags.x = = 1' }))).code,
      'InvalidConfigurationTargetCondition',
    );
    assert.equal(
      (await failure(registry.addConfiguration({ id: 'bad-metric', schemaVersion: '1.0', metrics: { queries: { m: 'SELECT FROM' } } })))
        .code,
      'InvalidConfigurationCustomMetricsQuery',
    );
    assert.equal((await failure(registry.addConfiguration({ id: 'Upper-Case', schemaVersion: '1.0' }))).code, 'ArgumentInvalid');

    const list = (await registry.getConfigurations()).responseBody as any[];
    assert.ok(list.some((c) => c.id === 'etag-test' && c.priority === 7));
    const top = await restCall(t, 'GET', '/configurations?top=1&api-version=2021-04-12', tokenFor(t, 'iothubowner'));
    assert.equal(top.status, 200);
    assert.equal(top.body.length, 1);

    await registry.removeConfiguration('etag-test');
    const missing = await failure(registry.getConfiguration('etag-test'));
    assert.equal(missing.status, 404);
    assert.equal(missing.code, 'ConfigurationNotFound');
    assert.equal((await failure(registry.removeConfiguration('etag-test'))).code, 'ConfigurationNotFound');
  });

  test('testQueries reports the errors of a condition and of metric queries without saving anything', async () => {
    const auth = tokenFor(t, 'iothubowner');
    const ok = await restCall(
      t,
      'POST',
      '/configurations/testQueries?api-version=2021-04-12',
      auth,
      JSON.stringify({ targetCondition: "tags.site='wa'", customMetricQueries: { good: 'SELECT deviceId FROM devices' } }),
    );
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, { targetConditionError: '', customMetricQueryErrors: {} });
    const bad = await restCall(
      t,
      'POST',
      '/configurations/testQueries?api-version=2021-04-12',
      auth,
      JSON.stringify({
        targetCondition: 'tags.site = ',
        customMetricQueries: { good: 'SELECT deviceId FROM devices', broken: 'SELECT * FORM devices' },
      }),
    );
    assert.equal(bad.status, 200);
    assert.match(bad.body.targetConditionError, /target condition is invalid/);
    assert.deepEqual(Object.keys(bad.body.customMetricQueryErrors), ['broken']);
    // A read-only policy may test; it may not create.
    const reader = tokenFor(t, 'registryRead');
    assert.equal(
      (await restCall(t, 'POST', '/configurations/testQueries?api-version=2021-04-12', reader, JSON.stringify({ targetCondition: '*' })))
        .status,
      200,
    );
    assert.equal(
      (await restCall(t, 'PUT', '/configurations/by-reader?api-version=2021-04-12', reader, JSON.stringify({ id: 'by-reader' }))).status,
      403,
    );
  });

  test("applyConfigurationContentOnDevice writes modulesContent to an IoT Edge device's module twins", async () => {
    await registry.create({ deviceId: 'edge-1', capabilities: { iotEdge: true } } as any);
    await registry.addModule({ deviceId: 'edge-1', moduleId: 'filter' });
    await registry.applyConfigurationContentOnDevice('edge-1', { modulesContent: { filter: { 'properties.desired': { threshold: 42 } } } });
    assert.equal((await twinOf('edge-1', 'filter')).properties.desired.threshold, 42);
    const missingModule = await failure(
      registry.applyConfigurationContentOnDevice('edge-1', { modulesContent: { nope: { 'properties.desired': { a: 1 } } } }),
    );
    assert.equal(missingModule.code, 'ModuleNotFound');
    await registerIdentity(t, 'not-edge');
    assert.equal(
      (await failure(registry.applyConfigurationContentOnDevice('not-edge', { modulesContent: { m: { 'properties.desired': {} } } })))
        .status,
      400,
    );
    assert.equal(
      (await failure(registry.applyConfigurationContentOnDevice('no-such-device', { modulesContent: {} }))).code,
      'DeviceNotFound',
    );
  });
});

test('configurations and their applied state survive a restart; content is not applied twice', onDisk(), async () => {
  const dataDir = tempDir();
  let t = await startTestHub({ dataDir });
  try {
    let registry = createRegistry(t.connection);
    await registerIdentity(t, 'durable-1');
    await registry.updateTwin('durable-1', { tags: { keep: true } }, '*');
    await registry.addConfiguration({ id: 'durable', schemaVersion: '1.0', targetCondition: 'tags.keep = true', content: chiller(5) });
    // The service overrides what the configuration set: a restart must not put it back.
    await registry.updateTwin('durable-1', { properties: { desired: { chillerWaterSettings: { temperature: 6 } } } }, '*');
    await t.stop();
    t = await startTestHub({ dataDir });
    registry = createRegistry(t.connection);
    const got = (await registry.getConfiguration('durable')).responseBody as any;
    assert.deepEqual(got.systemMetrics.results, { targetedCount: 1, appliedCount: 1 });
    await registry.updateTwin('durable-1', { tags: { other: 1 } }, '*'); // a change reconciles the twin again
    const twin = (await registry.getTwin('durable-1')).responseBody as any;
    assert.equal(twin.properties.desired.chillerWaterSettings.temperature, 6);
    assert.deepEqual(twin.configurations, { durable: { status: 'Applied' } });
  } finally {
    await t.dispose();
  }
});
