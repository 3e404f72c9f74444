import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CliProcess, createIdentity, jsonLines, runCli, runCliInProcess, startHubProcess, type HubProcess } from '../helpers/cli.js';

// Each test acts on devices of its own (or on job-offline, which stays offline), so they run side by side.
describe("schedule-job: the jobs tutorial's service, against a hub in another process", { concurrency: true }, () => {
  let terminal1: HubProcess;
  let env: HubProcess['env'];
  before(async () => {
    terminal1 = await startHubProcess();
    env = terminal1.env;
    for (const id of ['job-online', 'job-offline', 'job-door', 'job-methods', 'job-idle', 'job-ctrl-c'])
      await createIdentity(terminal1.home, id);
  });
  after(async () => assert.equal(await terminal1.stop(), 0, 'the hub stops cleanly on Ctrl-C'));

  test('a method job on a running device: progress until it ends, and the job as JSON', async () => {
    const device = new CliProcess(['reboot-device', '-d', 'job-online', '--reboot-seconds', '1', '--count', '1', '--json'], env);
    try {
      await device.waitFor((l) => l.event === 'ready');
      const r = await runCli(
        [
          'schedule-job',
          '--method',
          'rebootDevice',
          '--payload',
          '{}',
          '--query',
          "deviceId = 'job-online'",
          '--job-id',
          'cli-method',
          '--wait',
          '--json',
        ],
        env,
      );
      assert.equal(r.code, 0, r.stderr);
      const [job] = jsonLines(r.stdout);
      assert.equal(job.jobId, 'cli-method');
      assert.equal(job.status, 'completed');
      assert.deepEqual(job.deviceJobStatistics, { deviceCount: 1, failedCount: 0, succeededCount: 1, runningCount: 0, pendingCount: 0 });
      await device.waitFor((l) => l.event === 'request' && l.methodName === 'rebootDevice');
    } finally {
      await device.stop();
    }
  });

  test('the jobs tutorial end to end: answer-methods answers a lockDoor job with its canned payload', async () => {
    const device = new CliProcess(['answer-methods', '-d', 'job-door', '--payload', '{"locked":true}', '--count', '1', '--json'], env);
    try {
      const ready = await device.waitFor((l) => l.event === 'ready');
      assert.deepEqual(ready.methods, ['lockDoor']);
      const r = await runCli(
        [
          'schedule-job',
          '--method',
          'lockDoor',
          '--payload',
          '{"door":"front"}',
          '--query',
          "deviceId = 'job-door'",
          '--job-id',
          'cli-lock',
          '--wait',
          '--json',
        ],
        env,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(jsonLines(r.stdout)[0].deviceJobStatistics.succeededCount, 1);
      const call = await device.waitFor((l) => l.event === 'call');
      assert.deepEqual(call, { event: 'call', methodName: 'lockDoor', payload: { door: 'front' }, status: 200 });
      assert.equal(await device.exit(), 0, device.stderr);
      assert.deepEqual(device.lines.at(-1), { event: 'stopped', calls: 1 });
      const rows = await runCli(['query', "SELECT * FROM devices.jobs WHERE jobId = 'cli-lock'", '--json'], env);
      assert.deepEqual(jsonLines(rows.stdout)[0].outcome.deviceMethodResponse, { status: 200, payload: { locked: true } });
    } finally {
      await device.stop();
    }
  });

  test('answer-methods: several named methods with a canned status, 404 for the others, bounded by --timeout', async () => {
    // Beside the flow: the wait bound, on a device nothing calls, and a usage error.
    const waiting = runCli(['answer-methods', '-d', 'job-idle', '--count', '1', '--timeout', '2'], env);
    const badStatus = runCli(['answer-methods', '--status', '42'], env);
    const device = new CliProcess(
      [
        'answer-methods',
        '-d',
        'job-methods',
        '--method',
        'lockDoor',
        '--method',
        'unlockDoor',
        '--status',
        '202',
        '--payload',
        '"done"',
        '--count',
        '2',
      ],
      env,
    );
    try {
      await device.waitFor((l) => typeof l === 'string' && l.startsWith('Waiting for lockDoor, unlockDoor on job-methods'));
      const unlock = await runCli(['invoke-method', 'unlockDoor', '-d', 'job-methods', '--json'], env);
      assert.equal(unlock.code, 0, unlock.stderr);
      assert.deepEqual(jsonLines(unlock.stdout)[0], { status: 202, payload: 'done' });
      const other = await runCli(['invoke-method', 'rebootDevice', '-d', 'job-methods', '--json'], env);
      assert.deepEqual(jsonLines(other.stdout)[0], { status: 404, payload: { Response: 'Unknown method' } });
      const lock = await runCli(['invoke-method', 'lockDoor', '-d', 'job-methods'], env);
      assert.equal(lock.code, 0, lock.stderr);
      assert.equal(await device.exit(), 0, device.stderr);
      assert.ok(device.lines.includes('Method request: unlockDoor null; answered 202'), JSON.stringify(device.lines));
      assert.equal(device.lines.at(-1), 'Stopped after 2 calls.');
    } finally {
      await device.stop();
    }
    const waited = await waiting;
    assert.equal(waited.code, 5, waited.stderr);
    assert.match(waited.stderr, /^error: .*no direct method call within 2 s \(received 0\)\n$/);
    const bad = await badStatus;
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--status must be a whole number from 100 to 599/);
  });

  test('answer-methods without --count serves until Ctrl-C, then exits 0', async () => {
    const device = new CliProcess(['answer-methods', '-d', 'job-ctrl-c', '--json'], env);
    await device.waitFor((l) => l.event === 'ready');
    assert.equal(await device.stop(), 0, device.stderr);
    assert.deepEqual(device.lines.at(-1), { event: 'stopped', calls: 0 });
  });

  test('a twin job in text: the desired properties land on the selected twin', async () => {
    const r = await runCli(
      ['schedule-job', '--desired', '{"building":"43","floor":3}', '--query', "deviceId = 'job-offline'", '--wait'],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /scheduleUpdateTwin/);
    assert.match(r.stdout, /completed \(1 devices: 1 succeeded, 0 failed, 0 running, 0 pending\)/);
    const twin = await runCli(['twin', 'show', '-d', 'job-offline', '--json'], env);
    assert.equal(jsonLines(twin.stdout)[0].properties.desired.floor, 3);
  });

  test('a device that fails its part: exit 1, and where to see why', async () => {
    const r = await runCli(
      ['schedule-job', '--method', 'rebootDevice', '--query', "deviceId = 'job-offline'", '--job-id', 'cli-offline', '--wait'],
      env,
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: job 'cli-offline' completed, and 1 of 1 device\(s\) failed; see why with: query/);
    const rows = await runCli(['query', "SELECT * FROM devices.jobs WHERE jobId = 'cli-offline'", '--json'], env);
    assert.equal(jsonLines(rows.stdout)[0].error.code, 'DeviceNotOnline');
  });

  test('--wait is bounded by --timeout (exit 5); without --wait the job is scheduled and left to run', async () => {
    const start = new Date(Date.now() + 120_000).toISOString();
    const waited = await runCli(
      ['schedule-job', '--desired', '{"a":1}', '--start', start, '--job-id', 'cli-later', '--wait', '--timeout', '1'],
      env,
    );
    assert.equal(waited.code, 5, waited.stderr);
    assert.match(waited.stderr, /^error: timed out after 1 s: job 'cli-later' is still scheduled/);
    const r = await runCli(['schedule-job', '--desired', '{"a":1}', '--start', start, '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(['queued', 'scheduled'].includes(jsonLines(r.stdout)[0].status));
    // The hub's refusal of a second job with that id: one line, exit 7.
    const again = await runCli(['schedule-job', '--desired', '{"a":1}', '--job-id', 'cli-later'], env);
    assert.equal(again.code, 7, again.stderr);
    assert.match(again.stderr, /^error: .*a job with this id exists already.*\n$/);
  });

  test('bad input: one line, exit 2', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [[], 2, /give either --method <name> or --desired <json>/],
      [['--method', 'x', '--desired', '{}'], 2, /give either --method/],
      [['--desired', '[1]'], 2, /--desired must be a JSON object/],
      [['--method', 'x', '--start', 'tomorrow'], 2, /--start must be an ISO 8601 time/],
      [['--method', 'x', '--response-timeout', '2'], 2, /--response-timeout must be a whole number from 5 to 300/],
      [['--method', 'x', '--job-id', 'no spaces allowed'], 2, /job id 'no spaces allowed' is invalid/],
      [['--method', 'x', '--query', 'tags.x ='], 2, /Syntax error/],
    ];
    // The first as a subprocess, the others in this process (its service SDK is loaded already).
    const results = await Promise.all(cases.map(([args], i) => (i === 0 ? runCli : runCliInProcess)(['schedule-job', ...args], env)));
    for (const [i, [args, code, message]] of cases.entries()) {
      const r = results[i]!;
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(
        r.stderr
          .trim()
          .split('\n')
          .filter((l) => !l.startsWith('(run with')).length,
        1,
        r.stderr,
      );
    }
  });
});
