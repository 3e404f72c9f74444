import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createLog } from '../../src/hub/log.js';
import { createRegistry, createServiceClient } from '../../src/clients/service-clients.js';
import { startTestHub, type TestHub } from '../helpers/hub.js';
import { deviceToken, rawConnect, subscribe } from '../helpers/mqtt.js';
import { until } from '../helpers/devices.js';
import { consumer } from '../helpers/events.js';

// `hub start --log-level debug`: one line per REST request (operation, method, path, status, time,
// tracking id), each MQTT connect and subscribe with its CONNACK or SUBACK code and why, each CBS
// put-token and link attach on the Event Hubs endpoint; refusals at info; no secret in any line.

describe('hub log at debug level', () => {
  let t: TestHub;
  const lines: string[] = [];
  const logged = (pattern: RegExp) => lines.some((line) => pattern.test(line));
  const waitFor = (pattern: RegExp) => until(() => logged(pattern), `a log line matching ${pattern}`);
  let deviceKey = '';

  before(async () => {
    t = await startTestHub({ log: createLog('debug', (line) => lines.push(line)) });
    deviceKey = (await createRegistry(t.connection).create({ deviceId: 'log-dev' })).responseBody.authentication!.symmetricKey!.primaryKey!;
  });
  after(() => t.dispose());

  test('each REST request is one line named by its IoT Hub operation, with status, time and tracking id', async () => {
    const registry = createRegistry(t.connection);
    await registry.get('log-dev');
    await registry.updateTwin('log-dev', { tags: { room: 'a' } }, '*');
    await registry.createQuery('SELECT * FROM devices').nextAsTwin();
    await assert.rejects(createServiceClient(t.connection).invokeDeviceMethod('log-dev', { methodName: 'reboot', payload: null }));

    const line = /debug rest: Devices_GetIdentity: GET \/devices\/log-dev\?api-version=[^ ]+ 200 \d+\.\d ms \(tracking id [0-9a-f]{32}\)$/m;
    assert.ok(logged(line), lines.join(''));
    assert.ok(logged(/debug rest: Devices_UpdateTwin: PATCH \/twins\/log-dev\S* 200 /));
    assert.ok(logged(/debug rest: Query_GetTwins: POST \/devices\/query\S* 200 /));
    // A failed request is also an info line with its error code; the debug line carries its status.
    assert.ok(logged(/info +rest: Devices_InvokeMethod: POST \/twins\/log-dev\/methods\S*: 404 DeviceNotOnline /));
    assert.ok(logged(/debug rest: Devices_InvokeMethod: POST \/twins\/log-dev\/methods\S* 404 /));
  });

  test('MQTT: an accepted connect and subscription at debug with their codes; refusals at info with the reason', async () => {
    const client = await rawConnect(t.hub, { deviceId: 'log-dev' }, deviceToken({ deviceId: 'log-dev' }, deviceKey));
    if (typeof client === 'number') assert.fail(`connect refused with CONNACK ${client}`);
    try {
      await waitFor(/debug mqtt: log-dev connected: CONNACK 0 \(clean session\)/);
      assert.deepEqual(await subscribe(client, ['$iothub/twin/res/#', 'devices/other/messages/devicebound/#'], 1), [1, 128]);
      assert.ok(logged(/debug mqtt: log-dev subscribed to '\$iothub\/twin\/res\/#': SUBACK 1/));
      assert.ok(logged(/info +mqtt: refused the subscription of log-dev to 'devices\/other\/messages\/devicebound\/#': SUBACK 128, /));
    } finally {
      client.end(true);
    }

    const expired = deviceToken({ deviceId: 'log-dev' }, deviceKey, { ttlSeconds: -60 });
    assert.equal(await rawConnect(t.hub, { deviceId: 'log-dev' }, expired), 5);
    assert.ok(logged(/info +mqtt: refused the connection of log-dev: CONNACK 5, the SAS token has expired/));
    const wrongKey = deviceToken({ deviceId: 'log-dev' }, Buffer.alloc(32, 1).toString('base64'));
    assert.equal(await rawConnect(t.hub, { deviceId: 'log-dev' }, wrongKey), 5);
    assert.ok(logged(/info +mqtt: refused the connection of log-dev: CONNACK 5, the SAS token's signature does not match/));
  });

  test('Event Hubs endpoint: put-token on $cbs and each link attach; a bad token is refused at info', async () => {
    const good = consumer(t.hub.eventHubConnectionString());
    try {
      await good.getPartitionIds();
    } finally {
      await good.close();
    }
    assert.ok(logged(/debug amqp: put-token on \$cbs for '[^']*iothub-tut\/\$management' from [^ ]+: accepted/), lines.join(''));
    assert.ok(logged(/debug amqp: attached the link '[^']+' to '\$cbs'/));
    assert.ok(logged(/debug amqp: attached the link '[^']+' to '\$management'/));

    const wrong = t.hub
      .eventHubConnectionString()
      .replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 2).toString('base64')}`);
    const bad = consumer(wrong);
    try {
      await assert.rejects(bad.getPartitionIds());
    } finally {
      await bad.close();
    }
    assert.ok(logged(/info +amqp: refused a put-token on \$cbs for '[^']*' from [^ ]+: 401 /));
  });

  test('store: each commit at debug, with the statements and tables it wrote and its time; device-to-cloud batches too', async () => {
    const commit = (what: string) => new RegExp(`debug store: commit: [^\\n]*${what}[^\\n]* in \\d+\\.\\d ms$`, 'm');
    // before() registered log-dev: its identity and its twin in one transaction.
    assert.ok(logged(commit('INSERT identities')), lines.join(''));
    await createRegistry(t.connection).updateTwin('log-dev', { tags: { floor: 2 } }, '*');
    await waitFor(commit('INSERT twins'));

    const client = await rawConnect(t.hub, { deviceId: 'log-dev' }, deviceToken({ deviceId: 'log-dev' }, deviceKey));
    if (typeof client === 'number') assert.fail(`connect refused with CONNACK ${client}`);
    try {
      await new Promise<void>((resolve, reject) =>
        client.publish('devices/log-dev/messages/events/', 'hello', { qos: 1 }, (err) => (err ? reject(err) : resolve())),
      );
      // The event log's batches are committed by its writer thread (the data dir is a file).
      await waitFor(commit('INSERT events'));
    } finally {
      client.end(true);
    }
  });

  test('no line holds a key or a signature', () => {
    const secrets = [deviceKey, t.hub.auth.policy('iothubowner')!.primaryKey, t.hub.auth.policy('service')!.primaryKey];
    for (const line of lines) {
      for (const secret of secrets) assert.ok(!line.includes(secret), `a key in: ${line}`);
      assert.doesNotMatch(line, /sig=(?!\*\*\*)/, 'a signature');
    }
  });
});
