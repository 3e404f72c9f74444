import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CliProcess, createIdentity, jsonLines, runCli, startHubProcess, type HubProcess } from '../helpers/cli.js';

describe('telemetry: send-telemetry and monitor-events as separate processes', { concurrency: true }, () => {
  let terminal1: HubProcess;
  let env: HubProcess['env'];
  before(async () => {
    // A consumer group beside $Default, as 'az iot hub consumer-group create' would make on Azure (named
    // twice, and $Default once: names are case-insensitive, and $Default is always there).
    terminal1 = await startHubProcess(['--consumer-group', 'analytics', '--consumer-group', 'Analytics', '--consumer-group', '$Default']);
    env = terminal1.env;
    await createIdentity(terminal1.home, 'myFirstDevice');
  });
  after(async () => assert.equal(await terminal1.stop(), 0, 'the hub stops cleanly on Ctrl-C'));

  // One at a time: the first monitor reads every device's messages, and --from-start reads what the flow before it sent.
  // What sends nothing that a monitor could count runs beside them.
  describe('monitor and send', { concurrency: 1 }, () => {
    test('terminal 1 monitors, terminal 2 sends five: the monitor shows them with their properties and exits 0', async () => {
      const monitor = new CliProcess(['monitor-events', '--count', '5', '--json', '--properties', '--timeout', '120'], env);
      try {
        await monitor.waitFor((l) => l.event === 'ready');
        const sender = await runCli(['send-telemetry', '--count', '5', '--interval', '0.1', '--json'], env);
        assert.equal(sender.code, 0, sender.stderr);
        const sent = jsonLines(sender.stdout);
        assert.deepEqual(
          sent.filter((l) => l.event === 'confirmed').map((l) => l.confirmed),
          [1, 2, 3, 4, 5],
        );
        assert.deepEqual(sent.at(-1), { ...sent.at(-1), event: 'summary', sent: 5, confirmed: 5, failed: 0 });

        assert.equal(await monitor.exit(60_000), 0, monitor.stderr);
        const messages = monitor.lines.filter((l: any) => l.event === 'message') as any[];
        assert.equal(messages.length, 5);
        for (const [i, m] of messages.entries()) {
          const n = i + 1;
          assert.equal(m.deviceId, 'myFirstDevice');
          assert.equal(m.source, 'Telemetry');
          assert.equal(m.body.deviceId, 'myFirstDevice');
          assert.ok(m.body.windSpeed >= 12 && m.body.windSpeed <= 16, `windSpeed ${m.body.windSpeed}`);
          assert.deepEqual(m.properties, { Property: `PropMsg_${n}` });
          assert.equal(m.systemProperties.messageId, `message_${n}`);
          assert.equal(m.systemProperties.correlationId, `correlation_${n}`);
          assert.equal(m.systemProperties['iothub-connection-device-id'], 'myFirstDevice');
          assert.ok(!Number.isNaN(Date.parse(m.enqueuedTime)));
        }
      } finally {
        await monitor.stop();
      }
    });

    test('text output: each confirmation with the running total, then a summary', async () => {
      const r = await runCli(['send-telemetry', '--count', '2', '--interval', '0'], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Message 1 sent: \{"deviceId":"myFirstDevice","windSpeed":[\d.]+\} \(1 confirmed\)$/m);
      assert.match(r.stdout, /^Message 2 sent: .* \(2 confirmed\)$/m);
      assert.match(r.stdout, /^2 sent, 2 confirmed, 0 failed in [\d.]+ s/m);
    });

    test('send-telemetry --devices 3: simDevice-1..3 each on its own connection; the monitor filters by device (-d)', async () => {
      const monitor = new CliProcess(['monitor-events', '-d', 'simDevice-2', '--count', '2', '--json', '--timeout', '120'], env);
      try {
        await monitor.waitFor((l) => l.event === 'ready');
        const r = await runCli(['send-telemetry', '--devices', '3', '--count', '2', '--interval', '0', '--json'], env);
        assert.equal(r.code, 0, r.stderr);
        const confirmed = jsonLines(r.stdout).filter((l) => l.event === 'confirmed');
        assert.equal(confirmed.length, 6);
        assert.deepEqual([...new Set(confirmed.map((l) => l.deviceId))].sort(), ['simDevice-1', 'simDevice-2', 'simDevice-3']);
        assert.equal(await monitor.exit(60_000), 0, monitor.stderr);
        const messages = monitor.lines.filter((l: any) => l.event === 'message') as any[];
        assert.deepEqual(
          messages.map((m) => m.deviceId),
          ['simDevice-2', 'simDevice-2'],
        );
      } finally {
        await monitor.stop();
      }
    });

    test('monitor-events --from-start reads what was sent before it started', async () => {
      const r = await runCli(
        ['monitor-events', '--from-start', '--device-id', 'simDevice-3', '--count', '2', '--timeout', '60', '--json'],
        env,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(jsonLines(r.stdout).filter((l) => l.event === 'message').length, 2);
    });

    test("monitor-events --consumer-group: the group 'hub start --consumer-group' made reads the same messages as $Default", async () => {
      const read = (group: string[]) =>
        runCli(
          ['monitor-events', ...group, '--from-start', '--device-id', 'simDevice-1', '--count', '2', '--timeout', '60', '--json'],
          env,
        );
      // At once: each group reads the whole stream, whatever the other has read.
      const [analytics, builtIn] = await Promise.all([read(['--consumer-group', 'analytics']), read([])]);
      assert.equal(analytics.code, 0, analytics.stderr);
      assert.equal(builtIn.code, 0, builtIn.stderr);
      const messages = (r: { stdout: string }) => jsonLines(r.stdout).filter((l) => l.event === 'message');
      assert.equal(messages(analytics).length, 2);
      assert.deepEqual(messages(analytics), messages(builtIn));
      // hub start said which it has (and hub status says so).
      const started = terminal1.hub.lines.find((l: any) => l.event === 'started') as { consumerGroups?: string[] };
      assert.deepEqual(started.consumerGroups, ['analytics']);
    });
  });

  test('monitor-events --consumer-group naming a group the hub does not have: one line naming it, exit 3', async () => {
    const r = await runCli(['monitor-events', '--consumer-group', 'nope', '--timeout', '30'], env);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /^error: .*'iothub-tut\/ConsumerGroups\/nope' could not be found\. Check the consumer group/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  test('monitor-events --timeout without the count: one line, exit 5', async () => {
    const r = await runCli(['monitor-events', '--device-id', 'nobody-sends', '--count', '1', '--timeout', '2'], env);
    assert.equal(r.code, 5, r.stderr);
    assert.equal(r.stderr.trim(), 'error: timed out after 2 s: received 0 of 1 messages');
  });

  test('a message larger than IoT Hub accepts: one line, exit 9, nothing sent', async () => {
    const r = await runCli(['send-telemetry', '--count', '1', '--message-size', String(300 * 1024)], env);
    assert.equal(r.code, 9, r.stderr);
    assert.match(
      r.stderr,
      /^error: each message would be \d+ bytes: IoT Hub accepts device-to-cloud messages up to 262144 bytes \(256 KB\)/,
    );
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.doesNotMatch(r.stdout, /sent:/);
  });

  test('monitor-events with a wrong key: one line, exit 4', async () => {
    const started = terminal1.hub.lines.find((l: any) => l.event === 'started') as { eventHubConnectionString: string };
    const port = /sb:\/\/localhost:(\d+)\//.exec(started.eventHubConnectionString)?.[1];
    assert.ok(port, started.eventHubConnectionString);
    const wrong =
      `Endpoint=sb://localhost:${port}/;SharedAccessKeyName=service;SharedAccessKey=${Buffer.alloc(32, 7).toString('base64')};` +
      'EntityPath=iothub-tut;UseDevelopmentEmulator=true';
    const r = await runCli(['monitor-events', '-c', wrong, '--timeout', '30'], env);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /^error: .*not authorized/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});
