import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { CliProcess, createIdentity, demoResult, homeFor, jsonLines, runCli, runCliInProcess, runDemo } from '../helpers/cli.js';
import { startTestHub, type TestHub } from '../helpers/hub.js';

// --transport on the device commands, as a user runs them: HTTPS where the device SDK has the
// feature, a one-line refusal (exit 2) naming the transports that have it where it does not; AMQP and
// AMQP over WebSockets for everything. The hub runs in this process (`hub start` is not under test here).

/** A usage error (exit 2): one `error:` line that matches `pattern` (commander adds its help hint below). */
function usageError(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  const [line, ...rest] = r.stderr.trim().split('\n');
  assert.match(line!, /^error: /);
  assert.match(line!, pattern);
  assert.deepEqual(
    rest.filter((l) => l !== '(run with --help for usage)'),
    [],
    r.stderr,
  );
}

// The demos run their own hubs, beside the flows on this file's hub.
describe('--transport', { concurrency: true }, () => {
  // One at a time: the monitors read back what the flows before them sent, and the flows connect as the same identities.
  describe('--transport on the device commands', { concurrency: 1 }, () => {
    let t: TestHub;
    let home: string;
    let env: { IOTHUB_TUT_HOME: string };
    before(async () => {
      t = await startTestHub({ inMemory: true });
      home = homeFor(t);
      env = { IOTHUB_TUT_HOME: home };
      await createIdentity(home, 'myFirstDevice', 'myFirstModule');
      await createIdentity(home, 'myDeviceId');
    });
    after(async () => {
      await t.dispose();
      rmSync(home, { recursive: true, force: true });
    });

    test('twins and methods over http are refused in one line naming the transports that have them', async () => {
      const cases: Array<[string[], RegExp]> = [
        [['reboot-device', '--count', '1'], /direct methods and device twins over http: use --transport mqtt, mqtt-ws, amqp or amqp-ws\.$/],
        [['receive-twin-patch', '--timeout', '5'], /device twins over http: use --transport mqtt, mqtt-ws, amqp or amqp-ws\.$/],
        [['update-reported'], /device twins over http: use --transport mqtt, mqtt-ws, amqp or amqp-ws\.$/],
        [['answer-methods', '--count', '1'], /direct methods over http: use --transport mqtt, mqtt-ws, amqp or amqp-ws\.$/],
      ];
      // Refused before any connection: the first as a subprocess, the others in this process.
      const results = await Promise.all(
        cases.map(([args], i) => (i === 0 ? runCli : runCliInProcess)([...args, '--transport', 'http'], env)),
      );
      for (const [i, [, pattern]] of cases.entries()) usageError(results[i]!, pattern);
    });

    test('send-telemetry over http, amqp and amqp-ws: every message confirmed, and read back with its properties, as over MQTT', async () => {
      const sends: Array<[string, number]> = [
        ['http', 3],
        ['amqp', 2],
        ['amqp-ws', 2],
      ];
      for (const [transport, count] of sends) {
        const r = await runCli(['send-telemetry', '--transport', transport, '--count', String(count), '--interval', '0', '--json'], env);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(jsonLines(r.stdout).at(-1), {
          ...jsonLines(r.stdout).at(-1),
          event: 'summary',
          sent: count,
          confirmed: count,
          failed: 0,
        });
      }
      // One monitor reads them all back.
      const monitor = await runCli(
        ['monitor-events', '--from-start', '--count', '7', '--properties', '--json', '--timeout', '60'],
        env,
        90_000,
      );
      assert.equal(monitor.code, 0, monitor.stderr);
      const messages = jsonLines(monitor.stdout).filter((l) => l.event === 'message');
      assert.equal(messages.length, 7);
      // Over HTTPS, sent at once (--interval 0), each on its own request: the three may land in any order.
      const overHttp = messages.slice(0, 3).sort((a, b) => a.systemProperties.messageId.localeCompare(b.systemProperties.messageId));
      assert.deepEqual(
        overHttp.map((m) => [m.systemProperties.messageId, m.properties]),
        [1, 2, 3].map((n) => [`message_${n}`, { Property: `PropMsg_${n}` }]),
      );
      assert.equal(overHttp[0].systemProperties['iothub-connection-device-id'], 'myFirstDevice');
      // Then two over each AMQP transport, in order.
      assert.deepEqual(
        messages.slice(3).map((m) => [m.systemProperties.messageId, m.properties]),
        [
          ['message_1', { Property: 'PropMsg_1' }],
          ['message_2', { Property: 'PropMsg_2' }],
          ['message_1', { Property: 'PropMsg_1' }],
          ['message_2', { Property: 'PropMsg_2' }],
        ],
      );
    });

    test('twins over amqp: receive-twin-patch gets the patch update-module-twin makes; update-reported over amqp-ws', async () => {
      const receiver = new CliProcess(['receive-twin-patch', '--transport', 'amqp', '--count', '1', '--timeout', '60', '--json'], env);
      try {
        await receiver.waitFor((l) => l.event === 'ready', 60_000);
        const update = await runCli(['update-module-twin', '--json'], env);
        assert.equal(update.code, 0, update.stderr);
        const { after: a } = JSON.parse(update.stdout);
        const { patch } = await receiver.waitFor((l) => l.event === 'patch', 60_000);
        assert.deepEqual(patch, { telemetryInterval: 122, $version: a.properties.desired.$version });
        assert.equal(await receiver.exit(), 0, receiver.stderr);
      } finally {
        await receiver.stop();
      }
      const r = await runCli(['update-reported', '--transport', 'amqp-ws', '--reported', '{"via":"amqp-ws"}', '--json'], env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(jsonLines(r.stdout)[0].reported.via, 'amqp-ws');
    });

    test('methods over amqp-ws and amqp: reboot-device reboots and reports; answer-methods answers, 404 for other methods', async () => {
      const rebooting = new CliProcess(['reboot-device', '--transport', 'amqp-ws', '--reboot-seconds', '1', '--count', '1', '--json'], env);
      try {
        await rebooting.waitFor((l) => l.event === 'ready', 60_000);
        const service = await runCli(['invoke-reboot', '--json'], env);
        assert.equal(service.code, 0, service.stderr);
        const lines = jsonLines(service.stdout);
        assert.deepEqual(lines.find((l) => l.event === 'response')?.status, 200);
        assert.equal(await rebooting.exit(), 0, rebooting.stderr);
        assert.equal(
          (rebooting.lines.find((l: any) => l.event === 'reported') as any).rebootTime,
          lines.find((l) => l.event === 'rebootTime').rebootTime,
        );
      } finally {
        await rebooting.stop();
      }
      const answering = new CliProcess(
        ['answer-methods', '--transport', 'amqp', '--payload', '{"locked":true}', '--count', '1', '--json'],
        env,
      );
      try {
        await answering.waitFor((l) => l.event === 'ready', 60_000);
        // A method it was not told to answer: 404 from the toolkit's catch-all, over AMQP as over MQTT.
        const other = await runCli(['invoke-method', 'rebootDevice', '-d', 'myDeviceId', '--json'], env);
        assert.deepEqual(jsonLines(other.stdout)[0], { status: 404, payload: { Response: 'Unknown method' } });
        const lock = await runCli(['invoke-method', 'lockDoor', '-d', 'myDeviceId', '--json'], env);
        assert.deepEqual(jsonLines(lock.stdout)[0], { status: 200, payload: { locked: true } });
        assert.equal(await answering.exit(), 0, answering.stderr);
      } finally {
        await answering.stop();
      }
    });

    test('--transport mqtt-ws works, --websocket stays its shorthand, and the two together or a bad name are usage errors', async () => {
      const r = await runCli(['update-reported', '--transport', 'mqtt-ws', '--reported', '{"via":"mqtt-ws"}', '--json'], env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(jsonLines(r.stdout)[0].reported.via, 'mqtt-ws');
      const shorthand = await runCli(['update-reported', '--websocket', '--reported', '{"via":"websocket"}', '--json'], env);
      assert.equal(shorthand.code, 0, shorthand.stderr);
      // Usage errors: answered before any SDK loads, so in this process (as cli-errors.test.ts runs them).
      usageError(
        await runCliInProcess(['update-reported', '--websocket', '--transport', 'http'], env),
        /--websocket.*cannot be used with option '--transport/,
      );
      usageError(
        await runCliInProcess(['send-telemetry', '--transport', 'https'], env),
        /Allowed choices are mqtt, mqtt-ws, amqp, amqp-ws, http/,
      );
    });
  });

  describe('demo --transport', () => {
    test('http: the telemetry and C2D steps run over HTTPS, the twin, method and job steps over MQTT, and the report says which', async () => {
      const steps = await runDemo(['--transport', 'http']);
      const transports = Object.fromEntries(steps.map((s) => [s.step, s.transport]));
      assert.equal(transports['SimulatedDevice + monitor'], 'http');
      assert.equal(transports.UpdateReported, 'mqtt');
      assert.equal(transports['Device management'], 'mqtt');
      assert.equal(transports['Cloud-to-device messages'], 'http');
      assert.equal(transports['Schedule and broadcast jobs'], 'mqtt');
      assert.equal(transports.CreateDeviceIdentity, undefined);
      assert.deepEqual(demoResult(steps, 'SimulatedDevice + monitor'), { confirmed: 5, received: 5 });
      assert.deepEqual(demoResult(steps, 'Cloud-to-device messages'), { received: 1, feedback: 'Success' });
    });

    test('amqp: every device step runs over AMQP and passes', async () => {
      const steps = await runDemo(['--transport', 'amqp']);
      assert.deepEqual(
        steps.filter((s) => s.transport !== undefined).map((s) => [s.step, s.transport]),
        [
          ['ReceiveModuleTwinDesiredPropertiesPatch + UpdateModuleTwinDesiredProperties', 'amqp'],
          ['UpdateReported', 'amqp'],
          ['Device management', 'amqp'],
          ['SimulatedDevice + monitor', 'amqp'],
          ['Cloud-to-device messages', 'amqp'],
          ['Schedule and broadcast jobs', 'amqp'],
        ],
      );
    });
  });
});
