import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type mqtt from 'mqtt';
import { createRegistry } from '../../src/clients/service-clients.js';
import { createDeviceClient } from '../../src/clients/device-clients.js';
import { identityConnectionWithKey } from '../../src/clients/connection-string.js';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import { restCall, startTestHub, type TestHub } from '../helpers/hub.js';
import { closed, deviceToken, rawConnect, subscribe, type RawIdentity } from '../helpers/mqtt.js';

const NOT_AUTHORIZED = 5;
const newKey = (fill: number) => Buffer.alloc(32, fill).toString('base64');

describe('security: who may connect, and to what', () => {
  let t: TestHub;
  let registry: ReturnType<typeof createRegistry>;
  const open: mqtt.MqttClient[] = [];

  async function create(identity: RawIdentity, key?: string): Promise<string> {
    const symmetricKey = key ? { primaryKey: key, secondaryKey: key } : undefined;
    const body = { deviceId: identity.deviceId, ...(symmetricKey ? { authentication: { type: 'sas', symmetricKey } } : {}) };
    const created = identity.moduleId
      ? (await registry.addModule({ ...body, moduleId: identity.moduleId } as any)).responseBody
      : (await registry.create(body as any)).responseBody;
    return created.authentication!.symmetricKey!.primaryKey!;
  }

  async function connected(identity: RawIdentity, password: string): Promise<mqtt.MqttClient> {
    const result = await rawConnect(t.hub, identity, password);
    if (typeof result === 'number') assert.fail(`connect refused with CONNACK ${result}`);
    open.push(result);
    return result;
  }

  before(async () => {
    t = await startTestHub();
    registry = createRegistry(t.connection);
  });
  after(async () => {
    for (const c of open) c.end(true);
    await t.dispose();
  });

  test("a device's token used for another device id is refused", async () => {
    const keyA = await create({ deviceId: 'sec-a' });
    await create({ deviceId: 'sec-b' });
    // Signed correctly with A's key, presented as B.
    assert.equal(await rawConnect(t.hub, { deviceId: 'sec-b' }, deviceToken({ deviceId: 'sec-a' }, keyA)), NOT_AUTHORIZED);
    // Scoped to B but signed with A's key.
    assert.equal(await rawConnect(t.hub, { deviceId: 'sec-b' }, deviceToken({ deviceId: 'sec-b' }, keyA)), NOT_AUTHORIZED);
    (await connected({ deviceId: 'sec-a' }, deviceToken({ deviceId: 'sec-a' }, keyA))).end(true);
  });

  test('a token for another hub (audience) is refused', async () => {
    const key = await create({ deviceId: 'sec-aud' });
    const token = deviceToken({ deviceId: 'sec-aud' }, key, { host: 'other-hub.azure-devices.net' });
    assert.equal(await rawConnect(t.hub, { deviceId: 'sec-aud' }, token), NOT_AUTHORIZED);
  });

  test('an expired token is refused', async () => {
    const key = await create({ deviceId: 'sec-exp' });
    assert.equal(
      await rawConnect(t.hub, { deviceId: 'sec-exp' }, deviceToken({ deviceId: 'sec-exp' }, key, { ttlSeconds: -5 })),
      NOT_AUTHORIZED,
    );
  });

  test('a connection is closed when its token expires, and a long-lived one stays open', async () => {
    const key = await create({ deviceId: 'sec-ttl' });
    const shortLived = await connected({ deviceId: 'sec-ttl' }, deviceToken({ deviceId: 'sec-ttl' }, key, { ttlSeconds: 3 }));
    const other = await create({ deviceId: 'sec-ttl-long' });
    const longLived = await connected({ deviceId: 'sec-ttl-long' }, deviceToken({ deviceId: 'sec-ttl-long' }, other, { ttlSeconds: 3600 }));
    await closed(shortLived, 30_000);
    assert.equal(longLived.connected, true, 'only the expired connection was closed');
  });

  test('after the keys are regenerated the old key is refused and a live connection with it is dropped', async () => {
    const oldKey = await create({ deviceId: 'sec-rekey' });
    const live = await connected({ deviceId: 'sec-rekey' }, deviceToken({ deviceId: 'sec-rekey' }, oldKey));
    const dropped = closed(live);
    await registry.update({
      deviceId: 'sec-rekey',
      authentication: { type: 'sas', symmetricKey: { primaryKey: newKey(1), secondaryKey: newKey(2) } },
    } as any);
    await dropped;
    assert.equal(await rawConnect(t.hub, { deviceId: 'sec-rekey' }, deviceToken({ deviceId: 'sec-rekey' }, oldKey)), NOT_AUTHORIZED);
    // The SDK reports the refusal as UnauthorizedError (what the toolkit turns into exit code 4).
    const sdk = await createDeviceClient(identityConnectionWithKey(t.connection, { deviceId: 'sec-rekey' }, oldKey));
    await assert.rejects(sdk.open(), (err: Error) => err.constructor.name === 'UnauthorizedError');
    await sdk.close().catch(() => undefined);
    (await connected({ deviceId: 'sec-rekey' }, deviceToken({ deviceId: 'sec-rekey' }, newKey(1)))).end(true);
  });

  test('a disabled device is refused and dropped, and so are its modules', async () => {
    const key = await create({ deviceId: 'sec-off' });
    const moduleKey = await create({ deviceId: 'sec-off', moduleId: 'm1' });
    const device = await connected({ deviceId: 'sec-off' }, deviceToken({ deviceId: 'sec-off' }, key));
    const module = await connected(
      { deviceId: 'sec-off', moduleId: 'm1' },
      deviceToken({ deviceId: 'sec-off', moduleId: 'm1' }, moduleKey),
    );
    const dropped = Promise.all([closed(device), closed(module)]);
    await registry.update({ deviceId: 'sec-off', status: 'disabled' });
    await dropped;
    assert.equal(await rawConnect(t.hub, { deviceId: 'sec-off' }, deviceToken({ deviceId: 'sec-off' }, key)), NOT_AUTHORIZED);
    assert.equal(
      await rawConnect(t.hub, { deviceId: 'sec-off', moduleId: 'm1' }, deviceToken({ deviceId: 'sec-off', moduleId: 'm1' }, moduleKey)),
      NOT_AUTHORIZED,
    );
  });

  test('a module token cannot connect as its device, nor a device token as its module (even with the same key)', async () => {
    const shared = newKey(7);
    await create({ deviceId: 'sec-mod' }, shared);
    await create({ deviceId: 'sec-mod', moduleId: 'm1' }, shared);
    const moduleToken = deviceToken({ deviceId: 'sec-mod', moduleId: 'm1' }, shared);
    const deviceTokenText = deviceToken({ deviceId: 'sec-mod' }, shared);
    assert.equal(await rawConnect(t.hub, { deviceId: 'sec-mod' }, moduleToken), NOT_AUTHORIZED);
    assert.equal(await rawConnect(t.hub, { deviceId: 'sec-mod', moduleId: 'm1' }, deviceTokenText), NOT_AUTHORIZED);
    (await connected({ deviceId: 'sec-mod', moduleId: 'm1' }, moduleToken)).end(true);
    (await connected({ deviceId: 'sec-mod' }, deviceTokenText)).end(true);
  });

  test("a device cannot subscribe to another device's topics", async () => {
    const key = await create({ deviceId: 'sec-sub' });
    await create({ deviceId: 'sec-victim' });
    const client = await connected({ deviceId: 'sec-sub' }, deviceToken({ deviceId: 'sec-sub' }, key));
    const granted = await subscribe(client, [
      'devices/sec-victim/messages/devicebound/#',
      'devices/sec-victim/#',
      'devices/+/messages/devicebound/#',
      'devices/sec-victim/modules/+/#',
      '#',
    ]);
    assert.deepEqual(granted, [128, 128, 128, 128, 128]);
    client.end(true);
  });

  test("a device cannot publish to another device's topics: the publish is refused and the connection closed", async () => {
    const key = await create({ deviceId: 'sec-pub' });
    await create({ deviceId: 'sec-target' });
    for (const topic of [
      'devices/sec-target/messages/events/',
      'devices/sec-target/modules/m1/messages/events/',
      'devices/sec-target/messages/devicebound/',
    ]) {
      const client = await connected({ deviceId: 'sec-pub' }, deviceToken({ deviceId: 'sec-pub' }, key));
      const gone = closed(client);
      client.publish(topic, '{"spoofed":true}', { qos: 1 });
      await gone;
    }
    const twin = (await registry.getTwin('sec-target')).responseBody;
    assert.deepEqual(
      Object.keys(twin.properties.reported).filter((k) => !k.startsWith('$')),
      [],
    );
  });

  test('a service token for policy `device` cannot call the REST API, nor a device token', async () => {
    const deviceOnly = createRegistry(t.connectionFor('device'));
    await assert.rejects(deviceOnly.get('sec-a'), (err: any) => err.response?.statusCode === 403);
    await assert.rejects(deviceOnly.create({ deviceId: 'sec-new' }), (err: any) => err.response?.statusCode === 403);
    await assert.rejects(deviceOnly.getTwin('sec-a'), (err: any) => err.response?.statusCode === 403);

    const key = (await registry.get('sec-a')).responseBody.authentication!.symmetricKey!.primaryKey!;
    for (const token of [deviceToken({ deviceId: 'sec-a' }, key), createSasToken('localhost', key, undefined, 600)]) {
      assert.equal((await restCall(t, 'GET', '/devices/sec-a?api-version=2021-04-12', token)).status, 401);
    }
    assert.equal((await restCall(t, 'GET', '/devices/sec-a?api-version=2021-04-12')).status, 401);
  });
});
