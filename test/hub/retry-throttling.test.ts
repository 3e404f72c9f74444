import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import deviceSdk from 'azure-iot-device';
import { createRegistry, createServiceClient } from '../../src/clients/service-clients.js';
import { parseConnection, type ServiceConnection } from '../../src/clients/connection-string.js';
import { isTransient, withRetry } from '../../src/clients/retry.js';
import { ToolkitError } from '../../src/clients/errors.js';
import { createDevice } from '../../src/apps/create-identity.js';
import { sendC2d } from '../../src/apps/send-c2d.js';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import { Throttle } from '../../src/hub/throttling.js';
import { LocalHub } from '../../src/hub/server.js';
import { CliProcess, runCli } from '../helpers/cli.js';
import { restCall, startTestHub, tempDir } from '../helpers/hub.js';
import { closed, deviceToken, rawConnect } from '../helpers/mqtt.js';

/** Fires `count` registry creates at once; returns how many succeeded and the error class names of the rest. */
async function burst(connection: ServiceConnection, prefix: string, count: number): Promise<{ ok: number; errors: string[] }> {
  const registry = createRegistry(connection);
  const results = await Promise.allSettled(Array.from({ length: count }, (_, i) => registry.create({ deviceId: `${prefix}-${i}` })));
  const errors = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).constructor.name] : []));
  return { ok: count - errors.length, errors };
}

describe('retry: withRetry', () => {
  test('only throttling, unavailability and refused or reset connections are transient', () => {
    class ThrottlingError extends Error {}
    class ServiceUnavailableError extends Error {}
    class DeviceNotFoundError extends Error {}
    assert.equal(isTransient(new ThrottlingError('x')), true);
    assert.equal(isTransient(new ServiceUnavailableError('x')), true);
    assert.equal(isTransient(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })), true);
    assert.equal(isTransient(Object.assign(new Error('read'), { code: 'ECONNRESET' })), true);
    assert.equal(isTransient(new DeviceNotFoundError('x')), false);
    assert.equal(isTransient(Object.assign(new Error('Unauthorized'), { response: { statusCode: 401 } })), false);
  });

  test('a permanent error is thrown at once, unchanged; a transient one is retried until it passes', async () => {
    let calls = 0;
    const permanent = new Error('not found');
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw permanent;
        },
        { attempts: 5, baseMs: 1, maxMs: 1 },
      ),
      (err) => err === permanent,
    );
    assert.equal(calls, 1);
    calls = 0;
    const value = await withRetry(
      async () => {
        if (++calls < 3) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
        return 'done';
      },
      { attempts: 5, baseMs: 1, maxMs: 5 },
    );
    assert.equal(value, 'done');
    assert.equal(calls, 3);
  });

  test('a hub that is down for the first second: the call succeeds once it is up', async () => {
    // A first run makes the data dir's CA and keys and picks a port; the hub then comes back late on that port.
    const first = await startTestHub();
    const { dataDir, connection } = first;
    const port = first.hub.port;
    await first.stop();
    let late: LocalHub | undefined;
    try {
      const startLate = new Promise((r) => setTimeout(r, 1000)).then(async () => (late = await LocalHub.start({ dataDir, port })));
      const started = Date.now();
      const created = await withRetry(() => createRegistry(connection).create({ deviceId: 'late-1' }), {
        attempts: 40,
        baseMs: 50,
        maxMs: 500,
      });
      assert.equal(created.responseBody.deviceId, 'late-1');
      assert.ok(Date.now() - started >= 900, 'it had to wait for the hub');
      await startLate;
    } finally {
      await late?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('a hub that stays down: gives up after the bound with one clear line (exit 8)', async () => {
    const t = await startTestHub();
    await t.dispose();
    let calls = 0;
    const err = await withRetry(
      () => {
        calls++;
        return createRegistry(t.connection).get('x');
      },
      { attempts: 3, baseMs: 10, maxMs: 20, what: "reading device 'x'" },
    ).catch((e) => e);
    assert.ok(err instanceof ToolkitError);
    assert.equal(err.exitCode, 8);
    assert.match(err.message, /^reading device 'x': the hub is not reachable .*\(gave up after 3 attempts\)$/);
    assert.equal(calls, 3);
  });
});

describe('throttling: IoT Hub S1 limits', () => {
  test('token buckets: a minute of registry operations at once, then 100 a minute', () => {
    let now = 0;
    const throttle = new Throttle('s1', () => now);
    let allowed = 0;
    while (throttle.allow('registry')) allowed++;
    assert.equal(allowed, 100);
    now += 600; // 1.67/s: one more after 0.6 s
    assert.equal(throttle.allow('registry'), true);
    assert.equal(throttle.allow('registry'), false);
    assert.equal(new Throttle('s3', () => now).allow('registry'), true);
  });

  test('a burst of creates gets 429 ThrottlingException (ThrottlingError in the SDK); create-device still completes through its retry', async () => {
    let now = 0; // moved by hand, so a slow machine's burst gets no refills
    const throttle = new Throttle('s1', () => now);
    const t = await startTestHub({ throttle });
    try {
      // The minute's 100 operations (the test above), less 10 for the burst: 40 creates at once, not 130.
      for (let i = 0; i < 90; i++) assert.equal(throttle.allow('registry'), true);
      const { ok, errors } = await burst(t.connection, 'burst', 40);
      assert.equal(ok, 10, "the rest of the minute's worth succeeded");
      assert.deepEqual(errors, Array(30).fill('ThrottlingError'));

      const token = createSasToken('localhost', t.hub.auth.policy('iothubowner')!.primaryKey, 'iothubowner', 600);
      const raw = await restCall(t, 'GET', '/devices/any?api-version=2021-04-12', token);
      assert.equal(raw.status, 429);
      assert.equal(raw.body.errorCode, 429001);
      assert.match(raw.body.Message, /^ErrorCode:ThrottlingException;/);

      setTimeout(() => (now += 1000), 300); // refills while createDevice backs off
      const device = await createDevice(t.connection, { deviceId: 'after-burst' });
      assert.equal(device.created, true);
    } finally {
      await t.dispose();
    }
  });

  test('queries: 20 a minute on S1, then 429; a direct method takes a meter per started 4 KB of its request', async () => {
    let now = 0; // moved by hand: nothing refills unless the test says so
    const throttle = new Throttle('s1', () => now);
    const t = await startTestHub({ throttle });
    try {
      const registry = createRegistry(t.connection);
      const outcome = (call: Promise<unknown>) =>
        call.then(
          () => 'ok',
          (err: Error) => err.constructor.name,
        );
      const results = [];
      for (let i = 0; i < 21; i++) results.push(await outcome(registry.createQuery('SELECT * FROM devices').nextAsTwin()));
      assert.deepEqual(results, [...Array(20).fill('ok'), 'ThrottlingError']);

      // Raw calls: the service SDK's Client retries a 429 for up to four minutes.
      const token = createSasToken('localhost', t.hub.auth.policy('iothubowner')!.primaryKey, 'iothubowner', 600);
      const invoke = async (payload: string) => {
        const body = JSON.stringify({ methodName: 'm', payload, responseTimeoutInSeconds: 5 });
        return (await restCall(t, 'POST', '/twins/nobody/methods?api-version=2021-04-12', token, body)).status;
      };
      while (throttle.allow('methods'));
      now += 50; // S1 meters 40 a second: two meters come back
      assert.equal(await invoke('x'.repeat(10_000)), 429, 'a 10 KB call needs three');
      assert.equal(await invoke('small'), 404, 'a small call needs one (and finds no device)');
      assert.equal(await invoke('small'), 404);
      assert.equal(await invoke('small'), 429, 'both meters are spent');
    } finally {
      await t.dispose();
    }
  });

  test('new MQTT connections beyond the throttle are refused with CONNACK 3 (server unavailable)', async () => {
    const throttle = new Throttle('s1', () => 0); // a stopped clock: nothing refills
    const t = await startTestHub({ throttle });
    try {
      const key = (await createRegistry(t.connection).create({ deviceId: 'conn-1' })).responseBody.authentication!.symmetricKey!.primaryKey;
      assert.equal(
        await rawConnect(t.hub, { deviceId: 'conn-1' }, deviceToken({ deviceId: 'conn-1' }, key)).then((c) =>
          typeof c === 'number' ? c : (c.end(true), 0),
        ),
        0,
      );
      while (throttle.allow('connect')); // what a burst of 6,000 connects in a minute would leave
      assert.equal(await rawConnect(t.hub, { deviceId: 'conn-1' }, deviceToken({ deviceId: 'conn-1' }, key)), 3);
    } finally {
      await t.dispose();
    }
  });

  test('device-to-cloud sends beyond the throttle are not acknowledged: the sender is disconnected and nothing is stored', async () => {
    const throttle = new Throttle('s1', () => 0); // a stopped clock: nothing refills
    const t = await startTestHub({ throttle });
    try {
      const key = (await createRegistry(t.connection).create({ deviceId: 'd2c-1' })).responseBody.authentication!.symmetricKey!.primaryKey;
      const client = await rawConnect(t.hub, { deviceId: 'd2c-1' }, deviceToken({ deviceId: 'd2c-1' }, key));
      assert.ok(typeof client !== 'number');
      const publish = (n: number) =>
        new Promise<void>((resolve, reject) =>
          client.publish('devices/d2c-1/messages/events/', `m${n}`, { qos: 1 }, (err) => (err ? reject(err) : resolve())),
        );
      await publish(1);
      assert.equal(t.hub.eventLog.partitionInfo(t.hub.eventLog.partitionOf('d2c-1')).lastSequenceNumber, 0, 'the first message is stored');
      while (throttle.allow('d2c')); // what a minute of sends at the S1 rate would leave
      const refused = publish(2).then(
        () => 'acknowledged',
        () => 'not acknowledged',
      );
      await closed(client);
      client.end(true);
      assert.equal(await Promise.race([refused, new Promise((r) => setTimeout(() => r('not acknowledged'), 100))]), 'not acknowledged');
      assert.equal(t.hub.eventLog.partitionInfo(t.hub.eventLog.partitionOf('d2c-1')).lastSequenceNumber, 0, 'nothing more was stored');
    } finally {
      await t.dispose();
    }
  });

  test('cloud-to-device sends: 100 a minute on S1 and S2, 5,000 on S3', () => {
    const drain = (tier: 's1' | 's2' | 's3') => {
      const throttle = new Throttle(tier, () => 0);
      let allowed = 0;
      while (throttle.allow('c2d')) allowed++;
      return allowed;
    };
    assert.deepEqual([drain('s1'), drain('s2'), drain('s3')], [100, 100, 5000]);
  });

  test('a throttled cloud-to-device send is refused (ThrottlingError in the SDK) and not queued; send-c2d backs off and delivers it', async () => {
    let now = 0; // moved by hand: nothing refills unless the test says so
    const throttle = new Throttle('s1', () => now);
    const t = await startTestHub({ throttle });
    const client = createServiceClient(t.connection);
    try {
      await createRegistry(t.connection).create({ deviceId: 'c2d-throttled' });
      await client.open();
      await client.send('c2d-throttled', new deviceSdk.Message('first'));
      assert.equal(t.hub.c2d.depth('c2d-throttled'), 1);
      while (throttle.allow('c2d')); // what a minute of sends at the S1 rate would leave
      const refused = await client.send('c2d-throttled', new deviceSdk.Message('second')).then(
        () => undefined,
        (err: Error & { amqpError?: { condition: string; description: string } }) => err,
      );
      assert.equal(refused?.constructor.name, 'ThrottlingError');
      assert.equal(refused.amqpError?.condition, 'com.microsoft:device-container-throttled');
      assert.match(refused.amqpError.description, /^ErrorCode:ThrottlingException;/);
      assert.equal(t.hub.c2d.depth('c2d-throttled'), 1, 'the refused message was not queued');

      setTimeout(() => (now += 1000), 300); // S1 refills one send in 0.6 s, while send-c2d backs off
      const sent = await sendC2d(t.connection, { deviceId: 'c2d-throttled', ack: 'none', message: 'third' });
      assert.equal(sent.sent, 1);
      assert.equal(t.hub.c2d.depth('c2d-throttled'), 2);
    } finally {
      await client.close();
      await t.dispose();
    }
  });

  test('hub start --throttle s1: a burst is throttled, and create-device still completes', async () => {
    const home = tempDir();
    const env = { IOTHUB_TUT_HOME: home };
    const hub = new CliProcess(
      ['hub', 'start', '--port', '0', '--amqp-port', '0', '--in-memory', '--throttle', 's1', '--json', '--show-secrets'],
      env,
    );
    try {
      const started = await hub.waitFor((l) => l.event === 'started');
      const connection = parseConnection('service', started.serviceConnectionString, {
        ca: readFileSync(started.caFile, 'utf8'),
        port: started.port,
      });
      // The hub's clock is real here: S1 refills 100 registry operations a minute while the burst runs.
      const began = Date.now();
      const { errors } = await burst(connection, 'cli-burst', 200);
      const refills = Math.ceil(((Date.now() - began) / 60_000) * 100);
      assert.ok(
        errors.every((e) => e === 'ThrottlingError'),
        errors.join(),
      );
      assert.ok(errors.length > 0 && errors.length >= 100 - refills - 1, `throttled: ${errors.length} with ${refills} refills`);
      const r = await runCli(['create-device', '-d', 'cli-after-burst', '--json'], env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).created, true);
    } finally {
      assert.equal(await hub.stop(), 0);
      rmSync(home, { recursive: true, force: true });
    }
  });
});
