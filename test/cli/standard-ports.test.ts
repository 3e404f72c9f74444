import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { rmSync } from 'node:fs';
import { BIN, cliEnv } from '../helpers/cli.js';
import { tempDir } from '../helpers/hub.js';

// `hub start --standard-ports` binds IoT Hub's own ports (443, 8883), which only root may bind and which
// something else on the machine may hold: each test runs in a private network namespace of its own
// (`unshare -n`, root only), where they are free; without root the tests are skipped, saying why.

const APP = fileURLToPath(new URL('../helpers/standard-ports-app.js', import.meta.url));
const skip =
  process.getuid?.() !== 0
    ? 'needs root: it binds ports 443 and 8883 in a private network namespace (unshare -n)'
    : spawnSync('unshare', ['-n', 'true']).status !== 0
      ? 'unshare -n (util-linux, with namespaces allowed) is not available'
      : false;
if (skip) console.log(`# standard-ports tests skipped: ${skip}`);

/** Runs `command` in a new network namespace with its loopback up; `prefix` goes before node (setpriv...). */
function inNamespace(args: string[], home: string, prefix: string[] = []): { status: number | null; stdout: string; stderr: string } {
  const quoted = [...prefix, process.execPath, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const result = spawnSync('unshare', ['-n', 'sh', '-c', `ip link set lo up && exec ${quoted}`], {
    env: cliEnv({ IOTHUB_TUT_HOME: home }),
    encoding: 'utf8',
    timeout: 150_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('hub start --standard-ports', { skip }, () => {
  test('an unchanged SDK app (MQTT on 8883, MQTT over WebSockets and REST on 443) needs only NODE_EXTRA_CA_CERTS, and the toolkit still works', () => {
    const home = tempDir();
    try {
      const run = inNamespace([APP, 'driver'], home);
      assert.equal(run.status, 0, run.stderr);
      const { started, toolkit, app } = JSON.parse(run.stdout.trim().split('\n').pop()!);
      assert.equal(started.standardPorts, true);
      assert.equal(started.port, 8883);
      assert.match(
        started.serviceConnectionString,
        /^HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=[^;]+$/,
        'no port, no GatewayHostName',
      );
      assert.equal(toolkit.code, 0, toolkit.stderr);
      assert.equal(app.code, 0, run.stderr);
      assert.deepEqual(app.result, {
        opened: ['mqtt', 'mqttws', 'amqp', 'amqpws', 'http'],
        modelId: 'dtmi:com:example:Thermostat;1',
        model: 'dtmi:com:example:Thermostat;1',
      });
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  test('without the privilege to bind port 443: one line that says how to allow it, exit 8', () => {
    const home = tempDir();
    try {
      // Root without CAP_NET_BIND_SERVICE, in a namespace whose unprivileged ports start at 1024 (the default).
      const run = inNamespace([BIN, 'hub', 'start', '--standard-ports', '--in-memory', '--amqp-port', '0'], home, [
        'setpriv',
        '--bounding-set=-net_bind_service',
        '--inh-caps=-net_bind_service',
      ]);
      assert.equal(run.status, 8, run.stderr);
      const lines = run.stderr.trim().split('\n');
      assert.equal(lines.length, 1, run.stderr);
      assert.match(
        lines[0]!,
        /^error: port 443 needs privileges: run as root \(or in a container\), allow low ports with 'sysctl net\.ipv4\.ip_unprivileged_port_start=443', give node the capability with 'setcap cap_net_bind_service=\+ep .+', or drop --standard-ports/,
      );
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  test('--standard-ports and --port together are refused (exit 2)', () => {
    const result = spawnSync(process.execPath, [BIN, 'hub', 'start', '--standard-ports', '--port', '9000', '--in-memory'], {
      env: cliEnv({}),
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /--standard-ports.*cannot be used with option '-p, --port/);
  });
});
