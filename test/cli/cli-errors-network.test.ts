import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { CliProcess, homeFor } from '../helpers/cli.js';
import { startTestHub, tempDir } from '../helpers/hub.js';
import {
  across,
  COMMANDS,
  deviceString,
  eventHubString,
  KEY,
  NO_DNS,
  ofKind,
  oneLineError,
  serviceString,
  ofServiceCommand,
  walk,
} from '../helpers/error-table.js';
import { Throttle, type ThrottleKind } from '../../src/hub/throttling.js';
// Names under .invalid fail to resolve in this process too, for the service commands run in it.
import '../helpers/no-dns.js';

// README's "Errors and exit codes" table, the rows of a hub the CLI cannot use (exit 8): gone, busy
// past the retries, or at a host name that does not resolve. Most of their time is spent waiting
// (retries, back-off, connect timeouts).

/**
 * The service commands run in this process; the device commands, whose closed clients can leave the
 * SDK's timers, in a worker thread; the first of each row and kind as a subprocess. All at once:
 * they mostly wait, on retries and back-off.
 */
const WAITING = { inProcess: ofServiceCommand };

// The tests run at the same time (each with its own hub and home): those that wait on retries and
// timeouts overlap those that load SDKs.
describe('errors and exit codes: a hub that is gone, busy or has no address', { concurrency: true }, () => {
  const home = tempDir();
  const env = { IOTHUB_TUT_HOME: home };
  after(() => rmSync(home, { recursive: true, force: true }));

  test('hub not reachable (exit 8), after the retries, for every command', async () => {
    // The profile of a hub that has stopped listening.
    const gone = await startTestHub({ inMemory: true });
    const goneHome = homeFor(gone);
    await gone.dispose();
    const refused = /the hub is not reachable \(connection refused\)\. Is it running\? Start one with 'iothub-tut hub start'\./;
    try {
      await walk(
        { IOTHUB_TUT_HOME: goneHome },
        [
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
          // Beside the table's commands: send-c2d's AMQP client refused, receive-c2d's key look-up.
          {
            name: 'send-c2d',
            args: ['send-c2d', '-d', 'known'],
            check: (r) =>
              oneLineError(r, 8, /^error: sending to known: the hub is not reachable \(its AMQP connection closed: .*\)\. Is it running\?/),
          },
          {
            name: 'receive-c2d',
            args: ['receive-c2d', '-d', 'known', '--timeout', '30'],
            check: (r) => oneLineError(r, 8, new RegExp(`${refused.source} \\(gave up after 6 attempts\\)$`, 'm')),
          },
        ],
        WAITING,
      );
    } finally {
      rmSync(goneHome, { recursive: true, force: true });
    }
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
    await walk(
      env,
      [
        ...cases,
        // Not a host name at all, without the preload: Node's own resolver says ENOTFOUND.
        ...across([COMMANDS[0]!], () => ['create-device', '-c', serviceString(KEY, 'iothubowner', '127.0.0.1:1')], 8, message),
      ],
      // This process resolves names as NO_DNS makes the subprocesses do (it imports no-dns.ts).
      { inProcess: ofServiceCommand },
    );
  });

  test('hub busy (exit 8): throttled past the retries, for every command that calls the service or connects as a device', async () => {
    const throttle = new Throttle('s1', () => 0);
    for (const kind of ['registry', 'twinRead', 'twinUpdate', 'methods', 'queries', 'connect'] satisfies ThrottleKind[])
      while (throttle.allow(kind));
    const busy = await startTestHub({ throttle });
    const busyHome = homeFor(busy);
    const message = /the hub is busy \(.*\); try again shortly\. \(gave up after 6 attempts\)$/m;
    try {
      await walk(
        { IOTHUB_TUT_HOME: busyHome },
        [
          // New connections refused with CONNACK 3, which the device SDK would retry for minutes: the
          // longest waits (20 s each), so first in the queue, for the others to run while they wait.
          ...across(
            ofKind('device'),
            (c) => [...c.run, '-c', deviceString('known')],
            8,
            /not connected within 20 s: the hub is busy or unreachable; try again shortly\.$/m,
          ),
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
        ],
        WAITING,
      );
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
});
