import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { CliProcess, createIdentity, homeFor, jsonLines, runCli, serviceCall } from '../helpers/cli.js';
import { startTestHub, type TestHub } from '../helpers/hub.js';
import { parseConnection } from '../../src/clients/connection-string.js';
import { createDeviceClient, type DeviceClient } from '../../src/clients/device-clients.js';

// The inspection commands (twin show, invoke-method, query) as a user runs them: the CLI as a
// subprocess against a hub (in this process, announced to the CLI by a profile as `hub start` would),
// with the tutorial's device apps or an SDK module client answering.

// The tests only read, or call methods on an identity of their own: they run side by side.
describe('inspection commands: twin show, invoke-method, query', { concurrency: true }, () => {
  let t: TestHub;
  let home: string;
  let env: { IOTHUB_TUT_HOME: string };
  let module: DeviceClient;
  before(async () => {
    t = await startTestHub({ inMemory: true });
    home = homeFor(t);
    env = { IOTHUB_TUT_HOME: home };
    const moduleString = await createIdentity(home, 'myFirstDevice', 'myFirstModule');
    for (const deviceId of ['myDeviceId', 'q-1', 'q-2', 'q-3']) await createIdentity(home, deviceId);
    // myFirstModule answers getFirmware, through the SDK's ModuleClient.
    let subscribed!: () => void;
    const methodsEnabled = new Promise<void>((resolve) => (subscribed = resolve));
    module = await createDeviceClient(parseConnection('device', moduleString, { ca: t.hub.tls.ca, port: t.hub.port }), 'mqtt', {
      onMethodsEnabled: () => subscribed(),
    });
    await module.open();
    (module as unknown as { onMethod: DeviceClient['onDeviceMethod'] }).onMethod('getFirmware', (request, response) =>
      response.send(200, { version: '1.2.3', asked: request.payload }),
    );
    await methodsEnabled;
    await serviceCall(
      home,
      'PATCH',
      '/twins/myFirstDevice/modules/myFirstModule',
      { properties: { desired: { telemetryInterval: 122 } } },
      {
        'If-Match': '*',
      },
    );
  });
  after(async () => {
    await module?.close();
    await t.dispose();
    rmSync(home, { recursive: true, force: true });
  });

  test('twin show: the module twin, with its desired properties, as JSON and as text', async () => {
    const json = await runCli(['twin', 'show', '-d', 'myFirstDevice', '-m', 'myFirstModule', '--json'], env);
    assert.equal(json.code, 0, json.stderr);
    const twin = JSON.parse(json.stdout);
    assert.equal(twin.deviceId, 'myFirstDevice');
    assert.equal(twin.moduleId, 'myFirstModule');
    assert.equal(twin.properties.desired.telemetryInterval, 122);
    assert.equal(twin.properties.desired.$version, 2);
    assert.ok(twin.etag && twin.properties.reported.$metadata, json.stdout);
    assert.equal(twin._registry, undefined, "the SDK's registry is not printed");

    const text = await runCli(['twin', 'show', '-d', 'myFirstDevice', '-m', 'myFirstModule'], env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^Module twin 'myFirstDevice\/myFirstModule':$/m);
    assert.match(text.stdout, /^ {6}"telemetryInterval": 122,$/m);
  });

  test('twin show without -m: the device twin', async () => {
    const r = await runCli(['twin', 'show', '-d', 'myDeviceId', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const twin = JSON.parse(r.stdout);
    assert.equal(twin.deviceId, 'myDeviceId');
    assert.equal(twin.moduleId, undefined);
  });

  test('invoke-method: any method on a device (reboot-device answers it), its status and payload; another status is exit 1', async () => {
    const device = new CliProcess(['reboot-device', '-d', 'myDeviceId', '--reboot-seconds', '0', '--json'], env);
    try {
      await device.waitFor((l) => l.event === 'ready');
      const json = await runCli(
        ['invoke-method', 'rebootDevice', '-d', 'myDeviceId', '--payload', '"now"', '--response-timeout', '10', '--json'],
        env,
      );
      assert.equal(json.code, 0, json.stderr);
      assert.deepEqual(JSON.parse(json.stdout), { status: 200, payload: { Response: 'Rebooting device' } });
      const request = await device.waitFor((l) => l.event === 'request');
      assert.deepEqual(request, { event: 'request', methodName: 'rebootDevice', payload: 'now' });

      const text = await runCli(['invoke-method', 'selfDestruct', '-d', 'myDeviceId'], env);
      assert.equal(text.code, 1, text.stderr);
      assert.match(text.stdout, /Status\s+404$/m);
      assert.match(text.stdout, /Payload\s+\{"Response":"Unknown method"\}$/m);
      assert.equal(text.stderr, "error: device 'myDeviceId' answered selfDestruct with status 404\n");
    } finally {
      assert.equal(await device.stop(), 0, device.stderr);
    }
  });

  test('invoke-method -m: a method on a module, with a JSON payload', async () => {
    const r = await runCli(
      ['invoke-method', 'getFirmware', '-d', 'myFirstDevice', '-m', 'myFirstModule', '--payload', '{"full":true}', '--json'],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { status: 200, payload: { version: '1.2.3', asked: { full: true } } });
  });

  test('query: every result over several pages; --top stops early and says the hub has more', async () => {
    const sql = "SELECT deviceId FROM devices WHERE STARTSWITH(deviceId, 'q-')";
    const all = await runCli(['query', sql, '--page-size', '1', '--json'], env);
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(jsonLines(all.stdout), [{ deviceId: 'q-1' }, { deviceId: 'q-2' }, { deviceId: 'q-3' }]);

    const text = await runCli(['query', sql, '--page-size', '1'], env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^3 results in 3 pages$/m);

    const top = await runCli(['query', sql, '--page-size', '2', '--top', '1'], env);
    assert.equal(top.code, 0, top.stderr);
    assert.match(top.stdout, /"deviceId": "q-1"/);
    assert.doesNotMatch(top.stdout, /q-2/);
    assert.match(top.stdout, /^1 result in 1 page \(--top 1 reached; the hub has more\)$/m);
  });

  test('query: module twins and aggregates', async () => {
    const modules = await runCli(['query', "SELECT * FROM devices.modules WHERE deviceId = 'myFirstDevice'", '--json'], env);
    assert.equal(modules.code, 0, modules.stderr);
    assert.deepEqual(
      jsonLines(modules.stdout).map((t) => t.moduleId),
      ['myFirstModule'],
    );
    const count = await runCli(['query', "SELECT COUNT() AS n FROM devices WHERE STARTSWITH(deviceId, 'q-')", '--json'], env);
    assert.equal(count.code, 0, count.stderr);
    assert.deepEqual(jsonLines(count.stdout), [{ n: 3 }]);
  });

  test('query: a syntax error is one line, exit 2', async () => {
    const r = await runCli(['query', 'SELECT * FORM devices'], env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: running the query: .*position/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});
