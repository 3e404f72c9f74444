import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import rhea, { type Sender } from 'rhea';
import { sendSettled, transferFrameHead } from '../../src/hub/events/settled-transfer.js';

// The hub writes pre-settled transfers itself when rhea has nothing queued; rhea's own frame writer
// is the reference for the bytes, and a real rhea receiver must get every delivery, in order, with
// the ids and settlement rhea would have given them, also when rhea's path and the hub's alternate.

const frames = createRequire(import.meta.url)('rhea/lib/frames.js') as {
  transfer(fields: object): unknown;
  amqp_frame(channel: number, performative: unknown, payload: Buffer): unknown;
  write_frame(frame: unknown): Buffer;
};

test('a transfer frame is byte for byte what rhea writes', () => {
  const payload = Buffer.from('an encoded message');
  for (const channel of [0, 2, 300]) {
    for (const handle of [0, 3, 255, 256]) {
      for (const deliveryId of [0, 1, 255, 256, 70_000, 2 ** 32 - 1]) {
        for (const tag of ['0', '12345', '9007199254740991']) {
          const transfer = frames.transfer({
            handle,
            message_format: 0,
            delivery_id: deliveryId,
            delivery_tag: Buffer.from(tag),
            settled: true,
            more: false,
          });
          const expected = frames.write_frame(frames.amqp_frame(channel, transfer, payload));
          const head = transferFrameHead(channel, handle, deliveryId, Buffer.from(tag), payload.length);
          assert.deepEqual(Buffer.concat([head, payload]), expected, `channel ${channel}, handle ${handle}, id ${deliveryId}, tag ${tag}`);
        }
      }
    }
  }
});

test('direct and rhea-sent deliveries interleave: a rhea receiver gets them all, in order, settled', async () => {
  const server = rhea.create_container({ id: 'hub' });
  const listener = server.listen({ port: 0, host: '127.0.0.1' });
  await once(listener, 'listening');
  let sender: Sender | undefined;
  const opening = new Promise<void>((resolve) =>
    server.on('sender_open', (context) => {
      sender = context.sender!;
      // The hub answers an attach with snd-settle-mode settled, as its Event Hubs endpoint does.
      (sender as unknown as { local: { attach: Record<string, unknown> } }).local.attach.snd_settle_mode = 1;
      resolve();
    }),
  );

  const client = rhea.create_container({ id: 'reader' });
  const connection = client.connect({ port: (listener.address() as AddressInfo).port, host: '127.0.0.1', max_frame_size: 512 });
  const received: Array<{ body: string; id: number; settled: boolean }> = [];
  const receiver = connection.open_receiver({ source: 'events', credit_window: 0, autoaccept: false });
  receiver.on('message', (context) => {
    const delivery = context.delivery as unknown as { id: number; remote_settled: boolean };
    received.push({
      body: Buffer.from((context.message!.body as { content: Buffer }).content).toString(),
      id: delivery.id,
      settled: delivery.remote_settled,
    });
  });
  try {
    await opening;
    receiver.add_credit(10);
    await new Promise<void>((resolve) => sender!.once('sendable', () => resolve()));
    const message = (text: string) => rhea.message.encode({ body: rhea.message.data_section(Buffer.from(text)) });
    const paths: string[] = [];
    const send = (text: string) => {
      if (sendSettled(sender!, message(text))) return paths.push('direct');
      sender!.send(message(text), undefined, 0);
      paths.push('rhea');
    };
    send('one');
    send('two');
    // A payload over the reader's max frame size is split into several frames: only rhea sends that one,
    send('big '.repeat(400));
    // and what follows it in the same turn waits behind it.
    send('three');
    await new Promise((resolve) => setImmediate(resolve)); // rhea has written its deliveries
    send('four');
    send('five');
    assert.deepEqual(paths, ['direct', 'direct', 'rhea', 'rhea', 'direct', 'direct']);

    const deadline = Date.now() + 10_000;
    while (received.length < 6 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(
      received.map((r) => r.body),
      ['one', 'two', 'big '.repeat(400), 'three', 'four', 'five'],
    );
    assert.deepEqual(
      received.map((r) => r.id),
      [0, 1, 2, 3, 4, 5],
      'delivery ids as rhea numbers them',
    );
    assert.ok(
      received.every((r) => r.settled),
      'every delivery pre-settled',
    );
    const link = sender as unknown as { credit: number; delivery_count: number };
    assert.equal(link.delivery_count, 6);
    assert.equal(link.credit, 4, 'each delivery took one credit');
  } finally {
    connection.close();
    listener.close();
  }
});
