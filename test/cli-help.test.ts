import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from './helpers/cli.js';

// The top-level help is built from main.ts's list of commands, without loading their modules; a
// command's own help comes from its module. Both must stay complete.

const COMMANDS = [
  'hub', 'demo', 'create-device', 'create-module', 'update-module-twin', 'receive-twin-patch',
  'update-reported', 'reboot-device', 'invoke-reboot', 'send-telemetry', 'monitor-events',
];

test('--help lists every command with its description', async () => {
  const r = await runCli(['--help']);
  assert.equal(r.code, 0, r.stderr);
  const listed = [...r.stdout.split('Commands:')[1]!.matchAll(/^ {2}([a-z-]+)/gm)].map((m) => m[1]);
  assert.deepEqual(listed, [...COMMANDS, 'help']);
  assert.match(r.stdout, /create-device\s+CreateDeviceIdentity: register a device/);
});

test("a command's help shows its own options, asked either way", async () => {
  for (const args of [['create-device', '--help'], ['help', 'create-device'], ['--no-color', 'help', 'create-device']]) {
    const r = await runCli(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, /^Usage: iothub-tut create-device \[options\]/, args.join(' '));
    assert.match(r.stdout, /--device-id <id>/, args.join(' '));
  }
  const hub = await runCli(['hub', 'start', '--help']);
  assert.equal(hub.code, 0, hub.stderr);
  assert.match(hub.stdout, /--amqp-port <port>/);
});

test('a mistyped command gets a suggestion and exit 2', async () => {
  const r = await runCli(['creat-device']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command 'creat-device'/);
  assert.match(r.stderr, /Did you mean create-device\?/);
});
