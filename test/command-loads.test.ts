import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/hub.js';

// What a command loads is most of what it costs (see CONTRIBUTING.md, "Where the time goes"). Each
// command here dials a port where nothing listens: it loads all it would against a hub, then fails
// with exit 8, at no hub's cost.

const KEY = 'A'.repeat(43) + '=';
const UNREACHABLE = 'HostName=127.0.0.1:1';

/** Every package the CLI loaded to run `args` (it must fail as unreachable, exit 8). */
async function packageLoads(args: string[]): Promise<string[]> {
  const dir = tempDir();
  const file = join(dir, 'loads.json');
  const preload = fileURLToPath(new URL('./helpers/sdk-loads.js', import.meta.url));
  try {
    const r = await runCli(args, { IOTHUB_TUT_HOME: dir, NODE_OPTIONS: `--import=${preload}`, PACKAGE_LOADS_FILE: file });
    assert.equal(r.code, 8, `${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(readFileSync(file, 'utf8')) as string[];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("a device command loads the twin's traverse without es-abstract's polyfills (package.json overrides traverse)", async () => {
  const loaded = await packageLoads(['update-reported', '-c', `${UNREACHABLE};DeviceId=d;SharedAccessKey=${KEY}`]);
  assert.ok(loaded.includes('azure-iot-device') && loaded.includes('traverse'), loaded.join(' '));
  for (const polyfill of ['es-abstract', 'which-typed-array', 'typedarray.prototype.slice'])
    assert.ok(!loaded.includes(polyfill), polyfill);
});
