import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  CliProcess,
  createIdentity,
  demoResult,
  runCli,
  runCliInProcess,
  runDemo,
  startHubProcess,
  type HubProcess,
} from '../helpers/cli.js';

// The demo runs its own hub, beside the tutorial's processes on this file's hub.
describe('module twins', { concurrency: true }, () => {
  describe(
    'module twin tutorial as separate processes: receive-twin-patch, update-module-twin, update-reported',
    { concurrency: true },
    () => {
      let terminal1: HubProcess;
      let env: HubProcess['env'];
      before(async () => {
        terminal1 = await startHubProcess();
        env = terminal1.env;
        await createIdentity(terminal1.home, 'myFirstDevice', 'myFirstModule');
      });
      after(async () => assert.equal(await terminal1.stop(), 0, 'the hub stops cleanly on Ctrl-C'));

      // A device or module holds one connection at a time: what connects as the module runs one at a time, as does
      // what connects as the device; the two groups, and what connects to nothing, run side by side.
      describe('as myFirstModule', { concurrency: 1 }, () => {
        test('terminal 1 receives the patch terminal 2 makes, prints it and exits 0', async () => {
          const receiver = new CliProcess(['receive-twin-patch', '--count', '1', '--timeout', '60', '--json'], env);
          try {
            await receiver.waitFor((l) => l.event === 'ready', 60_000);
            const update = await runCli(['update-module-twin', '--json'], env);
            assert.equal(update.code, 0, update.stderr);
            const { before: b, after: a } = JSON.parse(update.stdout);
            assert.equal(a.properties.desired.telemetryInterval, 122);
            assert.equal(a.properties.desired.$version, b.properties.desired.$version + 1);

            const { patch } = await receiver.waitFor((l) => l.event === 'patch', 60_000);
            assert.deepEqual(patch, { telemetryInterval: 122, $version: a.properties.desired.$version });
            assert.equal(await receiver.exit(), 0, receiver.stderr);
          } finally {
            await receiver.stop();
          }
        });

        test('update-reported prints the new reported version, visible on the service side', async () => {
          const r = await runCli(['update-reported', '--reported', '{"firmware":"1.2.3"}', '--json'], env);
          assert.equal(r.code, 0, r.stderr);
          const result = JSON.parse(r.stdout);
          assert.equal(result.identity, 'myFirstDevice/myFirstModule');
          assert.equal(result.reported.firmware, '1.2.3');
          assert.ok(result.version >= 2);
        });
      });

      describe('as myFirstDevice', { concurrency: 1 }, () => {
        test('Ctrl-C while waiting closes the client and exits 0', async () => {
          const receiver = new CliProcess(['receive-twin-patch', '--device', '--json'], env);
          await receiver.waitFor((l) => l.event === 'ready', 60_000);
          assert.equal(await receiver.stop(), 0, receiver.stderr);
          assert.deepEqual(receiver.lines.at(-1), { event: 'stopped', received: 0 });
        });

        test('--timeout expiry: exit 5 with one line', async () => {
          const r = await runCli(['receive-twin-patch', '--device', '--timeout', '3'], env, 60_000);
          assert.equal(r.code, 5, r.stderr);
          assert.match(r.stderr, /^error: .*no desired property patch within 3 s/);
          assert.equal(r.stderr.trim().split('\n').length, 1);
        });
      });

      test('invalid --desired JSON: one line, exit 2', async () => {
        const r = await runCliInProcess(['update-module-twin', '--desired', '{telemetryInterval:122}'], env);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /^error: --desired is not valid JSON/);
        assert.equal(r.stderr.trim().split('\n').length, 1);
      });
    },
  );

  describe('demo', () => {
    test('runs every step end to end against its in-process hub: twins, telemetry, cloud-to-device feedback, a lockDoor job', async () => {
      const steps = await runDemo();
      const twinStep = steps.find((s) => s.step.startsWith('ReceiveModuleTwinDesiredPropertiesPatch'));
      assert.deepEqual(twinStep?.result, { desiredVersion: 2 });
      assert.deepEqual(demoResult(steps, 'UpdateReported'), { reportedVersion: 2 });
      assert.deepEqual(demoResult(steps, 'SimulatedDevice + monitor'), { confirmed: 5, received: 5 });
      assert.deepEqual(demoResult(steps, 'Cloud-to-device messages'), { received: 1, feedback: 'Success' });
      assert.deepEqual(demoResult(steps, 'Schedule and broadcast jobs'), {
        status: 'completed',
        deviceJobStatistics: { deviceCount: 1, failedCount: 0, succeededCount: 1, runningCount: 0, pendingCount: 0 },
      });
      assert.equal(steps.length, 8);
    });
  });
});
