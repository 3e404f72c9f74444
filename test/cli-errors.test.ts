import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliProcess, runCli, type CliResult } from './helpers/cli.js';
import { startTestHub, tempDir, type TestHub } from './helpers/hub.js';
import { registerIdentity } from './helpers/devices.js';
import { createRegistry } from '../src/clients/service-clients.js';
import { createDeviceClient, type DeviceClient } from '../src/clients/device-clients.js';
import { Throttle, type ThrottleKind } from '../src/hub/throttling.js';

// README's "Errors and exit codes" table, row by row, across every command each row applies to,
// with the CLI as a subprocess. The hubs run in this process and are announced to the CLI by a
// profile, as `hub start` would.

const KEY = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
const STACK_FRAME = /\bat .+:\d+:\d+/;
/** Makes name resolution fail in the CLI as it does without DNS (test/helpers/no-dns.ts). */
const NO_DNS = { NODE_OPTIONS: `--import=${fileURLToPath(new URL('./helpers/no-dns.js', import.meta.url))}` };

const serviceString = (key = KEY, policy = 'iothubowner', host = 'localhost') =>
  `HostName=${host};SharedAccessKeyName=${policy};SharedAccessKey=${key}`;
const deviceString = (deviceId: string, key = KEY, moduleId?: string, host = 'localhost') =>
  `HostName=${host};DeviceId=${deviceId};${moduleId ? `ModuleId=${moduleId};` : ''}SharedAccessKey=${key}`;
const eventHubString = (endpoint: string, key = KEY) =>
  `Endpoint=${endpoint};SharedAccessKeyName=service;SharedAccessKey=${key};EntityPath=iothub-tut;UseDevelopmentEmulator=true`;

function oneLineError(r: CliResult, exitCode: number, message: RegExp): void {
  assert.equal(r.code, exitCode, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, /^error: /);
  assert.match(r.stderr, message);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, STACK_FRAME, 'no stack trace');
  assert.ok(!r.stderr.includes(KEY.slice(0, 20)), 'the key is not echoed');
}

/** Commander's own usage errors add a hint line after the error. */
function usageError(r: CliResult, message: RegExp): void {
  assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, /^error: /);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, STACK_FRAME, 'no stack trace');
}

/** A home whose profile points the CLI at an in-process hub. */
function homeFor(t: TestHub): string {
  const home = tempDir();
  const caFile = join(home, 'ca.pem');
  writeFileSync(caFile, t.hub.tls.ca);
  const profile = {
    hostName: 'localhost',
    port: t.hub.port,
    eventHubPort: t.hub.eventHubPort,
    caFile,
    pid: process.pid,
    dataDir: t.dataDir,
    startedAt: new Date().toISOString(),
    serviceConnectionString: t.connection.connectionString,
    eventHubConnectionString: t.hub.eventHubConnectionString(),
  };
  mkdirSync(join(home, 'hubs'));
  writeFileSync(join(home, 'hubs', `${process.pid}.json`), JSON.stringify(profile), { mode: 0o600 });
  return home;
}

type Kind = 'service' | 'device' | 'eventhub';

/**
 * Every command that talks to a hub: `run` is the command with what bounds its wait, `target` the
 * identity it acts on (the tests' 'known' device and its module 'm1') when no connection string names it.
 */
interface CommandUnderTest {
  name: string;
  kind: Kind;
  run: string[];
  target: string[];
}

const COMMANDS: CommandUnderTest[] = [
  { name: 'create-device', kind: 'service', run: ['create-device'], target: ['-d', 'fresh'] },
  { name: 'create-module', kind: 'service', run: ['create-module'], target: ['-d', 'fresh', '-m', 'fresh-m'] },
  { name: 'update-module-twin', kind: 'service', run: ['update-module-twin'], target: ['-d', 'known', '-m', 'm1'] },
  { name: 'invoke-reboot', kind: 'service', run: ['invoke-reboot', '--wait', '0'], target: ['-d', 'known'] },
  { name: 'invoke-method', kind: 'service', run: ['invoke-method', 'ping'], target: ['-d', 'known'] },
  { name: 'twin show', kind: 'service', run: ['twin', 'show'], target: ['-d', 'known', '-m', 'm1'] },
  { name: 'query', kind: 'service', run: ['query', 'SELECT * FROM devices'], target: [] },
  { name: 'receive-twin-patch', kind: 'device', run: ['receive-twin-patch', '--timeout', '30'], target: ['-d', 'known', '-m', 'm1'] },
  { name: 'update-reported', kind: 'device', run: ['update-reported'], target: ['-d', 'known', '-m', 'm1'] },
  { name: 'reboot-device', kind: 'device', run: ['reboot-device', '--count', '1'], target: ['-d', 'known'] },
  { name: 'send-telemetry', kind: 'device', run: ['send-telemetry', '--count', '1'], target: ['-d', 'known'] },
  { name: 'monitor-events', kind: 'eventhub', run: ['monitor-events', '--count', '1', '--timeout', '1'], target: [] },
  { name: 'answer-methods', kind: 'device', run: ['answer-methods', '--count', '1', '--timeout', '30'], target: ['-d', 'known'] },
];
const ofKind = (kind: Kind) => COMMANDS.filter((c) => c.kind === kind);

interface Case {
  name: string;
  args: string[];
  env?: Record<string, string>;
  check(r: CliResult): void;
}

/** Runs the cases a few at a time and reports every one that failed, by command. */
async function walk(env: Record<string, string>, cases: Case[], concurrency = 4): Promise<void> {
  const failures: string[] = [];
  const queue = [...cases];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const r = await runCli(c.args, { ...env, ...c.env }, 120_000);
        try {
          c.check(r);
        } catch (err) {
          failures.push(`${c.name} (${c.args.join(' ')}): ${(err as Error).message}`);
        }
      }
    }),
  );
  assert.deepEqual(failures, [], failures.join('\n\n'));
}

/** The same expected error for each of these commands. */
function across(
  commands: CommandUnderTest[],
  args: (c: CommandUnderTest) => string[],
  exitCode: number,
  message: RegExp,
  env?: Record<string, string>,
): Case[] {
  return commands.map((c) => ({ name: c.name, args: args(c), env, check: (r) => oneLineError(r, exitCode, message) }));
}

describe('errors and exit codes: bad input (exit 2)', () => {
  const home = tempDir();
  const env = { IOTHUB_TUT_HOME: home };
  after(() => rmSync(home, { recursive: true, force: true }));

  test('malformed service connection string, each missing field; from the flag or, for the key look-ups, the environment', async () => {
    const fields: Array<[string, RegExp]> = [
      [
        `SharedAccessKeyName=iothubowner;SharedAccessKey=${KEY}`,
        /Malformed service connection string: HostName is missing\. Expected a hub connection string \(portal: IoT hub > Shared access policies > iothubowner\)\.$/m,
      ],
      [`HostName=localhost;SharedAccessKey=${KEY}`, /Malformed service connection string: SharedAccessKeyName is missing/],
      ['HostName=localhost;SharedAccessKeyName=iothubowner', /Malformed service connection string: SharedAccessKey is missing/],
      ['HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=not base64!', /SharedAccessKey is not a base64 key/],
      ['just some text', /is not Key=Value/],
    ];
    const missingKeyName = `HostName=localhost;SharedAccessKey=${KEY}`;
    await walk(env, [
      ...fields.map(([cs, message]): Case => ({
        name: 'create-module',
        args: ['create-module', '-c', cs],
        check: (r) => oneLineError(r, 2, message),
      })),
      ...across(
        ofKind('service'),
        (c) => [...c.run, ...c.target, '-c', missingKeyName],
        2,
        /Malformed service connection string: SharedAccessKeyName is missing/,
      ),
      ...across(
        ofKind('device'),
        (c) => [...c.run, ...c.target],
        2,
        /Malformed service connection string: SharedAccessKeyName is missing/,
        { IOTHUB_CONNECTION_STRING: missingKeyName },
      ),
    ]);
  });

  test('malformed device or Event Hub-compatible connection string, each missing field', async () => {
    const fields: Array<[string, RegExp]> = [
      [
        `DeviceId=d1;SharedAccessKey=${KEY}`,
        /Malformed device connection string: HostName is missing\. Expected a device connection string \(portal: IoT hub > Devices > your device\)\.$/m,
      ],
      [`HostName=localhost;SharedAccessKey=${KEY}`, /Malformed device connection string: DeviceId is missing/],
      ['HostName=localhost;DeviceId=d1', /Malformed device connection string: SharedAccessKey is missing/],
      [`HostName=localhost;DeviceId=d1;ModuleId=;SharedAccessKey=${KEY}`, /ModuleId is empty/],
    ];
    await walk(env, [
      ...fields.map(([cs, message]): Case => ({
        name: 'update-reported',
        args: ['update-reported', '-c', cs],
        check: (r) => oneLineError(r, 2, message),
      })),
      ...across(
        ofKind('device'),
        (c) => [...c.run, '-c', `HostName=localhost;SharedAccessKey=${KEY}`],
        2,
        /Malformed device connection string: DeviceId is missing/,
      ),
      ...across(ofKind('device'), (c) => c.run, 2, /Malformed device connection string: DeviceId is missing/, {
        IOTHUB_DEVICE_CONNECTION_STRING: `HostName=localhost;SharedAccessKey=${KEY}`,
      }),
      ...across(
        ofKind('eventhub'),
        (c) => [...c.run, '-c', `Endpoint=sb://localhost/;SharedAccessKeyName=service;SharedAccessKey=${KEY}`],
        2,
        /Malformed eventhub connection string: EntityPath is missing/,
      ),
    ]);
  });

  test('a connection string of the wrong kind: device for service, service for device, a module where a device is needed', async () => {
    const module = deviceString('known', KEY, 'm1');
    await walk(env, [
      ...across(
        ofKind('service'),
        (c) => [...c.run, ...c.target, '-c', deviceString('known')],
        2,
        /^error: Wrong kind of connection string: this is the connection string of device 'known', where a hub connection string \(portal: IoT hub > Shared access policies > iothubowner\) is expected\.$/m,
      ),
      ...across(
        ofKind('device'),
        (c) => [...c.run, '-c', serviceString()],
        2,
        /^error: Wrong kind of connection string: this is a hub connection string \(policy iothubowner\), where a device connection string \(portal: IoT hub > Devices > your device\) is expected\.$/m,
      ),
      ...across(
        ofKind('eventhub'),
        (c) => [...c.run, '-c', serviceString()],
        2,
        /Wrong kind of connection string: this is a hub connection string \(policy iothubowner\), where an Event Hub-compatible connection string/,
      ),
      ...across(
        ofKind('device').filter((c) => !c.target.includes('-m')),
        (c) => [...c.run, '-c', module],
        2,
        /^error: Wrong kind of connection string: (reboot-device|send-telemetry|answer-methods) acts as a device, and the connection string \(from --connection-string\) is for module 'known\/m1'; use the device's \(portal: IoT hub > Devices > known\)\.$/m,
      ),
      ...across(
        ofKind('device').filter((c) => !c.target.includes('-m')),
        (c) => c.run,
        2,
        /acts as a device, and the connection string \(from IOTHUB_DEVICE_CONNECTION_STRING\) is for module 'known\/m1'/,
        { IOTHUB_DEVICE_CONNECTION_STRING: module },
      ),
    ]);
  });

  test('-d, -m or --device that disagree with the connection string', async () => {
    const device = deviceString('known');
    const module = deviceString('known', KEY, 'm1');
    await walk(env, [
      ...across(
        ofKind('device'),
        (c) => [...c.run, '-c', device, '-d', 'other'],
        2,
        /^error: --device-id other disagrees with the connection string \(from --connection-string\), which is for device 'known': drop --device-id, or use the connection string of device 'other'\.$/m,
      ),
      ...across(
        ofKind('device').filter((c) => c.target.includes('-m')),
        (c) => [...c.run, '-c', device, '-m', 'm1'],
        2,
        /--module-id m1 disagrees with the connection string \(from --connection-string\), which is for device 'known'/,
      ),
      ...across(
        ofKind('device').filter((c) => c.target.includes('-m')),
        (c) => [...c.run, '--device'],
        2,
        /--device asks for device 'known' itself, but the connection string \(from IOTHUB_DEVICE_CONNECTION_STRING\) is for module 'known\/m1'/,
        { IOTHUB_DEVICE_CONNECTION_STRING: module },
      ),
      {
        name: 'send-telemetry --devices',
        args: ['send-telemetry', '--devices', '2', '-c', device],
        check: (r) => oneLineError(r, 2, /--devices 2 sends as its own simDevice-N devices/),
      },
    ]);
  });

  test('an empty --connection-string is refused, not replaced by another source', async () => {
    await walk(
      env,
      COMMANDS.map((c): Case => ({
        name: c.name,
        args: [...c.run, '-c', ''],
        check: (r) => usageError(r, /argument '' is invalid\. --connection-string is empty\./),
      })),
    );
  });

  test('invalid JSON in --desired, --reported or --payload, or not an object', async () => {
    await walk(env, [
      ...across(
        [COMMANDS[2]!],
        () => ['update-module-twin', '--desired', '{telemetryInterval:122}'],
        2,
        /^error: --desired is not valid JSON: /,
      ),
      ...across(
        [COMMANDS[2]!],
        () => ['update-module-twin', '--desired', '[1,2]'],
        2,
        /^error: --desired must be a JSON object, like '\{"telemetryInterval":122\}'$/m,
      ),
      ...across([COMMANDS[8]!], () => ['update-reported', '--reported', '{"a":'], 2, /^error: --reported is not valid JSON/),
      ...across([COMMANDS[8]!], () => ['update-reported', '--reported', '"text"'], 2, /--reported must be a JSON object/),
      ...['invoke-reboot', 'invoke-method ping'].map((command): Case => ({
        name: command,
        args: [...command.split(' '), '--payload', '{x'],
        check: (r) => usageError(r, /argument '\{x' is invalid\. --payload is not valid JSON/),
      })),
    ]);
  });

  test('unknown options and bad option values, on every command', async () => {
    const bad: Array<[string[], RegExp]> = [
      [
        ['hub', 'start', '--port', 'eighty'],
        /^error: option '-p, --port <port>' argument 'eighty' is invalid\. --port must be a whole number\./,
      ],
      [['hub', 'start', '--throttle', 's9'], /argument 's9' is invalid. Allowed choices are s1, s2, s3/],
      [
        ['hub', 'start', '--in-memory', '--port', '0', '--amqp-port', '0', '--log-file', '/nonexistent-dir/hub.log'],
        /^error: cannot write the log file \/nonexistent-dir\/hub\.log: its directory does not exist/,
      ],
      [['receive-twin-patch', '--timeout', 'soon'], /argument 'soon' is invalid\. --timeout must be a number of seconds\./],
      [['receive-twin-patch', '--count', '0'], /--count must be a whole number of at least 1\./],
      [['reboot-device', '--count', '0'], /--count must be a whole number of at least 1\./],
      [['reboot-device', '--reboot-seconds', 'x'], /--reboot-seconds must be a number of seconds\./],
      [['answer-methods', '--method', ' '], /--method is empty\./],
      [['answer-methods', '--status', '1000'], /--status must be a whole number from 100 to 599\./],
      [['answer-methods', '--payload', '{'], /--payload is not valid JSON/],
      [['invoke-reboot', '--wait', 'x'], /--wait must be a number of seconds\./],
      [['invoke-reboot', '--response-timeout', '301'], /--response-timeout must be a whole number from 5 to 300\./],
      [['invoke-method', 'ping', '--response-timeout', '4'], /--response-timeout must be a whole number from 5 to 300\./],
      [['invoke-method', 'ping', '--connect-timeout', '301'], /--connect-timeout must be a whole number from 0 to 300\./],
      [['send-telemetry', '--devices', '0'], /--devices must be a whole number of at least 1\./],
      [['send-telemetry', '--count', '1.5'], /--count must be a whole number\./],
      [['send-telemetry', '--interval', 'x'], /--interval must be a number of seconds\./],
      [['send-telemetry', '--message-size', '0'], /--message-size must be a whole number of at least 1\./],
      [['monitor-events', '--count', '0'], /--count must be a whole number of at least 1\./],
      [['monitor-events', '--timeout', 'x'], /--timeout must be a number of seconds\./],
      [['query', 'SELECT * FROM devices', '--top', '0'], /--top must be a whole number of at least 1\./],
      [['query', 'SELECT * FROM devices', '--page-size', 'x'], /--page-size must be a whole number of at least 1\./],
      [['invoke-method'], /missing required argument 'method-name'/],
      [['query'], /missing required argument 'query'/],
    ];
    await walk(env, [
      ...[...COMMANDS.map((c) => c.run), ['hub', 'start'], ['demo']].map((run): Case => ({
        name: run[0]!,
        args: [...run, '--bogus'],
        check: (r) => usageError(r, /unknown option '--bogus'/),
      })),
      ...bad.map(([args, message]): Case => ({ name: args[0]!, args, check: (r) => usageError(r, message) })),
    ]);
  });

  test('nothing configured and no hub running: each command says how to start one', async () => {
    await walk(
      env,
      COMMANDS.map((c): Case => ({
        name: c.name,
        args: [...c.run, ...c.target],
        check: (r) =>
          oneLineError(
            r,
            2,
            c.kind === 'eventhub'
              ? /^error: No Event Hub-compatible connection string: start a local hub with 'iothub-tut hub start'.* or set EVENTHUB_CONNECTION_STRING/m
              : /^error: No (service|device) connection string: .*iothub-tut hub start/m,
          ),
      })),
    );
  });

  test('--verbose adds the stack trace, after the same one-line error', async () => {
    const r = await runCli(['--verbose', 'create-module', '-c', 'just some text'], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr.split('\n')[0]!, /^error: Malformed service connection string/);
    assert.match(r.stderr, STACK_FRAME);
  });
});

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
    await walk(env, [
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
    ]);
  });

  test('unknown module (exit 3): says how to create it', async () => {
    const withModules = COMMANDS.filter((c) => c.target.includes('known') && (c.target.includes('-m') || c.name.startsWith('invoke')));
    await walk(env, [
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
    ]);
    assert.ok(withModules.length >= 5, withModules.map((c) => c.name).join());
  });

  test('wrong key (exit 4): service, device and Event Hub-compatible endpoint', async () => {
    await walk(env, [
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
    ]);
  });

  test('a shared access policy without the right (exit 4)', async () => {
    const policy = (c: CommandUnderTest) => (['twin show', 'query'].includes(c.name) ? 'device' : 'registryRead');
    await walk(env, [
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
    ]);
  });

  test('timed out (exit 5): patches, messages, direct methods not answered in time (504101)', async () => {
    await walk(env, [
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
    ]);
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

  test('hub not reachable (exit 8), after the retries, for every command', async () => {
    // The profile of a hub that has stopped listening.
    const gone = await startTestHub({ inMemory: true });
    const goneHome = homeFor(gone);
    await gone.dispose();
    const refused = /the hub is not reachable \(connection refused\)\. Is it running\? Start one with 'iothub-tut hub start'\./;
    try {
      await walk({ IOTHUB_TUT_HOME: goneHome }, [
        ...across(
          [COMMANDS[0]!],
          (c) => c.run,
          8,
          /^error: creating device 'myFirstDevice': the hub is not reachable \(connection refused\)\. Is it running\? Start one with 'iothub-tut hub start'\. \(gave up after 6 attempts\)$/m,
        ),
        ...across(
          COMMANDS.filter((c) => c.kind !== 'eventhub'),
          (c) => [...c.run, ...c.target],
          8,
          new RegExp(`${refused.source} \\(gave up after 6 attempts\\)$`, 'm'),
        ),
        ...across(ofKind('eventhub'), (c) => c.run, 8, refused),
      ]);
    } finally {
      rmSync(goneHome, { recursive: true, force: true });
    }
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

  test('a host name that does not resolve (exit 8): no such name (ENOTFOUND) and no DNS at all (EAI_AGAIN), for every command', async () => {
    const message = /the hub's host name does not resolve; check the host name in the connection string\.$/m;
    const cases = ['no-such-host.invalid', 'eai-again.invalid'].flatMap((host) => [
      ...across(ofKind('service'), (c) => [...c.run, ...c.target, '-c', serviceString(KEY, 'iothubowner', host)], 8, message, NO_DNS),
      ...across(ofKind('device'), (c) => [...c.run, '-c', deviceString('known', KEY, undefined, host)], 8, message, NO_DNS),
      ...(host.startsWith('eai-again')
        ? across(ofKind('device'), (c) => [...c.run, '--websocket', '-c', deviceString('known', KEY, undefined, host)], 8, message, NO_DNS)
        : []),
      ...across(ofKind('eventhub'), (c) => [...c.run, '-c', eventHubString(`sb://${host}/`)], 8, message, NO_DNS),
    ]);
    await walk(env, [
      ...cases,
      // Not a host name at all, without the preload: Node's own resolver says ENOTFOUND.
      ...across([COMMANDS[0]!], () => ['create-device', '-c', serviceString(KEY, 'iothubowner', '127.0.0.1:1')], 8, message),
    ]);
  });

  test('hub busy (exit 8): throttled past the retries, for every command that calls the service or connects as a device', async () => {
    const throttle = new Throttle('s1', () => 0);
    for (const kind of ['registry', 'twinRead', 'twinUpdate', 'methods', 'queries', 'connect'] satisfies ThrottleKind[])
      while (throttle.allow(kind));
    const busy = await startTestHub({ throttle });
    const busyHome = homeFor(busy);
    const message = /the hub is busy \(.*\); try again shortly\. \(gave up after 6 attempts\)$/m;
    try {
      await walk({ IOTHUB_TUT_HOME: busyHome }, [
        ...across(
          [COMMANDS[0]!],
          () => ['create-device', '-d', 'never'],
          8,
          /^error: creating device 'never': the hub is busy \(.*\); try again shortly\. \(gave up after 6 attempts\)$/m,
        ),
        ...across(
          COMMANDS.filter((c) => c.kind !== 'eventhub'),
          (c) => [...c.run, ...c.target],
          8,
          message,
        ),
        // New connections refused with CONNACK 3, which the device SDK would retry for minutes.
        ...across(
          ofKind('device'),
          (c) => [...c.run, '-c', deviceString('known')],
          8,
          /not connected within 20 s: the hub is busy or unreachable; try again shortly\.$/m,
        ),
      ]);
    } finally {
      await busy.dispose();
      rmSync(busyHome, { recursive: true, force: true });
    }
  });

  test('Ctrl-C while a device command is still connecting to a busy hub stops it at once (exit 0)', async () => {
    const throttle = new Throttle('s1', () => 0);
    while (throttle.allow('connect'));
    // Tells when the hub has refused a connection: the CLI is then inside its connect.
    let onRefused = () => {};
    const allow = throttle.allow.bind(throttle);
    throttle.allow = (operation, meters) => {
      const allowed = allow(operation, meters);
      if (!allowed && operation === 'connect') onRefused();
      return allowed;
    };
    const busy = await startTestHub({ throttle });
    const busyHome = homeFor(busy);
    try {
      for (const args of [['reboot-device'], ['send-telemetry', '--count', '0']]) {
        const connecting = new Promise<void>((resolve) => (onRefused = resolve));
        const device = new CliProcess([...args, '-c', deviceString('known'), '--json'], { IOTHUB_TUT_HOME: busyHome });
        await Promise.race([
          connecting,
          device.exit(60_000).then((code) => assert.fail(`${args[0]} exited (${code}) before connecting: ${device.stderr}`)),
        ]);
        assert.equal(await device.stop(), 0, `${args[0]}: ${device.stderr}`);
        assert.match(JSON.stringify(device.lines.at(-1)), /"event":"(stopped|summary)"/, args[0]);
      }
    } finally {
      await busy.dispose();
      rmSync(busyHome, { recursive: true, force: true });
    }
  });

  test('payload larger than IoT Hub accepts (exit 9)', async () => {
    oneLineError(
      await runCli(['send-telemetry', '-d', 'known', '--message-size', '300000'], env),
      9,
      /^error: each message would be 300108 bytes: IoT Hub accepts device-to-cloud messages up to 262144 bytes \(256 KB\), body and properties together\.$/m,
    );
  });
});
