import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { homeFor, runCli } from '../helpers/cli.js';
import { startTestHub, type TestHub } from '../helpers/hub.js';
import { registerIdentity } from '../helpers/devices.js';
import {
  across,
  COMMANDS,
  deviceString,
  eventHubString,
  ofKind,
  ofServiceCommand,
  oneLineError,
  serviceString,
  walk,
  type CommandUnderTest,
} from '../helpers/error-table.js';
import { createRegistry } from '../../src/clients/service-clients.js';
import { createDeviceClient, type DeviceClient } from '../../src/clients/device-clients.js';

// README's "Errors and exit codes" table, the rows against a running hub (unknown identity, wrong key
// or right, timeouts, offline device, conflict, busy port, oversized payload), with the hub in this
// process, announced to the CLI by a profile as `hub start` would. The service commands run in this
// process too (which has their SDK loaded already, for its own clients; what they leave the hub's
// dispose closes); the device commands, whose closed clients can leave the SDK's timers, in a worker
// thread; the first of each row and kind as a subprocess.
const SERVICE_IN_PROCESS = { inProcess: ofServiceCommand };

describe('errors and exit codes: against a hub', () => {
  let t: TestHub;
  let home: string;
  let env: Record<string, string>;
  let mute: DeviceClient;
  before(async () => {
    t = await startTestHub();
    home = homeFor(t);
    env = { IOTHUB_TUT_HOME: home };
    const registry = createRegistry(t.connection);
    await registry.create({ deviceId: 'known' });
    await registry.addModule({ deviceId: 'known', moduleId: 'm1' });
    // Online, subscribed to direct methods, and never answering them.
    mute = await createDeviceClient(await registerIdentity(t, 'mute'));
    await mute.open();
    for (const method of ['rebootDevice', 'slow']) mute.onDeviceMethod(method, () => {});
  });
  after(async () => {
    await mute.close();
    await t.dispose();
    rmSync(home, { recursive: true, force: true });
  });

  test('unknown device (exit 3): says how to create it, service and device side', async () => {
    const create = /Device nosuch not registered\. Create it with 'iothub-tut create-device -d nosuch'\.$/m;
    await walk(
      env,
      [
        ...across(
          [COMMANDS[2]!],
          () => ['update-module-twin', '--device', '-d', 'nosuch'],
          3,
          /^error: reading device twin 'nosuch': Device nosuch not registered\. Create it with 'iothub-tut create-device -d nosuch'\.$/m,
        ),
        ...across(
          ofKind('service').filter((c) => c.target.includes('known') && c !== COMMANDS[2]),
          (c) => [...c.run, '-d', 'nosuch'],
          3,
          create,
        ),
        ...across(
          ofKind('device'),
          (c) => [...c.run, '-d', 'nosuch', ...(c.target.includes('-m') ? ['--device'] : [])],
          3,
          /^error: looking up device 'nosuch': Device nosuch not registered\. Create it with 'iothub-tut create-device -d nosuch'\.$/m,
        ),
      ],
      SERVICE_IN_PROCESS,
    );
  });

  test('unknown module (exit 3): says how to create it', async () => {
    const withModules = COMMANDS.filter((c) => c.target.includes('known') && (c.target.includes('-m') || c.name.startsWith('invoke')));
    await walk(
      env,
      [
        ...across(
          [COMMANDS[2]!],
          () => ['update-module-twin', '-d', 'known', '-m', 'nosuch'],
          3,
          /^error: reading module twin 'known\/nosuch': not found: Module nosuch on device known not registered\. Create it with 'iothub-tut create-module -d known -m nosuch'\.$/m,
        ),
        ...across(
          withModules,
          (c) => [...c.run, '-d', 'known', '-m', 'nosuch'],
          3,
          /Create it with 'iothub-tut create-module -d known -m nosuch'\.$/m,
        ),
      ],
      SERVICE_IN_PROCESS,
    );
    assert.ok(withModules.length >= 5, withModules.map((c) => c.name).join());
  });

  test('wrong key (exit 4): service, device and Event Hub-compatible endpoint', async () => {
    await walk(
      env,
      [
        ...across(
          ofKind('service'),
          (c) => [...c.run, ...c.target, '-c', serviceString()],
          4,
          /not authorized: .*Check the key in the connection string\.$/m,
        ),
        ...across(
          ofKind('device'),
          (c) => [...c.run, '-c', deviceString('known')],
          4,
          /not authorized: .*Check the key in the connection string\.$/m,
        ),
        ...across(
          ofKind('eventhub'),
          (c) => [...c.run, '-c', eventHubString(`sb://localhost:${t.hub.eventHubPort}/`)],
          4,
          /^error: reading the Event Hub-compatible endpoint: not authorized: .*[^.]\. Check the key in the Event Hub-compatible connection string\.$/m,
        ),
      ],
      SERVICE_IN_PROCESS,
    );
  });

  test('a shared access policy without the right (exit 4)', async () => {
    const policy = (c: CommandUnderTest) => (['twin show', 'query'].includes(c.name) ? 'device' : 'registryRead');
    await walk(
      env,
      [
        ...across(
          ofKind('service'),
          (c) => [...c.run, ...c.target, '-c', t.hub.serviceConnectionString(policy(c))],
          4,
          /forbidden: .*The shared access policy lacks the right for this\.$/m,
        ),
        // The device commands look the key up with the service connection.
        ...across(ofKind('device'), (c) => [...c.run, ...c.target], 4, /^error: looking up .*forbidden: .*lacks the right/m, {
          IOTHUB_CONNECTION_STRING: t.hub.serviceConnectionString('service'),
        }),
      ],
      SERVICE_IN_PROCESS,
    );
  });

  test('timed out (exit 5): patches, messages, direct methods not answered in time (504101)', async () => {
    await walk(
      env,
      [
        ...across(
          [COMMANDS[7]!],
          () => ['receive-twin-patch', '-d', 'known', '-m', 'm1', '--timeout', '1'],
          5,
          /^error: no desired property patch within 1 s \(received 0\)$/m,
        ),
        ...across(
          ofKind('eventhub'),
          () => ['monitor-events', '--count', '2', '--timeout', '1'],
          5,
          /^error: timed out after 1 s: received 0 of 2 messages$/m,
        ),
        ...across(
          [COMMANDS[3]!],
          () => ['invoke-reboot', '-d', 'mute', '--response-timeout', '5'],
          5,
          /^error: invoking rebootDevice on device 'mute': timed out: /m,
        ),
        ...across(
          [COMMANDS[4]!],
          () => ['invoke-method', 'slow', '-d', 'mute', '--response-timeout', '5'],
          5,
          /^error: invoking slow on device 'mute': timed out: /m,
        ),
      ],
      SERVICE_IN_PROCESS,
    );
  });

  test('device offline (exit 6): 404103 DeviceNotOnline', async () => {
    await walk(
      env,
      across(
        ofKind('service').filter((c) => c.name.startsWith('invoke')),
        (c) => [...c.run, ...c.target],
        6,
        /^error: invoking (rebootDevice|ping) on device 'known': the device is not online \(404103 DeviceNotOnline\): start the device app first, or give it time with --connect-timeout\.$/m,
      ),
      SERVICE_IN_PROCESS,
    );
  });

  test('conflict (exit 7): the twin changed between the read and the patch', async () => {
    // The service changes the twin right after answering the CLI's read, before its guarded patch arrives.
    const http = (t.hub as unknown as { http: import('node:http').Server }).http;
    const meddle = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
      if (req.method === 'GET' && req.url?.startsWith('/twins/known/modules/m1'))
        res.once('finish', () =>
          t.hub.twins.patchFromService({ deviceId: 'known', moduleId: 'm1' }, { properties: { desired: { other: 1 } } }),
        );
    };
    http.on('request', meddle);
    try {
      oneLineError(
        await runCli(['update-module-twin', '-d', 'known', '-m', 'm1'], env),
        7,
        /the twin changed since it was read \(412 PreconditionFailed\); run the command again\./,
      );
    } finally {
      http.off('request', meddle);
    }
  });

  test('port in use (exit 8): hub start on a busy port says so in one line', async () => {
    oneLineError(
      await runCli(['hub', 'start', '--in-memory', '--port', String(t.hub.port), '--amqp-port', '0'], env),
      8,
      /^error: port \d+ is in use: stop what runs there, or pick another with --port$/m,
    );
  });

  test('an Event Hub-compatible endpoint that closes the connection before it opens (exit 8): TLS to the plain-AMQP port', async () => {
    const tls = eventHubString(
      `sb://localhost:${t.hub.eventHubPort}/`,
      t.hub.eventHubConnectionString().match(/SharedAccessKey=([^;]+)/)![1],
    ).replace(';UseDevelopmentEmulator=true', '');
    oneLineError(
      await runCli(['monitor-events', '--count', '1', '--timeout', '1', '-c', tls], env),
      8,
      /^error: reading the Event Hub-compatible endpoint: the endpoint closed the connection before it opened; check Endpoint \(a local hub's Event Hub-compatible endpoint is plain AMQP: its connection string ends with ';UseDevelopmentEmulator=true'\)\.$/m,
    );
  });

  test('payload larger than IoT Hub accepts (exit 9)', async () => {
    oneLineError(
      await runCli(['send-telemetry', '-d', 'known', '--message-size', '300000'], env),
      9,
      /^error: each message would be 300108 bytes: IoT Hub accepts device-to-cloud messages up to 262144 bytes \(256 KB\), body and properties together\.$/m,
    );
  });
});
