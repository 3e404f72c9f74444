import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliProcess, runCli, runCliInProcess } from './helpers/cli.js';
import { tempDir } from './helpers/hub.js';
import { loadedSdkPackages } from './helpers/sdk-loads.js';

// The top-level help is built from main.ts's list of commands, without loading their modules; a
// command's own help comes from its module. Both must stay complete. Most help runs in this process
// (runCliInProcess), a few as subprocesses for what only a process shows (its exit code, what it loads);
// the demo's always as a subprocess (it loads the SDKs whatever it is asked).

const COMMANDS = [
  'hub',
  'demo',
  'create-device',
  'create-module',
  'update-module-twin',
  'receive-twin-patch',
  'update-reported',
  'reboot-device',
  'answer-methods',
  'invoke-reboot',
  'send-telemetry',
  'monitor-events',
  'send-c2d',
  'receive-c2d',
  'twin',
  'invoke-method',
  'query',
  'schedule-job',
];
/** The commands of the command groups. */
const SUBCOMMANDS = [
  ['hub', 'start'],
  ['hub', 'status'],
  ['hub', 'stop'],
  ['twin', 'show'],
];

/** The global options as the top-level help lists them (so the check follows the program, not a copy of its list). */
async function globalOptions(): Promise<string[]> {
  const r = await runCliInProcess(['--help']);
  assert.equal(r.code, 0, r.stderr);
  const section = r.stdout.split('Options:\n')[1]!.split('\nCommands:')[0]!;
  return [...section.matchAll(/^ {2}(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1]!).filter((o) => o !== '--help');
}

test('--help lists every command with its description, and examples', async () => {
  const r = await runCli(['--help']);
  assert.equal(r.code, 0, r.stderr);
  const listed = [
    ...r.stdout
      .split('Commands:')[1]!
      .split('Examples:')[0]!
      .matchAll(/^ {2}([a-z0-9-]+)/gm),
  ].map((m) => m[1]);
  assert.deepEqual(listed, [...COMMANDS, 'help']);
  assert.match(r.stdout, /create-device\s+CreateDeviceIdentity: register a device/);
  assert.match(r.stdout, /^Examples:\n {2}\$ iothub-tut demo$/m);
});

test("every command's --help shows the global options and two or three examples", async () => {
  const globals = await globalOptions();
  assert.ok(
    ['--json', '--show-secrets', '--verbose', '--no-color'].every((o) => globals.includes(o)),
    globals.join(' '),
  );
  for (const command of [...COMMANDS.map((c) => [c]), ...SUBCOMMANDS]) {
    const r = await (command[0] === 'demo' ? runCli : runCliInProcess)([...command, '--help']);
    const name = command.join(' ');
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    const [, globalSection] = r.stdout.split('Global Options:\n');
    assert.ok(globalSection, `${name} shows its global options`);
    for (const option of globals) assert.match(globalSection!, new RegExp(`^ {2}(-\\w, )?${option}\\b`, 'm'), `${name} lists ${option}`);
    const examples = [...(r.stdout.split('Examples:\n')[1]?.matchAll(/^ {2}\$ iothub-tut (.+)$/gm) ?? [])].map((m) => m[1]!);
    assert.ok(examples.length >= 2 && examples.length <= 3, `${name}: ${examples.length} examples`);
    // An example of a command is that command (a group's, one of its subcommands).
    for (const example of examples) assert.ok(example === command[0] || example.startsWith(`${command[0]} `), `${name}: ${example}`);
  }
});

test("a command's help shows its own options, asked either way", async () => {
  for (const args of [
    ['create-device', '--help'],
    ['help', 'create-device'],
    ['--no-color', 'help', 'create-device'],
    ['--json', 'create-device', '--help'],
  ]) {
    const r = await (args[0] === 'help' ? runCli : runCliInProcess)(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, /^Usage: iothub-tut create-device \[options\]/, args.join(' '));
    assert.match(r.stdout, /--device-id <id>/, args.join(' '));
  }
  const hub = await runCliInProcess(['hub', 'start', '--help']);
  assert.equal(hub.code, 0, hub.stderr);
  assert.match(hub.stdout, /--amqp-port <port>/);
  const twin = await runCliInProcess(['twin', 'show', '--help']);
  assert.equal(twin.code, 0, twin.stderr);
  assert.match(twin.stdout, /^Usage: iothub-tut twin show \[options\]/);
  assert.match(twin.stdout, /-m, --module-id <id>/);
});

test('in-process runs at the same time keep their output, environment and exit code apart', async () => {
  const key = 'A'.repeat(43) + '=';
  const [text, noKeyName, version] = await Promise.all([
    runCliInProcess(['twin', 'show'], { IOTHUB_CONNECTION_STRING: 'just some text' }),
    runCliInProcess(['twin', 'show'], { IOTHUB_CONNECTION_STRING: `HostName=localhost;SharedAccessKey=${key}` }),
    runCliInProcess(['--version']),
  ]);
  assert.deepEqual([text.code, text.stdout, text.stderr.split('\n').length], [2, '', 2], text.stderr);
  assert.match(text.stderr, /^error: Malformed service connection string: 'just some text' is not Key=Value/);
  assert.equal(noKeyName.code, 2);
  assert.match(noKeyName.stderr, /^error: Malformed service connection string: SharedAccessKeyName is missing/);
  assert.deepEqual(version, { code: 0, stdout: '0.1.0\n', stderr: '' });
});

test('a mistyped command gets a suggestion and exit 2', async () => {
  const r = await runCli(['creat-device']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command 'creat-device'/);
  assert.match(r.stderr, /Did you mean create-device\?/);
});

test('help and usage errors load no Azure SDK: only a command that talks to a hub pays for one', async () => {
  // The demo runs every tutorial in-process: it loads the SDKs whatever it is asked.
  const commands = COMMANDS.filter((c) => c !== 'demo');
  // A malformed connection string is refused (exit 2) before the command loads its app.
  const usage = commands
    .filter((c) => c !== 'hub')
    .map((command) => [
      command,
      ...({ twin: ['show'], 'invoke-method': ['ping'], query: ['SELECT *'], 'schedule-job': ['--method', 'm'] }[command] ?? []),
      '-c',
      'just some text',
    ]);
  const malformed = /^error: Malformed (service|device|eventhub) connection string: 'just some text' is not Key=Value/;
  const home = tempDir();
  // What this process loaded for itself, through its helpers.
  const before = loadedSdkPackages();
  try {
    // Every command, in this process; what they load adds to `before`.
    for (const command of commands) {
      const r = await runCliInProcess([command, '--help'], { IOTHUB_TUT_HOME: home });
      assert.equal(r.code, 0, `${command} --help: ${r.stderr}`);
    }
    for (const args of usage) {
      const r = await runCliInProcess(args, { IOTHUB_TUT_HOME: home });
      assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, malformed, args[0]);
    }
    assert.deepEqual(loadedSdkPackages(), before);
    assert.ok(!before.some((name) => name.startsWith('azure-') || name.startsWith('@azure/')), before.join());
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('the CLI process loads what its command needs: no SDK for help or a usage error, the one SDK that a hub call needs', async () => {
  const dir = tempDir();
  const preload = fileURLToPath(new URL('./helpers/sdk-loads.js', import.meta.url));
  /** The Azure SDK packages the CLI loaded to run `args`, and its result. */
  const sdkLoads = async (args: string[]) => {
    const file = join(dir, `${args[0]}.json`);
    const r = await runCli(args, { IOTHUB_TUT_HOME: dir, NODE_OPTIONS: `--import=${preload}`, SDK_LOADS_FILE: file });
    return { r, loaded: JSON.parse(readFileSync(file, 'utf8')) as string[] };
  };
  const key = 'A'.repeat(43) + '=';
  try {
    const [help, usage, hubCall] = await Promise.all([
      sdkLoads(['send-telemetry', '--help']),
      sdkLoads(['update-reported', '-c', 'just some text']),
      // The preload does see the SDKs: a well-formed connection string (to a host that does not resolve) loads one,
      // and only that.
      sdkLoads(['create-device', '-c', `HostName=127.0.0.1:1;SharedAccessKeyName=iothubowner;SharedAccessKey=${key}`]),
    ]);
    assert.equal(help.r.code, 0, help.r.stderr);
    assert.deepEqual(help.loaded, []);
    assert.equal(usage.r.code, 2, usage.r.stderr);
    assert.match(usage.r.stderr, /^error: Malformed device connection string: 'just some text' is not Key=Value/);
    assert.deepEqual(usage.loaded, []);
    assert.equal(hubCall.r.code, 8, hubCall.r.stderr);
    assert.deepEqual(hubCall.loaded, ['azure-iothub']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hub start loads no Azure SDK: @azure/storage-blob waits for the first import or export job', async () => {
  const dir = tempDir();
  const file = join(dir, 'loads.json');
  const packagesFile = join(dir, 'packages.json');
  const preload = fileURLToPath(new URL('./helpers/sdk-loads.js', import.meta.url));
  const hub = new CliProcess(['hub', 'start', '--port', '0', '--amqp-port', '0', '--json'], {
    IOTHUB_TUT_HOME: dir,
    NODE_OPTIONS: `--import=${preload}`,
    SDK_LOADS_FILE: file,
    PACKAGE_LOADS_FILE: packagesFile,
  });
  try {
    await hub.waitFor((l) => l.event === 'started');
    assert.equal(await hub.stop(), 0, hub.stderr);
    const loaded = JSON.parse(readFileSync(file, 'utf8')) as string[];
    assert.deepEqual(
      loaded.filter((name) => name.startsWith('@azure')),
      [],
    );
    const packages = JSON.parse(readFileSync(packagesFile, 'utf8')) as string[];
    assert.ok(packages.includes('aedes'), `the preload sees the hub's own packages: ${packages.join()}`);
  } finally {
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
