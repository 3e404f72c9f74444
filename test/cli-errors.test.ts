import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/hub.js';
import { loadedSdkPackages } from './helpers/sdk-loads.js';
import {
  across,
  COMMANDS,
  deviceString,
  KEY,
  ofKind,
  oneLineError,
  serviceString,
  STACK_FRAME,
  usageError,
  oneAsSubprocess,
  walk,
  type Case,
} from './helpers/error-table.js';

// README's "Errors and exit codes" table, the rows of bad input (exit 2): the CLI refuses them before
// it reaches a hub. test/cli/cli-errors-hub.test.ts has the rows against a hub, test/cli/cli-errors-network.test.ts
// those of a hub that is gone, busy or has no address (test/helpers/error-table.ts has what they share).

// Every case runs in this process (runCommandLine), and one of each row (oneAsSubprocess) as a
// subprocess too, for what only a process shows: its exit code, its whole stderr.
const IN_PROCESS = { inProcess: true };

describe('errors and exit codes: bad input (exit 2)', () => {
  const home = tempDir();
  const env = { IOTHUB_TUT_HOME: home };
  after(() => rmSync(home, { recursive: true, force: true }));
  // What this process loaded for itself, through its helpers, before any in-process run.
  const loadedBefore = loadedSdkPackages();

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
    await walk(
      env,
      [
        ...oneAsSubprocess(
          fields.map(([cs, message]): Case => ({
            name: 'create-module',
            args: ['create-module', '-c', cs],
            check: (r) => oneLineError(r, 2, message),
          })),
        ),
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
      ],
      IN_PROCESS,
    );
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
    await walk(
      env,
      [
        ...oneAsSubprocess(
          fields.map(([cs, message]): Case => ({
            name: 'update-reported',
            args: ['update-reported', '-c', cs],
            check: (r) => oneLineError(r, 2, message),
          })),
        ),
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
      ],
      IN_PROCESS,
    );
  });

  test('a connection string of the wrong kind: device for service, service for device, a module where a device is needed', async () => {
    const module = deviceString('known', KEY, 'm1');
    await walk(
      env,
      [
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
      ],
      IN_PROCESS,
    );
  });

  test('-d, -m or --device that disagree with the connection string', async () => {
    const device = deviceString('known');
    const module = deviceString('known', KEY, 'm1');
    await walk(
      env,
      [
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
      ],
      IN_PROCESS,
    );
  });

  test('an empty --connection-string is refused, not replaced by another source', async () => {
    await walk(
      env,
      oneAsSubprocess(
        COMMANDS.map((c): Case => ({
          name: c.name,
          args: [...c.run, '-c', ''],
          check: (r) => usageError(r, /argument '' is invalid\. --connection-string is empty\./),
        })),
      ),
      IN_PROCESS,
    );
  });

  test('invalid JSON in --desired, --reported or --payload, or not an object', async () => {
    await walk(
      env,
      [
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
        ...oneAsSubprocess(
          ['invoke-reboot', 'invoke-method ping'].map((command): Case => ({
            name: command,
            args: [...command.split(' '), '--payload', '{x'],
            check: (r) => usageError(r, /argument '\{x' is invalid\. --payload is not valid JSON/),
          })),
        ),
      ],
      IN_PROCESS,
    );
  });

  test('unknown options and bad option values, on every command', async () => {
    const route = { name: 'alerts', source: 'DeviceMessages', condition: 'true', endpointNames: ['events'], isEnabled: true };
    const routingFile = (name: string, content: string | object) => {
      writeFileSync(join(home, name), typeof content === 'string' ? content : JSON.stringify(content));
      return join(home, name);
    };
    const bad: Array<[string[], RegExp]> = [
      [
        ['hub', 'start', '--port', 'eighty'],
        /^error: option '-p, --port <port>' argument 'eighty' is invalid\. --port must be a whole number\./,
      ],
      [['hub', 'start', '--throttle', 's9'], /argument 's9' is invalid. Allowed choices are s1, s2, s3/],
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
      [
        ['monitor-events', '--consumer-group', 'two words'],
        /--consumer-group must be 1 to 50 letters, digits, periods, hyphens and underscores/,
      ],
      [['hub', 'start', '--consumer-group', 'trailing_'], /--consumer-group must be 1 to 50 letters/],
      [
        ['hub', 'start', '--file-upload', 'UseDevelopmentStorage=true'],
        /^error: --file-upload: UseDevelopmentStorage=true is Azurite's plain-http endpoint/,
      ],
      // The whole of stderr: the key is not echoed back.
      [
        ['hub', 'start', '--file-upload', 'AccountName=a;AccountKey=c2VjcmV0;BlobEndpoint=http://h'],
        /^error: --file-upload: the blob endpoint http:\/\/h is not https, and device SDKs upload over https \(for Azurite: --cert and --key, README "File upload"\)\n$/,
      ],
      [['hub', 'start', '--file-upload-container', 'uploads'], /^error: --file-upload-container needs --file-upload/],
      [['hub', 'start', '--file-upload-container', 'Up_loads'], /--file-upload-container: 'Up_loads' is not a container name/],
      [['hub', 'start', '--routing', join(home, 'missing.json')], /^error: --routing: .*missing\.json: cannot read it \(ENOENT\)\n$/],
      [['hub', 'start', '--routing', routingFile('not-json.json', '{"routes": [')], /--routing: .*not-json\.json: not JSON \(/],
      [
        ['hub', 'start', '--routing', routingFile('custom.json', { routes: [{ ...route, endpointNames: ['archive'] }] })],
        /--routing: .*custom\.json: route 'alerts' goes to 'archive', which is not an endpoint: the local hub serves the built-in endpoint 'events' and storageContainers\n$/,
      ],
      [
        ['hub', 'start', '--routing', routingFile('condition.json', { routes: [{ ...route, condition: "level = 'x' AND" }] })],
        /--routing: .*condition\.json: the condition of route 'alerts' is not a routing query: Syntax error at position 16 near end of query: expected a value/,
      ],
      [['query', 'SELECT * FROM devices', '--top', '0'], /--top must be a whole number of at least 1\./],
      [['query', 'SELECT * FROM devices', '--page-size', 'x'], /--page-size must be a whole number of at least 1\./],
      [['invoke-method'], /missing required argument 'method-name'/],
      [['query'], /missing required argument 'query'/],
    ];
    await walk(
      env,
      [
        ...oneAsSubprocess(
          [...COMMANDS.map((c) => c.run), ['hub', 'start']].map((run): Case => ({
            name: run[0]!,
            args: [...run, '--bogus'],
            check: (r) => usageError(r, /unknown option '--bogus'/),
          })),
        ),
        ...oneAsSubprocess(bad.map(([args, message]): Case => ({ name: args[0]!, args, check: (r) => usageError(r, message) }))),
      ],
      IN_PROCESS,
    );
    // Subprocesses only: the demo loads the SDKs whatever it is asked, and hub start checks its log file
    // once it has loaded the hub; in this process they would stay loaded.
    await walk(env, [
      { name: 'demo', args: ['demo', '--bogus'], check: (r) => usageError(r, /unknown option '--bogus'/) },
      {
        name: 'hub start',
        args: ['hub', 'start', '--in-memory', '--port', '0', '--amqp-port', '0', '--log-file', '/nonexistent-dir/hub.log'],
        check: (r) => usageError(r, /^error: cannot write the log file \/nonexistent-dir\/hub\.log: its directory does not exist/),
      },
    ]);
  });

  test('nothing configured and no hub running: each command says how to start one', async () => {
    await walk(
      env,
      COMMANDS.map((c): Case => ({
        name: c.name,
        args: [...c.run, ...c.target],
        // One of each message (service, device, Event Hub-compatible) as a subprocess too.
        subprocess: c === ofKind(c.kind)[0],
        check: (r) =>
          oneLineError(
            r,
            2,
            c.kind === 'eventhub'
              ? /^error: No Event Hub-compatible connection string: start a local hub with 'iothub-tut hub start'.* or set EVENTHUB_CONNECTION_STRING/m
              : /^error: No (service|device) connection string: .*iothub-tut hub start/m,
          ),
      })),
      IN_PROCESS,
    );
  });

  test('--verbose adds the stack trace, after the same one-line error', async () => {
    const r = await runCli(['--verbose', 'create-module', '-c', 'just some text'], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr.split('\n')[0]!, /^error: Malformed service connection string/);
    assert.match(r.stderr, STACK_FRAME);
  });

  test('the in-process runs loaded no Azure SDK into the test process (nothing of theirs can keep it alive)', () => {
    assert.deepEqual(loadedSdkPackages(), loadedBefore);
    assert.ok(!loadedBefore.some((name) => name.startsWith('azure-') || name.startsWith('@azure/')), loadedBefore.join());
  });
});
