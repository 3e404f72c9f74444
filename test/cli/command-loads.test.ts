import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/hub.js';

// What a command loads is most of what it costs (see CONTRIBUTING.md, "Where the time goes"). Each
// command here dials a port where nothing listens (127.0.0.1's 443, 5671 or 8883): it loads all it
// would against a hub, then fails, at no hub's cost.

const KEY = 'A'.repeat(43) + '=';
const DEVICE = `HostName=127.0.0.1;DeviceId=d;SharedAccessKey=${KEY}`;
const SERVICE = `HostName=127.0.0.1;SharedAccessKeyName=iothubowner;SharedAccessKey=${KEY}`;

/** Every package the CLI loaded to run `args`, and its exit code. */
async function packageLoads(args: string[]): Promise<{ code: number | null; loaded: string[] }> {
  const dir = tempDir();
  const file = join(dir, 'loads.json');
  const preload = fileURLToPath(new URL('../helpers/sdk-loads.js', import.meta.url));
  try {
    const r = await runCli(args, { IOTHUB_TUT_HOME: dir, NODE_OPTIONS: `--import=${preload}`, PACKAGE_LOADS_FILE: file });
    return { code: r.code, loaded: JSON.parse(readFileSync(file, 'utf8')) as string[] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("a device command loads the twin's traverse without es-abstract's polyfills (package.json overrides traverse)", async () => {
  const { code, loaded } = await packageLoads(['update-reported', '-c', DEVICE]);
  assert.equal(code, 8);
  assert.ok(loaded.includes('azure-iot-device') && loaded.includes('traverse'), loaded.join(' '));
  for (const polyfill of ['es-abstract', 'which-typed-array', 'typedarray.prototype.slice'])
    assert.ok(!loaded.includes(polyfill), polyfill);
});

test("invoke-method loads azure-iothub's REST side only: no AMQP stack for a REST call", async () => {
  const { code, loaded } = await packageLoads(['invoke-method', 'ping', '-c', SERVICE]);
  assert.equal(code, 8);
  assert.ok(loaded.includes('azure-iothub'), loaded.join(' '));
  assert.ok(!loaded.includes('rhea'), loaded.join(' '));
});

test('send-c2d loads the AMQP stack and azure-iothub, not the device SDK (for its Message class)', async () => {
  const { code, loaded } = await packageLoads(['send-c2d', '-c', SERVICE]);
  assert.notEqual(code, 0);
  assert.ok(loaded.includes('azure-iothub') && loaded.includes('rhea'), loaded.join(' '));
  assert.deepEqual(
    loaded.filter((name) => name.startsWith('azure-iot-')),
    [],
  );
});
