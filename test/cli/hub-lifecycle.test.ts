import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN, CliProcess, cliEnv, jsonLines, runCli, type CliResult } from '../helpers/cli.js';
import { azuriteHttpsConnectionString } from '../helpers/azurite.js';
import { tempDir } from '../helpers/hub.js';

// The hub's life cycle as a user or a CI job drives it: `hub start` (in the foreground and with
// --detach), `hub status`, `hub stop`, several hubs side by side, the data dir lock.

const EPHEMERAL = ['--port', '0', '--amqp-port', '0'];
const SMOKE_SCRIPT = fileURLToPath(new URL('../../../examples/ci-smoke.sh', import.meta.url));

function oneLineError(r: CliResult, exitCode: number, message: RegExp): void {
  assert.equal(r.code, exitCode, `exit code; stdout: ${r.stdout} stderr: ${r.stderr}`);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.match(r.stderr, /^error: /);
  assert.match(r.stderr, message);
}

/** A zombie (ended, not yet reaped by its parent: the system's first process, for a detached hub) is not alive. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return !existsSync(`/proc/${pid}`) || procState(pid) !== 'Z';
}

/** A process's state (R, S, Z...), from Linux's /proc. */
function procState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
}

function profiles(home: string): string[] {
  return existsSync(join(home, 'hubs')) ? readdirSync(join(home, 'hubs')) : [];
}

/** A foreground `hub start --json`, once it has said it started. */
async function startHub(env: Record<string, string>, ...args: string[]): Promise<{ hub: CliProcess; started: any }> {
  const hub = new CliProcess(['hub', 'start', ...EPHEMERAL, '--json', ...args], env);
  try {
    return { hub, started: await hub.waitFor((l) => l.event === 'started') };
  } catch (err) {
    hub.child.kill('SIGKILL');
    throw err;
  }
}

// Each test has homes and data dirs of its own: a few run side by side.
describe('the hub life cycle', { concurrency: 3 }, () => {
  test('hub start --in-memory on an empty home: the CA file is made, it serves, and SIGTERM removes the CA file', async () => {
    const root = tempDir();
    const env = { IOTHUB_TUT_HOME: join(root, 'not-yet') };
    try {
      const { hub, started } = await startHub(env, '--in-memory');
      try {
        assert.equal(started.dataDir, null);
        assert.ok(existsSync(started.caFile), 'the CA file for clients exists');
        const created = await runCli(['create-device', '-d', 'mem-1', '--json'], env);
        assert.equal(created.code, 0, created.stderr);
      } finally {
        hub.child.kill('SIGTERM');
        assert.equal(await hub.exit(), 0, hub.stderr);
      }
      assert.ok(!existsSync(started.caFile), 'the CA file is removed at the stop');
      assert.deepEqual(profiles(env.IOTHUB_TUT_HOME), [], 'the profile is removed at the stop');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test("a second hub on a data dir in use is refused (exit 8) with the running hub's pid and ports; the first keeps running", async () => {
    const root = tempDir();
    const dataDir = join(root, 'data');
    const env = { IOTHUB_TUT_HOME: join(root, 'home') };
    const { hub, started } = await startHub(env, '--data-dir', dataDir);
    try {
      for (const home of [env.IOTHUB_TUT_HOME, join(root, 'other-home')]) {
        const second = await runCli(['hub', 'start', ...EPHEMERAL, '--data-dir', dataDir], { IOTHUB_TUT_HOME: home });
        oneLineError(
          second,
          8,
          new RegExp(
            `data dir ${dataDir} is in use by the hub with pid ${started.pid} on port ${started.port} \\(Event Hub-compatible endpoint on ${started.eventHubPort}\\)`,
          ),
        );
      }
      const status = await runCli(['hub', 'status', '--json'], env);
      assert.equal(status.code, 0, status.stderr);
      assert.deepEqual(
        jsonLines(status.stdout).map((h) => h.pid),
        [started.pid],
        'the first hub and its profile are untouched',
      );
      assert.equal((await runCli(['create-device', '-d', 'still-there'], env)).code, 0);
    } finally {
      assert.equal(await hub.stop(), 0, hub.stderr);
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('two hubs starting at once on one data dir: exactly one runs, the other is refused with exit 8', async () => {
    const root = tempDir();
    const dataDir = join(root, 'data');
    const env = { IOTHUB_TUT_HOME: root };
    const hubs = [0, 1].map(() => new CliProcess(['hub', 'start', ...EPHEMERAL, '--data-dir', dataDir, '--json'], env));
    try {
      // Each either says it started or exits; wait for both to decide.
      const outcomes = await Promise.all(
        hubs.map((h) =>
          h
            .waitFor((l) => l.event === 'started', 60_000)
            .then(
              () => 'started',
              () => h.exit(),
            ),
        ),
      );
      assert.deepEqual([...outcomes].sort(), [8, 'started'], `outcomes: ${outcomes}; stderr: ${hubs.map((h) => h.stderr)}`);
    } finally {
      for (const h of hubs) await h.stop();
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('a hub killed with kill -9: its profile is ignored and removed, and its lock does not block the next start', async () => {
    const root = tempDir();
    const dataDir = join(root, 'data');
    const env = { IOTHUB_TUT_HOME: root };
    try {
      const first = await startHub(env, '--data-dir', dataDir);
      first.hub.child.kill('SIGKILL');
      await first.hub.exit();
      assert.deepEqual(profiles(root), [`${first.started.pid}.json`], 'the killed hub left its profile');

      oneLineError(await runCli(['hub', 'status'], env), 8, /No local hub is running/);
      assert.deepEqual(profiles(root), [], "the dead hub's profile is cleaned up");
      oneLineError(await runCli(['create-device', '-d', 'x'], env), 2, /No service connection string/);

      const second = await startHub(env, '--data-dir', dataDir);
      try {
        assert.equal((await runCli(['create-device', '-d', 'after-crash'], env)).code, 0);
      } finally {
        assert.equal(await second.hub.stop(), 0, second.hub.stderr);
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test(
    'a profile whose pid now belongs to another process is not taken for a hub',
    { skip: !existsSync('/proc/self/stat') && 'needs /proc' },
    async () => {
      const home = tempDir();
      try {
        // This test process stands for the process that got a dead hub's pid: alive, but started at another time.
        const profile = {
          hostName: 'localhost',
          port: 1,
          eventHubPort: 2,
          caFile: join(home, 'ca.pem'),
          pid: process.pid,
          processStart: '1',
          dataDir: null,
          startedAt: new Date().toISOString(),
          serviceConnectionString: 'HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=AAAAAAAAAAAAAAAAAAAAAA==',
        };
        mkdirSync(join(home, 'hubs'));
        writeFileSync(join(home, 'hubs', `${process.pid}.json`), JSON.stringify(profile), { mode: 0o600 });
        oneLineError(await runCli(['hub', 'status'], { IOTHUB_TUT_HOME: home }), 8, /No local hub is running/);
        assert.deepEqual(profiles(home), []);
        assert.ok(alive(process.pid), 'and nothing was sent to that process');
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    },
  );

  test('two hubs on two data dirs: both listed, --hub picks one, none picked is an error naming both, each stops alone', async () => {
    const root = tempDir();
    const env = { IOTHUB_TUT_HOME: root };
    const [dirA, dirB] = [join(root, 'a'), join(root, 'b')];
    const a = await startHub(env, '--data-dir', dirA);
    const b = await startHub(env, '--data-dir', dirB).catch(async (err) => {
      await a.hub.stop();
      throw err;
    });
    try {
      const status = await runCli(['hub', 'status', '--json'], env);
      assert.equal(status.code, 0, status.stderr);
      assert.deepEqual(
        jsonLines(status.stdout).map((h) => [h.dataDir, h.pid, h.port]),
        [
          [dirA, a.started.pid, a.started.port],
          [dirB, b.started.pid, b.started.port],
        ],
      );

      const ambiguous = await runCli(['create-device', '-d', 'which'], env);
      oneLineError(ambiguous, 2, /2 local hubs are running/);
      for (const hub of [a, b])
        assert.match(ambiguous.stderr, new RegExp(`${hub.started.dataDir} on port ${hub.started.port}, pid ${hub.started.pid}`));
      assert.match(ambiguous.stderr, /--hub/);

      // --hub before the command or after it; the device lands on that hub alone.
      const onA = await runCli(['--hub', dirA, 'create-device', '-d', 'only-on-a', '--json'], env);
      assert.equal(onA.code, 0, onA.stderr);
      assert.equal(JSON.parse(onA.stdout).created, true);
      const onB = await runCli(['create-device', '-d', 'only-on-a', '--hub', dirB, '--json'], env);
      assert.equal(onB.code, 0, onB.stderr);
      assert.equal(JSON.parse(onB.stdout).created, true, 'hub B did not have it');
      oneLineError(await runCli(['create-device', '--hub', join(root, 'c')], env), 8, /No local hub is running on .*\/c; running: /);

      const stopA = await runCli(['hub', 'stop', '--hub', dirA, '--json'], env);
      assert.equal(stopA.code, 0, stopA.stderr);
      assert.deepEqual(jsonLines(stopA.stdout), [{ event: 'stopped', pid: a.started.pid, dataDir: dirA }]);
      assert.equal(await a.hub.exit(), 0, 'hub A exits cleanly');
      assert.ok(b.hub.child.exitCode === null, 'hub B still runs');
      assert.deepEqual(profiles(root), [`${b.started.pid}.json`], "hub A removed its profile only, not B's");

      // One hub left: the commands pick it by themselves, and `hub stop` needs no --hub.
      assert.equal((await runCli(['create-device', '-d', 'on-b'], env)).code, 0);
      assert.equal((await runCli(['hub', 'stop'], env)).code, 0);
      assert.equal(await b.hub.exit(), 0);
    } finally {
      await a.hub.stop();
      await b.hub.stop();
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('hub start --detach returns once the hub accepts connections; hub status --json shows it; hub stop waits until it has stopped', async () => {
    const home = tempDir();
    // File upload's storage account from the environment, as --detach hands it to the hub: its key stays off command lines.
    const env = { IOTHUB_TUT_HOME: home, IOTHUB_TUT_FILE_UPLOAD: azuriteHttpsConnectionString(10000) };
    const dataDir = join(home, 'hub');
    let pid: number | undefined;
    try {
      // Message routing from a file, as 'az iot hub show' prints it: the hub's lifecycle events go to the built-in endpoint.
      const routingFile = join(home, 'routing.json');
      const routes = [
        { name: 'lifecycle', source: 'DeviceLifecycleEvents', condition: 'true', endpointNames: ['events'], isEnabled: true },
      ];
      writeFileSync(routingFile, JSON.stringify({ properties: { routing: { routes } } }));
      const start = await runCli(
        ['hub', 'start', '--detach', ...EPHEMERAL, '--file-upload-container', 'device-logs', '--routing', routingFile, '--json'],
        env,
      );
      assert.equal(start.code, 0, start.stderr);
      const [started] = jsonLines(start.stdout);
      pid = started.pid as number;
      assert.equal(started.event, 'started');
      assert.equal(started.dataDir, dataDir);
      assert.equal(started.logFile, join(dataDir, 'hub.log'));
      assert.match(started.serviceConnectionString, /SharedAccessKey=.{4}…\(hidden\)/, 'masked');
      assert.deepEqual(started.fileUpload, {
        containerUrl: 'https://127.0.0.1:10000/devstoreaccount1/device-logs',
        storageCertFile: join(dataDir, 'tls', 'storage.pem'),
        storageKeyFile: join(dataDir, 'tls', 'storage-key.pem'),
      });
      assert.equal(statSync(started.fileUpload.storageKeyFile).mode & 0o777, 0o600, "the storage certificate's key is the owner's alone");
      assert.match(readFileSync(started.fileUpload.storageCertFile, 'utf8'), /^-----BEGIN CERTIFICATE-----/);

      // The command has exited; the hub runs on, in a session of its own (so no terminal's hang-up reaches it).
      assert.ok(alive(pid), 'the hub outlives the command that started it');
      if (existsSync(`/proc/${pid}/stat`)) {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        assert.equal(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]), pid, 'the hub leads its own session');
        assert.doesNotMatch(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /AccountKey/, 'no key on its command line');
      }
      assert.deepEqual(started.routing, { file: routingFile, routes: 1, fallback: true });
      const created = await runCli(['create-device', '-d', 'detached-1'], env);
      assert.equal(created.code, 0, created.stderr);
      const monitored = await runCli(['monitor-events', '--from-start', '--count', '1', '--timeout', '30', '--properties', '--json'], env);
      assert.equal(monitored.code, 0, monitored.stderr);
      const lifecycle = jsonLines(monitored.stdout).find((line) => line.event === 'message');
      assert.equal(lifecycle?.deviceId, 'detached-1');
      assert.equal(lifecycle?.properties?.opType, 'createDeviceIdentity');
      assert.equal(lifecycle?.source, 'deviceLifecycleEvents');
      assert.equal(lifecycle?.systemProperties?.['iothub-message-source'], 'deviceLifecycleEvents');
      assert.equal(lifecycle?.systemProperties?.userId, 'localhost', "the hub's name, as text");
      const human = await runCli(['monitor-events', '--from-start', '--count', '1', '--timeout', '30'], env);
      assert.match(human.stdout, /==== From: detached-1 \(deviceLifecycleEvents: createDeviceIdentity\) at /, 'says what the event is');

      const status = await runCli(['hub', 'status', '--json'], env);
      assert.equal(status.code, 0, status.stderr);
      const [shown] = jsonLines(status.stdout);
      for (const field of ['pid', 'port', 'eventHubPort', 'dataDir', 'caFile', 'logFile'])
        assert.equal(shown[field], started[field], field);
      assert.ok(Number.isInteger(shown.uptimeSeconds) && shown.uptimeSeconds >= 0);
      assert.match(shown.serviceConnectionString, /…\(hidden\)/);
      assert.match(shown.eventHubConnectionString, /…\(hidden\)/);
      const text = await runCli(['hub', 'status'], env);
      assert.match(text.stdout, new RegExp(`pid ${pid}`));
      assert.match(text.stdout, /Uptime\s+\d+s/);
      assert.match(text.stdout, /Routing\s+.*routing\.json \(1 route, fallback route on\)/);

      const failed = await runCli(['hub', 'start', '--detach', '--port', String(started.port), '--amqp-port', '0', '--in-memory'], env);
      oneLineError(failed, 8, new RegExp(`port ${started.port} is in use`));

      const stop = await runCli(['hub', 'stop', '--json'], env);
      assert.equal(stop.code, 0, stop.stderr);
      assert.deepEqual(jsonLines(stop.stdout), [{ event: 'stopped', pid, dataDir }]);
      assert.ok(!alive(pid), 'stopped when hub stop returns');
      assert.deepEqual(profiles(home), [], 'its profile is gone');
      assert.ok(!existsSync(join(dataDir, 'hub.lock.json')), 'it released the data dir');
      const logged = readFileSync(started.logFile, 'utf8');
      assert.match(logged, /info\s+hub: stopped/, 'it stopped gracefully, and logged to its file');
      assert.match(logged, /routing: route lifecycle sends DeviceLifecycleEvents to events/);

      oneLineError(await runCli(['hub', 'status'], env), 8, /No local hub is running/);
      oneLineError(await runCli(['hub', 'stop'], env), 8, /No local hub is running/);
    } finally {
      if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
      rmSync(home, { recursive: true, force: true });
    }
  });

  test(
    'hub stop returns once the hub has ended, also when its parent never reaps it (as a container whose first process is sleep)',
    { skip: !existsSync('/proc/self/stat') && 'needs /proc' },
    async () => {
      const home = tempDir();
      const env = { IOTHUB_TUT_HOME: home };
      // sh starts the hub in the background, then becomes sleep, which never waits for its children.
      const script = '"$0" "$@" >/dev/null 2>&1 & exec sleep 300';
      const parent = spawn('sh', ['-c', script, process.execPath, BIN, 'hub', 'start', ...EPHEMERAL], {
        env: cliEnv(env),
        stdio: 'ignore',
      });
      try {
        // Its profile appears once it serves (looked for here, without a CLI process per look); then hub status finds it.
        for (
          const deadline = Date.now() + 60_000;
          !profiles(home).some((f) => f.endsWith('.json'));
          await new Promise((r) => setTimeout(r, 100))
        )
          assert.ok(Date.now() < deadline, 'the hub did not start within 60 s');
        const status = await runCli(['hub', 'status', '--json'], env);
        assert.equal(status.code, 0, status.stderr);
        const [hub] = jsonLines(status.stdout);
        const stop = await runCli(['hub', 'stop', '--timeout', '20'], env);
        assert.equal(stop.code, 0, stop.stderr);
        assert.equal(procState(hub.pid), 'Z', 'the hub has ended, and stays a zombie that its parent does not reap');
        oneLineError(await runCli(['hub', 'status'], env), 8, /No local hub is running/);
      } finally {
        parent.kill('SIGKILL');
        rmSync(home, { recursive: true, force: true });
      }
    },
  );

  test('the CI smoke script in examples/ passes', async () => {
    // The script runs bin/iothub-tut with the `node` on PATH: this one.
    const env = { ...cliEnv({}), PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
    const script = spawn('bash', [SMOKE_SCRIPT], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    script.stdout.on('data', (c) => (output += c));
    script.stderr.on('data', (c) => (output += c));
    const timer = setTimeout(() => script.kill('SIGKILL'), 240_000);
    const [code] = await once(script, 'close');
    clearTimeout(timer);
    assert.equal(code, 0, output);
    assert.match(output, /ci-smoke: passed/);
  });
});
