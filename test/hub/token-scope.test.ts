import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Agent } from 'node:https';
import rhea, { type Connection, type EventContext } from 'rhea';
import { createSasToken, sign } from '../../src/hub/auth/sas-token.js';
import { BUILT_IN_POLICIES, grants, type Right } from '../../src/hub/auth/policies.js';
import { EVENT_HUB_NAME } from '../../src/hub/server.js';
import { restCall, startTestHub, type TestHub } from '../helpers/hub.js';
import { rawConnect, type RawIdentity } from '../helpers/mqtt.js';
import { within } from '../helpers/events.js';

// Every SAS token reaches only what lies under its resource URI (sr), by whole path segments, on every
// endpoint: REST, MQTT, and CBS on the Event Hub-compatible endpoint. Each shared access policy is tried
// with each scope; the expected answer is read off two tables (what each scope reaches, what each policy grants).

const API = 'api-version=2021-04-12';
const HOST = 'localhost';

/** REST operations, each needing one of `rights`, and the status it gets when it may run. */
const OPERATIONS: Array<{ name: string; rights: Right[]; ok: number; body?: unknown; ifMatch?: string }> = [
  { name: 'GET /devices', rights: ['RegistryRead'], ok: 200 },
  { name: 'GET /devices/a', rights: ['RegistryRead'], ok: 200 },
  { name: 'PUT /devices/a', rights: ['RegistryWrite'], ok: 200, body: { deviceId: 'a' }, ifMatch: '*' },
  { name: 'GET /devices/a/modules/m', rights: ['RegistryRead'], ok: 200 },
  { name: 'GET /devices/b', rights: ['RegistryRead'], ok: 200 },
  { name: 'GET /devices/ab', rights: ['RegistryRead'], ok: 200 },
  { name: 'DELETE /devices/absent', rights: ['RegistryWrite'], ok: 404 },
  { name: 'GET /twins/a', rights: ['ServiceConnect', 'RegistryRead'], ok: 200 },
  { name: 'POST /devices/query', rights: ['RegistryRead', 'ServiceConnect'], ok: 200, body: { query: 'SELECT * FROM devices' } },
  { name: 'GET /statistics/devices', rights: ['RegistryRead'], ok: 200 },
  { name: 'GET /statistics/service', rights: ['ServiceConnect'], ok: 200 },
];
const ALL = OPERATIONS.map((o) => o.name);

/** Each scope, with the REST operations and the MQTT identities it reaches. */
const SCOPES: Array<{ sr: string; rest: string[]; mqtt: string[] }> = [
  { sr: HOST, rest: ALL, mqtt: ['a', 'a/m'] },
  { sr: `${HOST}/devices`, rest: ALL.filter((n) => / \/devices(\/|$)/.test(n)), mqtt: ['a', 'a/m'] },
  { sr: `${HOST}/devices/a`, rest: ['GET /devices/a', 'PUT /devices/a', 'GET /devices/a/modules/m'], mqtt: ['a', 'a/m'] },
  { sr: `${HOST}/devices/a/modules/m`, rest: ['GET /devices/a/modules/m'], mqtt: ['a/m'] },
  { sr: `${HOST}/devices/b`, rest: ['GET /devices/b'], mqtt: [] },
  { sr: `${HOST}/twins/a`, rest: ['GET /twins/a'], mqtt: [] },
  { sr: `other-hub.azure-devices.net`, rest: [], mqtt: [] },
];

const identityOf = (name: string): RawIdentity => {
  const [deviceId, moduleId] = name.split('/');
  return { deviceId: deviceId!, moduleId };
};

describe('token scope: a SAS token reaches only what lies under its resource URI', () => {
  let t: TestHub;
  let agent: Agent;
  const keys: Record<string, string> = {};
  const policyKey = (name: string) => t.hub.auth.policy(name)!.primaryKey;
  const rest = (operation: (typeof OPERATIONS)[number], token: string) => {
    const [method, path] = operation.name.split(' ') as [string, string];
    const body = operation.body === undefined ? undefined : JSON.stringify(operation.body);
    return restCall(t, method, `${path}?${API}`, token, body, {
      agent,
      headers: operation.ifMatch ? { 'If-Match': operation.ifMatch } : {},
    });
  };

  before(async () => {
    t = await startTestHub();
    agent = new Agent({ keepAlive: true, ca: t.hub.tls.ca, maxSockets: 4 });
    const owner = createSasToken(HOST, policyKey('iothubowner'), 'iothubowner', 3600);
    for (const name of ['a', 'b', 'ab', 'a/m']) {
      const { deviceId, moduleId } = identityOf(name);
      const path = moduleId ? `/devices/${deviceId}/modules/${moduleId}` : `/devices/${deviceId}`;
      const created = await restCall(t, 'PUT', `${path}?${API}`, owner, JSON.stringify({ deviceId, moduleId }), { agent });
      assert.equal(created.status, 200);
      keys[name] = created.body.authentication.symmetricKey.primaryKey;
    }
  });
  after(async () => {
    agent.destroy();
    await t.dispose();
  });

  test('REST: each policy with each scope gets 401 outside its scope, 403 without the right, and the answer inside', async () => {
    const wrong: string[] = [];
    for (const policy of BUILT_IN_POLICIES) {
      for (const scope of SCOPES) {
        const token = createSasToken(scope.sr, policyKey(policy.keyName), policy.keyName, 600);
        for (const operation of OPERATIONS) {
          const expected = !scope.rest.includes(operation.name)
            ? 401
            : !operation.rights.some((r) => grants({ ...policy, primaryKey: '', secondaryKey: '' }, r))
              ? 403
              : operation.ok;
          const { status } = await rest(operation, token);
          if (status !== expected) wrong.push(`${policy.keyName} @ ${scope.sr}: ${operation.name} got ${status}, expected ${expected}`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  });

  test("REST: a device's or a module's own key opens no service API, whatever its scope", async () => {
    const tokens = [
      createSasToken(`${HOST}/devices/a`, keys.a!, undefined, 600),
      createSasToken(HOST, keys.a!, undefined, 600),
      createSasToken(`${HOST}/devices/a/modules/m`, keys['a/m']!, undefined, 600),
    ];
    for (const token of tokens) {
      for (const operation of OPERATIONS) assert.equal((await rest(operation, token)).status, 401, operation.name);
    }
  });

  test('REST: a token scoped to one device cannot delete another (the reported finding), and can manage its own', async () => {
    const scoped = createSasToken(`${HOST}/devices/a`, policyKey('registryReadWrite'), 'registryReadWrite', 600);
    const refused = await restCall(t, 'DELETE', `/devices/b?${API}`, scoped, undefined, { agent });
    assert.equal(refused.status, 401);
    assert.equal(refused.body.errorCode, 401002);
    assert.match(refused.body.Message, /^ErrorCode:IotHubUnauthorizedAccess;.*does not cover 'localhost\/devices\/b'/);
    const owner = createSasToken(HOST, policyKey('iothubowner'), 'iothubowner', 600);
    assert.equal((await restCall(t, 'GET', `/devices/b?${API}`, owner, undefined, { agent })).status, 200, 'b is still there');
    // By segments, not characters: devices/a does not reach devices/ab.
    assert.equal((await restCall(t, 'DELETE', `/devices/ab?${API}`, scoped, undefined, { agent })).status, 401);
    assert.equal((await restCall(t, 'GET', `/devices/a/modules/m?${API}`, scoped, undefined, { agent })).status, 200);
  });

  test('REST: the scope is compared decoded and regardless of case, and a path is read as its decoded segments', async () => {
    const key = policyKey('registryRead');
    const signed = (sr: string) => {
      const se = Math.floor(Date.now() / 1000) + 600;
      return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sign(key, sr, se))}&se=${se}&skn=registryRead`;
    };
    for (const sr of ['LocalHost%2FDevices%2Fa', 'localhost/devices/a', 'localhost%2fdevices%2fa%2f', 'localhost%2Fdevices%2FA']) {
      assert.equal((await restCall(t, 'GET', `/devices/a?${API}`, signed(sr), undefined, { agent })).status, 200, sr);
      assert.equal(
        (await restCall(t, 'GET', `/devices/%61?${API}`, signed(sr), undefined, { agent })).status,
        200,
        `${sr} on an encoded path`,
      );
      assert.equal((await restCall(t, 'GET', `/devices/b?${API}`, signed(sr), undefined, { agent })).status, 401, sr);
    }
  });

  test('MQTT: a policy token connects the identities under its scope, if the policy grants DeviceConnect', async () => {
    const wrong: string[] = [];
    for (const policy of BUILT_IN_POLICIES) {
      for (const scope of SCOPES) {
        const token = createSasToken(scope.sr, policyKey(policy.keyName), policy.keyName, 600);
        for (const name of ['a', 'a/m']) {
          const expected = scope.mqtt.includes(name) && policy.rights.includes('DeviceConnect') ? 'connected' : 'refused (5)';
          const result = await rawConnect(t.hub, identityOf(name), token);
          const got = typeof result === 'number' ? `refused (${result})` : 'connected';
          if (typeof result !== 'number') result.end(true);
          if (got !== expected) wrong.push(`${policy.keyName} @ ${scope.sr}: ${name} ${got}, expected ${expected}`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  });

  test("MQTT: an identity's own key token must name exactly that identity", async () => {
    const cases: Array<[identity: string, sr: string, key: string, expected: 'connected' | 'refused']> = [
      ['a', `${HOST}/devices/a`, keys.a!, 'connected'],
      ['a', `LOCALHOST/devices/a/`, keys.a!, 'connected'],
      ['a', HOST, keys.a!, 'refused'],
      ['a', `${HOST}/devices`, keys.a!, 'refused'],
      ['a/m', `${HOST}/devices/a/modules/m`, keys['a/m']!, 'connected'],
      ['a/m', `${HOST}/devices/a`, keys['a/m']!, 'refused'],
      ['ab', `${HOST}/devices/a`, keys.ab!, 'refused'],
    ];
    for (const [name, sr, key, expected] of cases) {
      const result = await rawConnect(t.hub, identityOf(name), createSasToken(sr, key, undefined, 600));
      if (typeof result !== 'number') result.end(true);
      assert.equal(typeof result === 'number' ? 'refused' : 'connected', expected, `${name} with sr=${sr}`);
    }
  });

  describe('CBS on the Event Hub-compatible endpoint', () => {
    let amqp: Connection;
    const partition = (id: number) => `${EVENT_HUB_NAME}/ConsumerGroups/$Default/Partitions/${id}`;
    const base = () => `sb://localhost:${t.hub.eventHubPort}`;
    /** An Event Hubs token: the signing key's UTF-8 bytes, over the URL-encoded sr. */
    const eventHubsToken = (sr: string, keyName: string) => {
      const se = Math.floor(Date.now() / 1000) + 600;
      const encoded = encodeURIComponent(sr);
      return `SharedAccessSignature sr=${encoded}&sig=${encodeURIComponent(sign(policyKey(keyName), encoded, se, 'utf8'))}&se=${se}&skn=${keyName}`;
    };

    /** A put-token round trip on $cbs: the reply's status code. */
    async function putToken(audience: string, token: string): Promise<number> {
      const replyTo = `cbs-${rhea.generate_uuid()}`;
      const replies = amqp.open_receiver({ source: { address: '$cbs' }, target: { address: replyTo } });
      const requests = amqp.open_sender({ target: { address: '$cbs' } });
      await within(10_000, 'the $cbs links', once(requests, 'sendable'));
      requests.send({
        reply_to: replyTo,
        application_properties: { operation: 'put-token', name: audience, type: 'servicebus.windows.net:sastoken' },
        body: token,
      });
      const [context] = (await within(10_000, 'the $cbs reply', once(replies, 'message'))) as [EventContext];
      requests.close();
      replies.close();
      return context.message!.application_properties!['status-code'] as number;
    }

    before(async () => {
      amqp = rhea.create_container().connect({ transport: 'tcp', host: '127.0.0.1', port: t.hub.eventHubPort, reconnect: false });
      amqp.on('error', () => {});
      await within(10_000, 'the AMQP connection', once(amqp, 'connection_open'));
    });
    after(() => {
      amqp.close();
    });

    test('each policy with each scope: 200 for a ServiceConnect policy whose scope reaches the audience, 401 otherwise', async () => {
      const scopes: Array<[sr: string, reaches: boolean]> = [
        [`${base()}/`, true],
        [`${base()}/${EVENT_HUB_NAME}`, true],
        [`${base()}/${EVENT_HUB_NAME.toUpperCase()}/ConsumerGroups/$default`, true],
        [`${base()}/${partition(0)}`, true],
        [`${base()}/${partition(1)}`, false],
        [`${base()}/${EVENT_HUB_NAME.slice(0, -1)}`, false],
        [`sb://elsewhere:${t.hub.eventHubPort}/${EVENT_HUB_NAME}`, false],
      ];
      const wrong: string[] = [];
      for (const policy of BUILT_IN_POLICIES) {
        for (const [sr, reaches] of scopes) {
          const expected = reaches && policy.rights.includes('ServiceConnect') ? 200 : 401;
          const status = await putToken(`${base()}/${partition(0)}`, eventHubsToken(sr, policy.keyName));
          if (status !== expected) wrong.push(`${policy.keyName} @ ${sr}: ${status}, expected ${expected}`);
        }
      }
      assert.deepEqual(wrong, []);
    });
  });
});
