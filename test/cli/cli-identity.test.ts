import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startHubProcess, type HubProcess } from '../helpers/cli.js';

// Each test acts on identities of its own: they run side by side.
describe('hub start + create-module as separate processes', { concurrency: true }, () => {
  let terminal1: HubProcess;
  let env: HubProcess['env'];
  before(async () => {
    terminal1 = await startHubProcess();
    env = terminal1.env;
  });
  after(async () => assert.equal(await terminal1.stop(), 0, 'the hub stops cleanly on Ctrl-C'));

  test('create-module twice: the second run reports the existing identities with the same keys', async () => {
    const first = await runCli(['create-module', '--json', '--show-secrets'], env);
    assert.equal(first.code, 0, first.stderr);
    const a = JSON.parse(first.stdout);
    assert.equal(a.device.deviceId, 'myFirstDevice');
    assert.equal(a.module.moduleId, 'myFirstModule');
    assert.equal(a.module.created, true);
    assert.match(a.module.connectionString, /^HostName=localhost;DeviceId=myFirstDevice;ModuleId=myFirstModule;SharedAccessKey=.+/);

    const second = await runCli(['create-module', '--json', '--show-secrets'], env);
    assert.equal(second.code, 0, second.stderr);
    const b = JSON.parse(second.stdout);
    assert.equal(b.module.created, false);
    assert.equal(b.device.created, false);
    assert.equal(b.module.primaryKey, a.module.primaryKey);
    assert.equal(b.device.primaryKey, a.device.primaryKey);
  });

  test('a connection string comes from the flag, then the environment, then .env, then the running hub', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'iothub-tut-cwd-'));
    try {
      const good = JSON.parse((await runCli(['hub', 'status', '--json', '--show-secrets'], env)).stdout).serviceConnectionString as string;
      const wrongKey = good.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 3).toString('base64')}`);
      const malformed = 'HostName=localhost;SharedAccessKeyName=iothubowner';
      const create = (extraEnv: Record<string, string> = {}, flag: string[] = []) =>
        runCli(['create-device', '-d', 'order-1', ...flag], { ...env, ...extraEnv }, 60_000, cwd);

      assert.equal((await create()).code, 0, 'the running hub, when nothing else is set');
      writeFileSync(join(cwd, '.env'), `IOTHUB_CONNECTION_STRING="${wrongKey}"\n`);
      assert.equal((await create()).code, 4, '.env wins over the hub (its wrong key is refused)');
      assert.equal((await create({ IOTHUB_CONNECTION_STRING: good })).code, 0, 'the environment wins over .env');
      assert.equal(
        (await create({ IOTHUB_CONNECTION_STRING: good }, ['--connection-string', malformed])).code,
        2,
        'the flag wins over the environment',
      );
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  test('keys are masked unless --show-secrets', async () => {
    const shown = JSON.parse((await runCli(['create-device', '-d', 'mask-1', '--json', '--show-secrets'], env)).stdout);
    const masked = await runCli(['create-device', '-d', 'mask-1', '--json'], env);
    assert.equal(masked.code, 0);
    assert.ok(!masked.stdout.includes(shown.primaryKey), 'the key does not appear');
    assert.ok(!masked.stdout.includes(shown.primaryKey.slice(4, 20)));
    const text = await runCli(['create-device', '-d', 'mask-1'], env);
    assert.match(text.stdout, /Device already registered/);
    assert.ok(!text.stdout.includes(shown.primaryKey));
  });

  test('an unknown policy key gets one line and the unauthorized exit code', async () => {
    const wrongKey = Buffer.alloc(32, 9).toString('base64');
    const r = await runCli(
      ['create-device', '--connection-string', `HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=${wrongKey}`],
      env,
    );
    assert.equal(r.code, 4);
    assert.match(r.stderr, /^error: .*not authorized/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});
