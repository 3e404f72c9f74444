import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CliProcess, createIdentity, jsonLines, runCli, runCliInProcess, startHubProcess, type HubProcess } from '../helpers/cli.js';

describe('cloud-to-device: send-c2d and receive-c2d as separate processes', { concurrency: true }, () => {
  let terminal1: HubProcess;
  let env: HubProcess['env'];
  before(async () => {
    terminal1 = await startHubProcess();
    env = terminal1.env;
    for (const deviceId of ['myFirstDevice', 'c2d-empty']) await createIdentity(terminal1.home, deviceId);
  });
  after(async () => assert.equal(await terminal1.stop(), 0, 'the hub stops cleanly on Ctrl-C'));

  // One at a time: a sender waiting for feedback reads the hub's one feedback queue, where another's could land.
  describe('with --wait-feedback', { concurrency: 1 }, () => {
    // Over HTTPS the device polls (once a second); azure-iot-device-http passes on application properties only,
    // and the AMQP SDK takes the ack out of the property bag as the message's own `ack`.
    for (const [transport, properties] of [
      ['mqtt', { colour: 'blue', 'iothub-ack': 'full' }],
      ['amqp', { colour: 'blue' }],
      ['http', { colour: 'blue' }],
    ] as const) {
      test(`terminal 2 receives over ${transport}, terminal 3 sends with --wait-feedback: the device prints the message and its properties, the sender its Success feedback`, async () => {
        const receiver = new CliProcess(['receive-c2d', '--transport', transport, '--count', '1', '--json', '--timeout', '120'], env);
        try {
          await receiver.waitFor((l) => l.event === 'ready');
          const sender = await runCli(['send-c2d', '--properties', 'colour=blue', '--wait-feedback', '60', '--json'], env);
          assert.equal(sender.code, 0, sender.stderr);
          const lines = jsonLines(sender.stdout);
          const sent = lines.find((l) => l.event === 'sent');
          assert.equal(sent.data, 'Cloud to device message.');
          const feedback = lines.find((l) => l.event === 'feedback');
          assert.equal(feedback.originalMessageId, sent.messageId);
          assert.equal(feedback.statusCode, 'Success');
          assert.equal(await receiver.exit(60_000), 0, receiver.stderr);
          const message = receiver.lines.find((l: any) => l.event === 'message') as any;
          assert.equal(message.data, 'Cloud to device message.');
          assert.equal(message.messageId, sent.messageId);
          assert.deepEqual(message.properties, properties);
          assert.deepEqual(receiver.lines.at(-1), { event: 'stopped', received: 1 });
        } finally {
          await receiver.stop();
        }
      });
    }

    test('without a receiver, --wait-feedback ends with exit 5 and says why; the message waits in the queue for the device', async () => {
      const r = await runCli(['send-c2d', '--wait-feedback', '1'], env);
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /feedback of 1 message\(s\) did not arrive within 1 s/);
      const received = await runCli(['receive-c2d', '--count', '1', '--timeout', '60'], env);
      assert.equal(received.code, 0, received.stderr);
      assert.match(received.stdout, /^Data: Cloud to device message\.$/m);
    });
  });

  test('receive-c2d --transport http with nothing queued ends at its --timeout: exit 5, one line', async () => {
    const r = await runCli(['receive-c2d', '-d', 'c2d-empty', '--transport', 'http', '--count', '1', '--timeout', '3'], env);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /no cloud-to-device message within 3 s \(received 0\)/);
  });

  test('a device that does not exist: one line, exit 3', async () => {
    const r = await runCli(['send-c2d', '-d', 'nobody-here'], env);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });

  test('a bad --ack is a usage error (exit 2)', async () => {
    const r = await runCliInProcess(['send-c2d', '--ack', 'sometimes'], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--ack must be one of none, positive, negative, full/);
  });
});
