import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, type CliResult } from './helpers/cli.js';
import { startTestHub, tempDir, type TestHub } from './helpers/hub.js';
import { createRegistry } from '../src/clients/service-clients.js';
import { Throttle } from '../src/hub/throttling.js';

// Every row of README's "Errors and exit codes" table, through the CLI as a subprocess. The hub
// runs in this process and is announced to the CLI with a profile, as `hub start` would.

const KEY = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
const STACK_FRAME = /\bat .+:\d+:\d+/;

function oneLineError(r: CliResult, exitCode: number, message: RegExp): void {
  assert.equal(r.code, exitCode, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, /^error: /);
  assert.match(r.stderr, message);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, STACK_FRAME, 'no stack trace');
  assert.ok(!r.stderr.includes(KEY.slice(0, 20)), 'the key is not echoed');
}

/** A home whose profile points the CLI at an in-process hub. */
function homeFor(t: TestHub): string {
  const home = tempDir();
  const caFile = join(home, 'ca.pem');
  writeFileSync(caFile, t.hub.tls.ca);
  const profile = { hostName: 'localhost', port: t.hub.port, eventHubPort: t.hub.eventHubPort, caFile, pid: process.pid, dataDir: t.dataDir, startedAt: new Date().toISOString(), serviceConnectionString: t.connection.connectionString };
  mkdirSync(join(home, 'hubs'));
  writeFileSync(join(home, 'hubs', `${process.pid}.json`), JSON.stringify(profile), { mode: 0o600 });
  return home;
}

describe('errors and exit codes: bad input (exit 2)', () => {
  const home = tempDir();
  const env = { IOTHUB_TUT_HOME: home };
  after(() => rmSync(home, { recursive: true, force: true }));

  const malformed: Array<[string, string[], RegExp]> = [
    ['service: HostName missing', ['create-module', '-c', `SharedAccessKeyName=iothubowner;SharedAccessKey=${KEY}`], /Malformed service connection string: HostName is missing/],
    ['service: SharedAccessKeyName missing', ['create-module', '-c', `HostName=localhost;SharedAccessKey=${KEY}`], /SharedAccessKeyName is missing/],
    ['service: SharedAccessKey missing', ['create-module', '-c', 'HostName=localhost;SharedAccessKeyName=iothubowner'], /SharedAccessKey is missing/],
    ['service: key not base64', ['create-module', '-c', 'HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=not base64!'], /SharedAccessKey is not a base64 key/],
    ['service: not Key=Value', ['create-module', '-c', 'just some text'], /is not Key=Value/],
    ['device: HostName missing', ['update-reported', '-c', `DeviceId=d1;SharedAccessKey=${KEY}`], /Malformed device connection string: HostName is missing/],
    ['device: DeviceId missing', ['update-reported', '-c', `HostName=localhost;SharedAccessKey=${KEY}`], /DeviceId is missing/],
    ['device: SharedAccessKey missing', ['receive-twin-patch', '-c', 'HostName=localhost;DeviceId=d1'], /SharedAccessKey is missing/],
    ['device: ModuleId empty', ['update-reported', '-c', `HostName=localhost;DeviceId=d1;ModuleId=;SharedAccessKey=${KEY}`], /ModuleId is empty/],
    ['device string from the environment', ['update-reported'], /Malformed device connection string: DeviceId is missing/],
  ];
  for (const [name, args, message] of malformed) {
    test(`malformed connection string (${name})`, async () => {
      const extra = name.includes('environment') ? { IOTHUB_DEVICE_CONNECTION_STRING: `HostName=localhost;SharedAccessKey=${KEY}` } : {};
      oneLineError(await runCli(args, { ...env, ...extra }), 2, message);
    });
  }

  test('invalid JSON in --desired or --reported, or not an object', async () => {
    oneLineError(await runCli(['update-module-twin', '--desired', '{telemetryInterval:122}'], env), 2, /--desired is not valid JSON/);
    oneLineError(await runCli(['update-module-twin', '--desired', '[1,2]'], env), 2, /--desired must be a JSON object/);
    oneLineError(await runCli(['update-reported', '--reported', '{"a":'], env), 2, /--reported is not valid JSON/);
  });

  test('bad option values: unknown option, --port, --throttle, --timeout', async () => {
    const usage = async (args: string[], message: RegExp) => {
      const r = await runCli(args, env);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, STACK_FRAME);
    };
    await usage(['create-device', '--bogus'], /unknown option '--bogus'/);
    await usage(['hub', 'start', '--port', 'eighty'], /^error: option '-p, --port <port>' argument 'eighty' is invalid\. --port must be a whole number\./);
    await usage(['hub', 'start', '--throttle', 's9'], /argument 's9' is invalid. Allowed choices are s1, s2, s3/);
    await usage(['receive-twin-patch', '--timeout', 'soon'], /argument 'soon' is invalid\. --timeout must be a number of seconds\./);
  });

  test('nothing configured and no hub running: says how to start one', async () => {
    oneLineError(await runCli(['create-device'], env), 2, /No service connection string: start a local hub with 'iothub-tut hub start'/);
    oneLineError(await runCli(['update-reported'], env), 2, /No device connection string: .*iothub-tut hub start/);
  });

  test('--verbose adds the stack trace, after the same one-line error', async () => {
    const r = await runCli(['--verbose', 'create-module', '-c', 'just some text'], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr.split('\n')[0], /^error: Malformed service connection string/);
    assert.match(r.stderr, STACK_FRAME);
  });
});

describe('errors and exit codes: against a hub', () => {
  let t: TestHub;
  let home: string;
  let env: Record<string, string>;
  before(async () => {
    t = await startTestHub();
    home = homeFor(t);
    env = { IOTHUB_TUT_HOME: home };
    const registry = createRegistry(t.connection);
    await registry.create({ deviceId: 'known' });
    await registry.addModule({ deviceId: 'known', moduleId: 'm1' });
  });
  after(async () => {
    await t.dispose();
    rmSync(home, { recursive: true, force: true });
  });

  test('unknown device (exit 3), service and device side', async () => {
    oneLineError(await runCli(['update-module-twin', '--device', '-d', 'nosuch'], env), 3, /^error: reading device twin 'nosuch': Device nosuch not registered$/m);
    oneLineError(await runCli(['update-reported', '--device', '-d', 'nosuch'], env), 3, /looking up device 'nosuch': Device nosuch not registered/);
  });

  test('unknown module (exit 3)', async () => {
    oneLineError(await runCli(['update-module-twin', '-d', 'known', '-m', 'nosuch'], env), 3, /reading module twin 'known\/nosuch': not found: Module nosuch on device known not registered/);
    oneLineError(await runCli(['receive-twin-patch', '-d', 'known', '-m', 'nosuch'], env), 3, /looking up module 'known\/nosuch': not found: Module nosuch/);
  });

  test('wrong key (exit 4): service and device', async () => {
    oneLineError(await runCli(['create-device', '-c', `HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=${KEY}`], env), 4, /not authorized: .*Check the key in the connection string\./);
    oneLineError(await runCli(['update-reported', '-c', `HostName=localhost;DeviceId=known;SharedAccessKey=${KEY}`], env), 4, /updating reported properties: not authorized: .*Check the key/);
  });

  test('a policy without the right (exit 4)', async () => {
    oneLineError(await runCli(['create-device', '-d', 'x', '-c', t.hub.serviceConnectionString('registryRead')], env), 4, /forbidden: .*lacks the right/);
  });

  test('timed out (exit 5): receive-twin-patch --timeout', async () => {
    oneLineError(await runCli(['receive-twin-patch', '-d', 'known', '-m', 'm1', '--timeout', '1'], env), 5, /no desired property patch within 1 s \(received 0\)/);
  });

  test('conflict (exit 7): the twin changed between the read and the patch', async () => {
    // The service changes the twin right after answering the CLI's read, before its guarded patch arrives.
    const http = (t.hub as unknown as { http: import('node:http').Server }).http;
    const meddle = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
      if (req.method === 'GET' && req.url?.startsWith('/twins/known/modules/m1')) res.once('finish', () => t.hub.twins.patchFromService({ deviceId: 'known', moduleId: 'm1' }, { properties: { desired: { other: 1 } } }));
    };
    http.on('request', meddle);
    try {
      oneLineError(await runCli(['update-module-twin', '-d', 'known', '-m', 'm1'], env), 7, /the twin changed since it was read \(412 PreconditionFailed\); run the command again\./);
    } finally {
      http.off('request', meddle);
    }
  });

  test('port in use (exit 8): hub start on a busy port says so in one line', async () => {
    oneLineError(await runCli(['hub', 'start', '--in-memory', '--port', String(t.hub.port), '--amqp-port', '0'], env), 8, /^error: port \d+ is in use: stop what runs there, or pick another with --port$/m);
  });

  test('hub not reachable (exit 8), after the retries; a host name that does not resolve (exit 8)', async () => {
    // The profile of a hub that has stopped listening.
    const gone = await startTestHub({ inMemory: true });
    const goneHome = homeFor(gone);
    await gone.dispose();
    try {
      oneLineError(await runCli(['create-device'], { IOTHUB_TUT_HOME: goneHome }), 8, /the hub is not reachable \(connection refused\)\. Is it running\? Start one with 'iothub-tut hub start'\. \(gave up after 6 attempts\)$/m);
    } finally {
      rmSync(goneHome, { recursive: true, force: true });
    }
    oneLineError(await runCli(['create-device', '-c', `HostName=127.0.0.1:1;SharedAccessKeyName=iothubowner;SharedAccessKey=${KEY}`], env), 8, /the hub's host name does not resolve; check HostName in the connection string\./);
  });

  test('hub busy (exit 8): throttled past the retries', async () => {
    const throttle = new Throttle('s1', () => 0);
    while (throttle.allow('registry'));
    const busy = await startTestHub({ throttle });
    const busyHome = homeFor(busy);
    try {
      oneLineError(await runCli(['create-device', '-d', 'never'], { IOTHUB_TUT_HOME: busyHome }), 8, /creating device 'never': the hub is busy \(.*\); try again shortly\. \(gave up after 6 attempts\)/);
    } finally {
      await busy.dispose();
      rmSync(busyHome, { recursive: true, force: true });
    }
  });
});
