import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MethodTopics } from '../../src/hub/device-gateway/method-topics.js';
import { memoryGateway, type MemoryGateway } from '../helpers/gateway.js';
import { deviceToken, subscribe } from '../helpers/mqtt.js';
import { until } from '../helpers/devices.js';

// The MQTT gateway's connect and subscribe rules, without sockets (an in-memory duplex per client):
// each refusal's CONNACK or SUBACK code, and the reason the hub logs. security.test.ts drives the
// same rules through the SDK and real TLS connections.

const USERNAME = (clientId: string) => `localhost/${clientId}/?api-version=2021-04-12`;

describe('MQTT gateway: CONNACK and SUBACK codes, and why', () => {
  let g: MemoryGateway;
  let key: string;
  let moduleKey: string;
  let disabledKey: string;

  before(async () => {
    g = await memoryGateway();
    g.gateway.use(new MethodTopics(g.gateway));
    key = g.registry.createOrUpdate({ deviceId: 'gw' }, {}, undefined).record.primaryKey;
    moduleKey = g.registry.createOrUpdate({ deviceId: 'gw', moduleId: 'mod' }, {}, undefined).record.primaryKey;
    disabledKey = g.registry.createOrUpdate({ deviceId: 'off' }, { status: 'disabled' }, undefined).record.primaryKey;
  });
  after(() => g.close());

  const refusals: Array<{ name: string; clientId: string; username?: string; password: () => string; code: number; why: RegExp }> = [
    {
      name: 'a password that is not a SAS token',
      clientId: 'gw',
      password: () => 'not a token',
      code: 4,
      why: /the password is not a SAS token/,
    },
    {
      name: 'a username for another hub',
      clientId: 'gw',
      username: 'other.azure-devices.net/gw/?api-version=2021-04-12',
      password: () => deviceToken({ deviceId: 'gw' }, key),
      code: 4,
      why: /the client id or the username/,
    },
    {
      name: 'a client id with three segments',
      clientId: 'gw/mod/x',
      password: () => deviceToken({ deviceId: 'gw' }, key),
      code: 4,
      why: /the client id or the username/,
    },
    {
      name: 'an expired token',
      clientId: 'gw',
      password: () => deviceToken({ deviceId: 'gw' }, key, { ttlSeconds: -1 }),
      code: 5,
      why: /the SAS token has expired/,
    },
    {
      name: "another device's token",
      clientId: 'gw',
      password: () => deviceToken({ deviceId: 'other' }, key),
      code: 5,
      why: /audience \(sr\) is not this identity/,
    },
    {
      name: "the device's token for its module",
      clientId: 'gw/mod',
      password: () => deviceToken({ deviceId: 'gw' }, moduleKey),
      code: 5,
      why: /audience \(sr\) is not this identity/,
    },
    {
      name: 'a wrong key',
      clientId: 'gw',
      password: () => deviceToken({ deviceId: 'gw' }, moduleKey),
      code: 5,
      why: /signature does not match/,
    },
    {
      name: 'an unknown device',
      clientId: 'ghost',
      password: () => deviceToken({ deviceId: 'ghost' }, key),
      code: 5,
      why: /no such device or module/,
    },
    {
      name: 'a disabled device',
      clientId: 'off',
      password: () => deviceToken({ deviceId: 'off' }, disabledKey),
      code: 5,
      why: /the device is disabled/,
    },
  ];
  for (const r of refusals) {
    test(`${r.name}: CONNACK ${r.code}, logged with its reason`, async () => {
      assert.equal(await g.connect(r.clientId, r.username ?? USERNAME(r.clientId), r.password()), r.code);
      const logged = g.lines.filter((line) => line.includes(`refused the connection of ${r.clientId}: CONNACK ${r.code}, `));
      assert.ok(
        logged.some((line) => r.why.test(line)),
        g.lines.join(''),
      );
    });
  }

  test('a good token connects (CONNACK 0); subscriptions: QoS 2 granted as 1, a topic the hub does not serve refused with 128', async () => {
    const client = await g.connect('gw', USERNAME('gw'), deviceToken({ deviceId: 'gw' }, key));
    if (typeof client === 'number') assert.fail(`refused with CONNACK ${client}`);
    await until(() => g.gateway.session({ deviceId: 'gw' }) !== undefined, 'the session is live');
    assert.deepEqual(await subscribe(client, ['$iothub/methods/POST/#'], 2), [1]);
    assert.deepEqual(await subscribe(client, ['devices/other/messages/devicebound/#', '#'], 0), [128, 128]);
    assert.ok(g.lines.some((line) => line.includes("debug mqtt: gw subscribed to '$iothub/methods/POST/#': SUBACK 1")));
    assert.ok(g.lines.some((line) => line.includes("refused the subscription of gw to '#': SUBACK 128")));
    assert.ok(g.gateway.isSubscribed({ deviceId: 'gw' }, '$iothub/methods/POST/'));
  });
});
