import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as tcpConnect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Connection } from 'rhea';
import { consumer, hubName, key, keyName, startTestHub, telemetry, within, type TestHub } from '../helpers/events.js';
import { audience, eventually, open, partitionAddress, putToken, reader, sasToken } from '../helpers/amqp.js';

// The endpoint at the AMQP level, with a bare rhea client: what the SDK never does on its own
// (withholding credit, skipping $cbs, sending, vanishing mid-stream) but a hub must handle.

describe('Event Hub-compatible endpoint at the AMQP level', () => {
  let hub: TestHub;
  let port: number;
  const connections: Connection[] = [];
  const connection = async (credentials?: { username?: string; password?: string }): Promise<Connection> => {
    const c = await open(port, credentials);
    connections.push(c);
    return c;
  };
  before(async () => {
    hub = await startTestHub();
    port = hub.endpoint.port;
  });
  after(async () => {
    for (const c of connections) if (c.is_open()) c.close();
    await hub.dispose();
  });

  test('sends no more events than the link credit allows', async () => {
    const stored = await hub.log.appendMany(Array.from({ length: 30 }, (_, i) => telemetry('credit-device', i)));
    const partition = stored[0]!.partition;
    const c = await connection();
    assert.equal(await putToken(c, audience(port, partitionAddress(partition))), 200);
    const { link, messages } = reader(c, partitionAddress(partition), "amqp.annotation.x-opt-offset > '-1'");
    await within(10_000, 'the reader link', once(link, 'receiver_open'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(messages.length, 0, 'nothing without credit');

    link.add_credit(5);
    await eventually(10_000, '5 events', () => messages.length >= 5);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(messages.length, 5);

    link.add_credit(10);
    await eventually(10_000, '15 events', () => messages.length >= 15);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(messages.length, 15);
    assert.deepEqual(
      messages.map((m) => m.message_annotations!['x-opt-sequence-number']),
      stored.slice(0, 15).map((event) => event.sequenceNumber),
    );

    // Credit left over is used for live events as they come.
    link.add_credit(100);
    await eventually(10_000, 'the other 15', () => messages.length >= 30);
    await hub.log.append(telemetry('credit-device', 30));
    await eventually(10_000, 'a live event', () => messages.length >= 31);
    assert.equal(messages[30]!.application_properties!.index, '30');
  });

  test('carries the runtime metric as delivery annotations when asked', async () => {
    const stored = await hub.log.appendMany(Array.from({ length: 3 }, (_, i) => telemetry('metric-device', i)));
    const partition = stored[0]!.partition;
    const c = await connection();
    assert.equal(await putToken(c, audience(port, partitionAddress(partition))), 200);
    const { link, messages } = reader(c, partitionAddress(partition), "amqp.annotation.x-opt-offset > '-1'", [
      'com.microsoft:enable-receiver-runtime-metric',
    ]);
    link.add_credit(1);
    await eventually(10_000, 'an event', () => messages.length >= 1);
    const info = hub.log.partitionInfo(partition);
    const annotations = messages[0]!.delivery_annotations!;
    assert.equal(annotations.last_enqueued_sequence_number, info.lastSequenceNumber);
    assert.equal(annotations.last_enqueued_offset, info.lastOffset);
    assert.equal((annotations.last_enqueued_time_utc as Date).getTime(), info.lastEnqueuedTimeMs);
  });

  test('two readers of a partition get the same messages (encoded once, shared)', async () => {
    const stored = await hub.log.appendMany(
      Array.from({ length: 4 }, (_, i) => telemetry('shared-device', i, i % 2 ? { userId: 'shared-user', messageId: undefined } : {})),
    );
    const partition = stored[0]!.partition;
    const c = await connection();
    assert.equal(await putToken(c, audience(port, partitionAddress(partition))), 200);
    const filter = `amqp.annotation.x-opt-sequence-number >= '${stored[0]!.sequenceNumber}'`;
    const readers = [reader(c, partitionAddress(partition), filter), reader(c, partitionAddress(partition), filter)];
    for (const { link } of readers) link.add_credit(100);
    await eventually(10_000, 'both readers', () => readers.every(({ messages }) => messages.length >= 4));
    await hub.log.append(telemetry('shared-device', 4));
    await eventually(10_000, 'a live event', () => readers.every(({ messages }) => messages.length >= 5));
    const [a, b] = readers.map(({ messages }) => messages.slice(0, 5).map((m) => ({ ...m })));
    assert.deepEqual(a, b);
    assert.deepEqual(
      a!.map((m) => m.message_annotations!['x-opt-sequence-number']),
      [0, 1, 2, 3, 4].map((i) => stored[0]!.sequenceNumber + i),
    );
    assert.equal(a![1]!.message_id, undefined);
    assert.equal(Buffer.from(a![1]!.user_id as unknown as Buffer).toString(), 'shared-user');
    assert.equal(a![2]!.message_id, 'msg-2');
  });

  test('refuses a reader without a token, and a token for another partition', async () => {
    const c = await connection();
    const unauthenticated = reader(c, partitionAddress(0));
    await within(10_000, 'the refusal', once(unauthenticated.link, 'receiver_close'));
    assert.equal(unauthenticated.link.error && (unauthenticated.link.error as { condition: string }).condition, 'amqp:unauthorized-access');

    assert.equal(await putToken(c, audience(port, partitionAddress(1))), 200);
    const elsewhere = reader(c, partitionAddress(0));
    await within(10_000, 'the refusal', once(elsewhere.link, 'receiver_close'));
    assert.equal((elsewhere.link.error as { condition: string }).condition, 'amqp:unauthorized-access');
  });

  test('answers a bad token with 401 and a good hub-wide token with 200', async () => {
    const c = await connection();
    assert.equal(await putToken(c, audience(port, hubName), sasToken(audience(port, 'another-hub'))), 401);
    assert.equal(await putToken(c, audience(port, hubName), 'SharedAccessSignature sr=x&sig=y&se=1&skn=service'), 401);
    assert.equal(await putToken(c, audience(port, hubName)), 200);
    const { link, messages } = reader(c, partitionAddress(2), "amqp.annotation.x-opt-offset > '@latest'");
    link.add_credit(10);
    await within(10_000, 'the reader link', once(link, 'receiver_open'));
    let deviceId = 'hub-wide-0';
    for (let i = 1; hub.log.partitionOf(deviceId) !== 2; i++) deviceId = `hub-wide-${i}`;
    await hub.log.append(telemetry(deviceId, 7));
    await eventually(10_000, 'the event', () => messages.length >= 1);
    assert.equal(messages[0]!.message_annotations!['iothub-connection-device-id'], deviceId);
  });

  test('refuses a filter it does not understand', async () => {
    const c = await connection();
    assert.equal(await putToken(c, audience(port, hubName)), 200);
    const { link } = reader(c, partitionAddress(0), "amqp.annotation.x-opt-offset > 'yesterday'");
    await within(10_000, 'the refusal', once(link, 'receiver_close'));
    assert.equal((link.error as { condition: string }).condition, 'com.microsoft:argument-error');
  });

  test('is read-only: a link that sends is refused', async () => {
    const c = await connection();
    assert.equal(await putToken(c, audience(port, hubName)), 200);
    const sender = c.open_sender({ target: { address: hubName } });
    sender.on('sender_error', () => {});
    await within(10_000, 'the refusal', once(sender, 'sender_close'));
    assert.equal((sender.error as { condition: string }).condition, 'amqp:not-allowed');
  });

  test('accepts SASL PLAIN as well as ANONYMOUS', async () => {
    const c = await connection({ username: keyName, password: key });
    assert.equal(await putToken(c, audience(port, hubName)), 200);
  });

  test('survives clients that vanish mid-stream or speak no AMQP', async () => {
    const baseline = hub.log.listenerCount('appended');
    const c = await open(port);
    assert.equal(await putToken(c, audience(port, hubName)), 200);
    const { link } = reader(c, partitionAddress(3), "amqp.annotation.x-opt-offset > '-1'");
    link.add_credit(1000);
    await within(10_000, 'the reader link', once(link, 'receiver_open'));
    await eventually(10_000, 'the reader registered', () => hub.log.listenerCount('appended') > baseline);
    // With an error, so that the client's rhea stops its heartbeats (the hub asks for them).
    (c as unknown as { socket: { destroy(error: Error): void } }).socket.destroy(new Error('vanished'));
    await eventually(10_000, 'the reader forgotten', () => hub.log.listenerCount('appended') === baseline);

    const junk = tcpConnect(port, '127.0.0.1');
    junk.on('error', () => {});
    await once(junk, 'connect');
    junk.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await within(10_000, 'the hub to drop the junk', once(junk, 'close'));

    await hub.log.appendMany(Array.from({ length: 100 }, (_, i) => telemetry(`after-${i}`, i)));
    const client = consumer(hub.connectionString());
    try {
      const properties = await within(20_000, 'hub properties', client.getEventHubProperties());
      assert.equal(properties.name, hubName);
    } finally {
      await client.close();
    }
  });
});
