import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type mqtt from 'mqtt';
import { createRegistry, restApiClient } from '../../src/clients/service-clients.js';
import type { DeviceConnection, ServiceConnection } from '../../src/clients/connection-string.js';
import { createDeviceClient, type DeviceClient, type DeviceTransport } from '../../src/clients/device-clients.js';
import { identityConnection } from '../../src/clients/identity-connection.js';
import { deviceToken, rawConnect, subscribe } from '../helpers/mqtt.js';
import { receiveTwinPatch, type DesiredPatch } from '../../src/apps/receive-twin-patch.js';
import { updateModuleTwin } from '../../src/apps/update-module-twin.js';
import { updateReported } from '../../src/apps/update-reported.js';
import { startTestHub, type TestHub } from '../helpers/hub.js';

const WAIT_MS = 30_000;

async function rejection(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail('expected the call to fail');
}

/** Polls (bounded) until `check` returns a value that is not undefined. */
async function eventually<T>(check: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** PUT /twins/...: azure-iothub has no replaceTwin, so the call goes through its own REST client. */
function replaceTwin(connection: ServiceConnection, path: string, twin: unknown, etag = '*'): Promise<any> {
  const { client } = restApiClient(connection);
  return new Promise((resolve, reject) =>
    (client as any).executeApiCall(
      'PUT',
      `${path}?api-version=2021-04-12`,
      { 'Content-Type': 'application/json; charset=utf-8', 'If-Match': `"${etag}"` },
      twin,
      (err: Error, body: any) => (err ? reject(err) : resolve(body)),
    ),
  );
}

describe('twins end to end: azure-iothub over REST, azure-iot-device over MQTT', () => {
  let t: TestHub;
  let registry: ReturnType<typeof createRegistry>;
  const open: DeviceClient[] = [];

  async function identity(deviceId: string, moduleId?: string): Promise<DeviceConnection> {
    if (!(await registry.get(deviceId).catch(() => undefined))) await registry.create({ deviceId });
    if (moduleId) await registry.addModule({ deviceId, moduleId });
    return identityConnection(t.connection, { deviceId, moduleId });
  }

  async function connect(connection: DeviceConnection, protocol: DeviceTransport = 'mqtt'): Promise<DeviceClient> {
    const client = await createDeviceClient(connection, protocol);
    open.push(client);
    await client.open();
    return client;
  }

  function reportFrom(client: DeviceClient, patch: unknown): Promise<void> {
    return client
      .getTwin()
      .then(
        (twin) =>
          new Promise<void>((resolve, reject) => twin.properties.reported.update(patch, (err?: Error) => (err ? reject(err) : resolve()))),
      );
  }

  before(async () => {
    t = await startTestHub();
    registry = createRegistry(t.connection);
  });
  after(async () => {
    await Promise.all(open.map((c) => c.close().catch(() => undefined)));
    await t.dispose();
  });

  test('device and module twins: get, patch and replace over REST, with ETag and identity fields', async () => {
    await identity('rest-1', 'm1');
    const got = await registry.getTwin('rest-1');
    assert.equal(got.responseBody.deviceId, 'rest-1');
    assert.equal(got.httpResponse.headers.etag, `"${got.responseBody.etag}"`);
    assert.equal((got.responseBody as any).status, 'enabled');
    assert.equal((got.responseBody as any).deviceEtag, (await registry.get('rest-1')).responseBody.etag);
    assert.equal(got.responseBody.properties.desired.$version, 1);

    const patched = (
      await registry.updateTwin('rest-1', { tags: { site: 'lab' }, properties: { desired: { a: 1, b: { c: 2 } } } }, got.responseBody.etag)
    ).responseBody;
    assert.deepEqual(patched.tags, { site: 'lab' });
    assert.equal(patched.properties.desired.a, 1);
    assert.equal(patched.properties.desired.$version, 2);
    assert.notEqual(patched.etag, got.responseBody.etag);

    const removed = (await registry.updateTwin('rest-1', { properties: { desired: { b: null } } }, '*')).responseBody;
    assert.equal(removed.properties.desired.b, undefined, 'null removes a desired property');
    assert.equal(removed.properties.desired.a, 1);

    const replaced = await replaceTwin(t.connection, '/twins/rest-1', { tags: { only: true }, properties: { desired: { z: 9 } } });
    assert.deepEqual(replaced.tags, { only: true });
    assert.equal(replaced.properties.desired.z, 9);
    assert.equal(replaced.properties.desired.a, undefined, 'a replace drops what it does not carry');

    const moduleTwin = (await registry.getModuleTwin('rest-1', 'm1')).responseBody;
    assert.equal((moduleTwin as any).moduleId, 'm1');
    const moduleAfter = (
      await registry.updateModuleTwin('rest-1', 'm1', { properties: { desired: { telemetryInterval: 122 } } }, moduleTwin.etag)
    ).responseBody;
    assert.equal(moduleAfter.properties.desired.telemetryInterval, 122);
    assert.equal(
      (await registry.getTwin('rest-1')).responseBody.properties.desired.telemetryInterval,
      undefined,
      "the device's twin is not the module's",
    );
    const moduleReplaced = await replaceTwin(t.connection, '/twins/rest-1/modules/m1', { properties: { desired: { x: 1 } } });
    assert.deepEqual(
      Object.keys(moduleReplaced.properties.desired).filter((k) => !k.startsWith('$')),
      ['x'],
    );
  });

  test('unknown device or module: 404 DeviceNotFound / ModuleNotFound', async () => {
    assert.equal((await rejection(registry.getTwin('nobody'))).constructor.name, 'DeviceNotFoundError');
    await identity('rest-404');
    const err = await rejection(registry.getModuleTwin('rest-404', 'nomodule'));
    assert.equal(err.response.statusCode, 404);
    assert.match(err.responseBody, /ModuleNotFound/);
  });

  test('twin rights: RegistryRead may read but not write; ServiceConnect may both', async () => {
    await identity('rights-1');
    const reader = createRegistry(t.connectionFor('registryRead'));
    const twin = (await reader.getTwin('rights-1')).responseBody;
    assert.equal((await rejection(reader.updateTwin('rights-1', { tags: { x: 1 } }, twin.etag))).response.statusCode, 403);
    const service = createRegistry(t.connectionFor('service'));
    assert.deepEqual((await service.updateTwin('rights-1', { tags: { x: 1 } }, twin.etag)).responseBody.tags, { x: 1 });
  });

  test("a stale etag is refused with 412; '*' always matches", async () => {
    await identity('etag-1');
    const first = (await registry.getTwin('etag-1')).responseBody;
    await registry.updateTwin('etag-1', { properties: { desired: { v: 1 } } }, first.etag);
    const stale = await rejection(registry.updateTwin('etag-1', { properties: { desired: { v: 2 } } }, first.etag));
    assert.equal(stale.constructor.name, 'InvalidEtagError');
    assert.equal((await registry.getTwin('etag-1')).responseBody.properties.desired.v, 1);
    assert.equal((await registry.updateTwin('etag-1', { properties: { desired: { v: 3 } } }, '*')).responseBody.properties.desired.v, 3);
  });

  test('limits over REST: bad keys, depth, tags > 8 KB, desired > 32 KB are 400 and change nothing', async () => {
    await identity('limits-1');
    let nested: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 11; i++) nested = { n: nested };
    const patches: Array<[string, unknown]> = [
      ["key with '.'", { properties: { desired: { 'a.b': 1 } } }],
      ["key with '$'", { properties: { desired: { a$b: 1 } } }],
      ['key with a space', { tags: { 'a b': 1 } }],
      ['depth over 10', { properties: { desired: nested } }],
      ['tags over 8 KB', { tags: { big: 'x'.repeat(4000), big2: 'x'.repeat(4000), big3: 'x'.repeat(400) } }],
      [
        'desired over 32 KB',
        { properties: { desired: Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, 'x'.repeat(4000)])) } },
      ],
    ];
    const before = (await registry.getTwin('limits-1')).responseBody;
    for (const [what, patch] of patches) {
      const err = await rejection(registry.updateTwin('limits-1', patch, '*'));
      assert.equal(err.constructor.name, 'ArgumentError', what);
    }
    const afterAll = (await registry.getTwin('limits-1')).responseBody;
    assert.equal(afterAll.etag, before.etag, 'the twin is unchanged');
    // Just under the desired limit is fine (keys count too: 8 x (2 + 4000) bytes).
    const ok = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 'x'.repeat(4000)]));
    assert.equal((await registry.updateTwin('limits-1', { properties: { desired: ok } }, '*')).responseBody.properties.desired.$version, 2);
  });

  test('reported properties over MQTT: visible from the service side, null removes, versions count', async () => {
    const client = await connect(await identity('rep-1'));
    await reportFrom(client, { firmware: '1.0', network: { type: 'wifi', ssid: 'lab' } });
    let twin = (await registry.getTwin('rep-1')).responseBody;
    assert.equal(twin.properties.reported.firmware, '1.0');
    assert.deepEqual(twin.properties.reported.network, { type: 'wifi', ssid: 'lab' });
    assert.equal(twin.properties.reported.$version, 2);

    await reportFrom(client, { network: { ssid: null } });
    twin = (await registry.getTwin('rep-1')).responseBody;
    assert.deepEqual(twin.properties.reported.network, { type: 'wifi' });
    assert.equal(twin.properties.reported.$version, 3);

    const moduleConnection = await identity('rep-1', 'mod');
    const result = await updateReported(moduleConnection, { reported: { telemetryInterval: 122 } });
    assert.equal(result.version, 2);
    assert.equal((await registry.getModuleTwin('rep-1', 'mod')).responseBody.properties.reported.telemetryInterval, 122);
  });

  test('reported over 32 KB over MQTT: an error for that request, the twin unchanged, the connection usable', async () => {
    const client = await connect(await identity('rep-big'));
    let disconnected = false;
    client.on('disconnect', () => (disconnected = true));
    const before = (await registry.getTwin('rep-big')).responseBody;
    const big = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, 'x'.repeat(4000)]));
    const err = await rejection(reportFrom(client, big));
    assert.match(err.message, /properties\.reported would be \d+ bytes/);
    assert.equal((await registry.getTwin('rep-big')).responseBody.etag, before.etag, 'the twin is unchanged');
    await reportFrom(client, { small: true });
    assert.equal((await registry.getTwin('rep-big')).responseBody.properties.reported.small, true);
    assert.equal(disconnected, false, 'the connection stayed open');
  });

  for (const protocol of ['mqtt', 'mqtt-ws'] as const) {
    test(`a desired patch reaches a subscribed device and a subscribed module (${protocol})`, async () => {
      const deviceId = `desired-${protocol}`;
      const targets = [{ deviceId }, { deviceId, moduleId: 'myFirstModule' }];
      for (const key of targets) await identity(key.deviceId, key.moduleId);
      const stop = new AbortController();
      const got = targets.map(() => [] as DesiredPatch[]);
      const connections = await Promise.all(targets.map((key) => identityConnection(t.connection, key)));
      const receiving = connections.map((connection, i) => {
        let ready!: () => void;
        const isReady = new Promise<void>((r) => (ready = r));
        const done = receiveTwinPatch(connection, {
          transport: protocol,
          count: 2,
          timeoutSeconds: 60,
          signal: stop.signal,
          onReady: ready,
          onPatch: (p) => got[i].push(p),
        });
        return { isReady, done };
      });
      await Promise.race([Promise.all(receiving.map((r) => r.isReady)), ...receiving.map((r) => r.done)]);
      try {
        for (const [i, key] of targets.entries()) {
          const { after } = await updateModuleTwin(t.connection, { ...key, desired: { telemetryInterval: 100 + i } });
          assert.equal(after.properties.desired.telemetryInterval, 100 + i);
          await updateModuleTwin(t.connection, { ...key, desired: { telemetryInterval: null, mode: 'eco' } });
        }
        assert.deepEqual(await Promise.all(receiving.map((r) => r.done)), [{ received: 2 }, { received: 2 }]);
        assert.deepEqual(got[0], [
          { telemetryInterval: 100, $version: 2 },
          { telemetryInterval: null, mode: 'eco', $version: 3 },
        ]);
        assert.deepEqual(got[1], [
          { telemetryInterval: 101, $version: 2 },
          { telemetryInterval: null, mode: 'eco', $version: 3 },
        ]);
      } finally {
        stop.abort();
      }
    });
  }

  test('desired: null removes every desired property, bumps the version and tells the device; tags: null clears the tags', async () => {
    const connection = await identity('clear-1');
    await registry.updateTwin('clear-1', { tags: { site: 'a' }, properties: { desired: { a: 1, b: { c: 2 } } } }, '*');
    const stop = new AbortController();
    const got: DesiredPatch[] = [];
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    const done = receiveTwinPatch(connection, {
      count: 1,
      timeoutSeconds: 60,
      signal: stop.signal,
      onReady: ready,
      onPatch: (p) => got.push(p),
    });
    await Promise.race([isReady, done]);
    try {
      const before = (await registry.getTwin('clear-1')).responseBody as any;
      const twin = (await registry.updateTwin('clear-1', { tags: null, properties: { desired: null } }, '*')).responseBody as any;
      assert.deepEqual(
        Object.keys(twin.properties.desired).filter((k) => !k.startsWith('$')),
        [],
        'every desired property is gone',
      );
      assert.equal(twin.properties.desired.$version, before.properties.desired.$version + 1);
      assert.equal(twin.version, before.version + 1);
      assert.equal(twin.properties.desired.$metadata.a, undefined, 'removed properties lose their metadata');
      assert.deepEqual(twin.tags ?? {}, {}, 'tags: null removes every tag');
      assert.deepEqual(await done, { received: 1 });
      assert.deepEqual(got, [{ a: null, b: null, $version: twin.properties.desired.$version }]);
      const again = (await registry.updateTwin('clear-1', { properties: { desired: null } }, '*')).responseBody as any;
      assert.equal(again.properties.desired.$version, twin.properties.desired.$version + 1, 'clearing an empty section is still a write');
    } finally {
      stop.abort();
    }
  });

  test('connectionState follows real connects and disconnects', async () => {
    const connection = await identity('state-1');
    const twinState = async () =>
      ((await registry.getTwin('state-1')).responseBody as unknown as { connectionState: string }).connectionState;
    assert.equal(await twinState(), 'Disconnected');
    const client = await connect(connection);
    await eventually(
      async () => (String((await registry.get('state-1')).responseBody.connectionState) === 'Connected' ? true : undefined),
      'Connected',
    );
    assert.equal(await twinState(), 'Connected');
    await client.close();
    await eventually(async () => ((await twinState()) === 'Disconnected' ? true : undefined), 'Disconnected');
  });

  describe('raw MQTT: what a device may reach', () => {
    let keys: Record<string, string>;

    async function rawClient(deviceId: string): Promise<mqtt.MqttClient> {
      const client = await rawConnect(t.hub, { deviceId }, deviceToken({ deviceId }, keys[deviceId]));
      if (typeof client === 'number') throw new Error(`${deviceId}: connect refused with CONNACK ${client}`);
      return client;
    }

    function request(client: mqtt.MqttClient, topic: string, payload: string): Promise<{ topic: string; body: any }> {
      const rid = Math.random().toString(36).slice(2);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no response to ${topic}`)), WAIT_MS);
        const onMessage = (responseTopic: string, message: Buffer) => {
          if (!responseTopic.includes(`$rid=${rid}`)) return;
          clearTimeout(timer);
          client.off('message', onMessage);
          resolve({ topic: responseTopic, body: message.length ? JSON.parse(message.toString()) : undefined });
        };
        client.on('message', onMessage);
        client.publish(`${topic}?$rid=${rid}`, payload);
      });
    }

    before(async () => {
      keys = {};
      for (const id of ['raw-a', 'raw-b']) {
        const device = (await registry.create({ deviceId: id })).responseBody;
        keys[id] = device.authentication!.symmetricKey!.primaryKey;
        await registry.updateTwin(id, { properties: { desired: { owner: id } } }, '*');
      }
    });

    test("subscribing to another device's topics, or to everything, is refused (SUBACK 128)", async () => {
      const a = await rawClient('raw-a');
      try {
        const granted = await subscribe(a, [
          'devices/raw-b/messages/devicebound/#',
          '#',
          '$iothub/twin/res/#',
          '$iothub/twin/PATCH/properties/desired/#',
        ]);
        assert.deepEqual(granted, [128, 128, 0, 0]);
      } finally {
        a.end(true);
      }
    });

    test('GET on the twin topic answers with the twin of the connected device only', async () => {
      const [a, b] = [await rawClient('raw-a'), await rawClient('raw-b')];
      try {
        await subscribe(a, ['$iothub/twin/res/#']);
        await subscribe(b, ['$iothub/twin/res/#']);
        const fromA = await request(a, '$iothub/twin/GET/', '');
        assert.match(fromA.topic, /^\$iothub\/twin\/res\/200\/\?\$rid=/);
        assert.equal(fromA.body.desired.owner, 'raw-a');
        const fromB = await request(b, '$iothub/twin/GET/', '');
        assert.equal(fromB.body.desired.owner, 'raw-b');
      } finally {
        a.end(true);
        b.end(true);
      }
    });

    test('a bad reported patch is answered with 400 on the response topic; the connection stays usable', async () => {
      const a = await rawClient('raw-a');
      try {
        await subscribe(a, ['$iothub/twin/res/#']);
        const invalid = await request(a, '$iothub/twin/PATCH/properties/reported/', '{not json');
        assert.match(invalid.topic, /^\$iothub\/twin\/res\/400\//);
        assert.equal(invalid.body.errorCode, 400004);
        const badKey = await request(a, '$iothub/twin/PATCH/properties/reported/', '{"a$b":1}');
        assert.match(badKey.topic, /^\$iothub\/twin\/res\/400\//);
        const ok = await request(a, '$iothub/twin/PATCH/properties/reported/', '{"fine":1}');
        assert.match(ok.topic, /^\$iothub\/twin\/res\/204\/\?\$rid=\w+&\$version=2$/);
        assert.equal(a.connected, true);
        assert.equal((await registry.getTwin('raw-a')).responseBody.properties.reported.fine, 1);
      } finally {
        a.end(true);
      }
    });
  });
});
