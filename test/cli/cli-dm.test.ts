import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CliProcess, createIdentity, jsonLines, runCli, startHubProcess, type HubProcess } from '../helpers/cli.js';

describe('device management: reboot-device and invoke-reboot as separate processes', { concurrency: true }, () => {
  let terminal1: HubProcess;
  let env: HubProcess['env'];
  before(async () => {
    terminal1 = await startHubProcess();
    env = terminal1.env;
    for (const id of ['myDeviceId', 'dm-offline']) await createIdentity(terminal1.home, id);
  });
  after(async () => assert.equal(await terminal1.stop(), 0, 'the hub stops cleanly on Ctrl-C'));

  // Both run reboot-device as myDeviceId: one connection at a time; the refusals below run beside them.
  describe('reboot-device answering', { concurrency: 1 }, () => {
    test('terminal 1 reboots on the method call and reports rebootTime; terminal 2 sees the answer and the last reboot time', async () => {
      const device = new CliProcess(['reboot-device', '--reboot-seconds', '2', '--count', '1', '--json'], env);
      try {
        await device.waitFor((l) => l.event === 'ready' && l.deviceId === 'myDeviceId');
        const started = Date.now();
        const service = await runCli(['invoke-reboot', '--json'], env);
        assert.equal(service.code, 0, service.stderr);
        const lines = jsonLines(service.stdout);
        assert.deepEqual(
          lines.find((l) => l.event === 'response'),
          { event: 'response', status: 200, payload: { Response: 'Rebooting device' } },
        );
        const { rebootTime } = lines.find((l) => l.event === 'rebootTime');
        assert.ok(Date.parse(rebootTime) >= started, `rebootTime ${rebootTime} is from this reboot`);

        assert.equal(await device.exit(), 0, device.stderr);
        const events = device.lines.map((l: any) => l.event);
        assert.deepEqual(events, ['ready', 'request', 'rebooting', 'rebooted', 'reported', 'stopped']);
        assert.deepEqual(
          device.lines.find((l: any) => l.event === 'request'),
          { event: 'request', methodName: 'rebootDevice', payload: { method_number: '42' } },
        );
        assert.equal((device.lines.find((l: any) => l.event === 'reported') as { rebootTime: string }).rebootTime, rebootTime);
      } finally {
        await device.stop();
      }
    });

    test('text output reads like the tutorial; Ctrl-C exits 0', async () => {
      const device = new CliProcess(['reboot-device', '--reboot-seconds', '1'], env);
      try {
        await device.waitFor((l) => typeof l === 'string' && l.startsWith('Waiting for the rebootDevice method'));
        const service = await runCli(['invoke-reboot', '--wait', '30'], env);
        assert.equal(service.code, 0, service.stderr);
        assert.match(service.stdout, /Device answered 200: \{"Response":"Rebooting device"\}/);
        assert.match(service.stdout, /^Last reboot time: \d{4}-\d\d-\d\dT/m);
        await device.waitFor((l) => typeof l === 'string' && l.startsWith('Reported rebootTime'));
        for (const line of ['Method request: rebootDevice {"method_number":"42"}', 'Rebooting device (1 s)', 'Device rebooted'])
          assert.ok(device.lines.includes(line), line);
      } finally {
        assert.equal(await device.stop(), 0, device.stderr);
      }
    });
  });

  test('invoke-reboot to a registered device that is not running: one line, exit 6', async () => {
    const r = await runCli(['invoke-reboot', '-d', 'dm-offline'], env);
    assert.equal(r.code, 6, r.stderr);
    assert.match(r.stderr, /^error: .*not online/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  test('invoke-reboot to an unknown device: exit 3', async () => {
    const r = await runCli(['invoke-reboot', '-d', 'dm-nobody'], env);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /dm-nobody/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  test('reboot-device for an unregistered device: exit 3 with how to create it', async () => {
    const r = await runCli(['reboot-device', '-d', 'dm-ghost'], env);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /Create it with 'iothub-tut create-device -d dm-ghost'\.$/m);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});
