import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as tcpConnect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { latestEventPosition } from '@azure/event-hubs';
import type { TokenCredential } from '@azure/core-auth';
import type { Connection, EventContext, Receiver, Sender } from 'rhea';
import { AmqpFrameGuard } from '../src/hub/events/amqp-frame-guard.js';
import { audience, eventually, open, partitionAddress, putToken, reader, sasToken } from './helpers/amqp.js';
import { collect, consumer, errorCodes, hubName, startTestHub, telemetry, within, type TestHub } from './helpers/events.js';

// The bounds of the Event Hub-compatible endpoint: frame sizes checked at the header, silent
// connections closed, tokens that expire, and Event Hubs' five readers per partition and consumer group.

const SASL_HEADER = Buffer.from('AMQP\x03\x01\x00\x00', 'latin1');
const AMQP_HEADER = Buffer.from('AMQP\x00\x01\x00\x00', 'latin1');
const MB = 1024 * 1024;

/** An AMQP frame of `size` bytes (header included) with an empty body, or its header alone. */
function frame(size: number, headerOnly = false): Buffer {
  const bytes = Buffer.alloc(headerOnly ? 8 : size);
  bytes.writeUInt32BE(size, 0);
  bytes[4] = 2; // data offset, in 4-byte words
  return bytes;
}

function condition(endpoint: Connection | Sender | Receiver): string | undefined {
  return (endpoint.error as { condition?: string } | undefined)?.condition;
}

function description(endpoint: Connection | Sender | Receiver): string | undefined {
  return (endpoint.error as { description?: string } | undefined)?.description;
}

describe('AMQP frame guard', () => {
  test("takes the SDK's handshake and checks every frame at its header: 512 bytes before OPEN, the max-frame-size after", () => {
    const handshake = [SASL_HEADER, frame(52), AMQP_HEADER, frame(8), frame(283), frame(60_000)];
    assert.equal(new AmqpFrameGuard(65_536, MB).feed(Buffer.concat(handshake)), undefined);
    const byteByByte = new AmqpFrameGuard(65_536, MB);
    for (const byte of Buffer.concat([...handshake, frame(70_000, true)]).subarray(0, -1))
      assert.equal(byteByByte.feed(Buffer.from([byte])), undefined);
    assert.match(byteByByte.feed(Buffer.from([0]))!, /70000 bytes.*max-frame-size/);

    assert.match(
      new AmqpFrameGuard(65_536, MB).feed(Buffer.concat([SASL_HEADER, Buffer.from([0xff, 0xff, 0xff, 0xff, 2, 1, 0, 0])]))!,
      /4294967295 bytes; the limit is 512 before the connection is open/,
    );
    assert.match(new AmqpFrameGuard(65_536, MB).feed(Buffer.concat([SASL_HEADER, frame(513, true)]))!, /limit is 512/);
    assert.match(
      new AmqpFrameGuard(65_536, MB).feed(Buffer.concat([AMQP_HEADER, frame(513, true)]))!,
      /limit is 512/,
      'an OPEN above 512 bytes',
    );
    assert.match(new AmqpFrameGuard(65_536, MB).feed(Buffer.concat([AMQP_HEADER, frame(4, true)]))!, /malformed/);
    assert.match(new AmqpFrameGuard(65_536, MB).feed(Buffer.from('GET / HTTP/1.1\r\n'))!, /AMQP protocol header/);
    assert.match(new AmqpFrameGuard(65_536, MB).feed(Buffer.from('AMQP\x02\x01\x00\x00', 'latin1'))!, /protocol id 2/);
  });

  test('bounds what a connection sends before it authenticates, and nothing after', () => {
    const before = new AmqpFrameGuard(65_536, 1000);
    assert.equal(before.feed(Buffer.concat([AMQP_HEADER, frame(283)])), undefined);
    assert.match(before.feed(frame(800))!, /more than 1000 bytes before putting a valid token/);
    const authenticated = new AmqpFrameGuard(65_536, 1000);
    assert.equal(authenticated.feed(Buffer.concat([AMQP_HEADER, frame(283)])), undefined);
    authenticated.authenticate();
    for (let i = 0; i < 10; i++) assert.equal(authenticated.feed(frame(60_000)), undefined);
  });
});

describe('Event Hub-compatible endpoint bounds', () => {
  let hub: TestHub;
  let port: number;
  const connections: Connection[] = [];
  const connection = async (): Promise<Connection> => {
    const c = await open(port);
    connections.push(c);
    return c;
  };
  /** A device id whose events land in `partition`. */
  const deviceOn = (partition: number): string => {
    let deviceId = 'bounds-0';
    for (let i = 1; hub.log.partitionOf(deviceId) !== partition; i++) deviceId = `bounds-${i}`;
    return deviceId;
  };
  /** Grants the reader credit and checks that, once attached, it gets an event appended to `partition`. */
  const readsAnEvent = async (r: ReturnType<typeof reader>, partition: number, index: number): Promise<void> => {
    r.link.add_credit(10);
    await within(10_000, 'the reader to attach', once(r.link, 'receiver_open'));
    await hub.log.append(telemetry(deviceOn(partition), index));
    await eventually(10_000, 'the event', () => r.messages.length >= 1);
  };
  before(async () => {
    hub = await startTestHub({ idleTimeOutMs: 1000, consumerGroups: ['$Default', 'quota'] });
    port = hub.endpoint.port;
  });
  after(async () => {
    for (const c of connections) if (c.is_open()) c.close();
    await hub.dispose();
  });

  /**
   * Writes `header`, then as much as the hub takes, up to 256 MB (a hub that waits for the frame it
   * announced piles it all up), until the hub closes the socket. Says how much the hub took and how
   * much this process's buffers (the hub's among them) grew.
   */
  async function flood(socket: Socket, header: Buffer): Promise<{ sent: number; grown: number }> {
    socket.on('error', () => {});
    const closed = new Promise((resolve) => socket.once('close', resolve));
    const memoryBefore = process.memoryUsage().arrayBuffers;
    socket.write(header);
    const chunk = Buffer.alloc(MB);
    let sent = 0;
    while (!socket.destroyed && sent < 256 * MB) {
      sent += chunk.length;
      if (!socket.write(chunk)) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closed]);
    }
    await within(10_000, 'the hub to close the connection', closed);
    return { sent, grown: process.memoryUsage().arrayBuffers - memoryBefore };
  }

  test('a frame header announcing 4 GB before SASL closes the connection at once; what follows is not buffered', async () => {
    const socket = tcpConnect(port, '127.0.0.1');
    await once(socket, 'connect');
    const { sent, grown } = await flood(socket, Buffer.concat([SASL_HEADER, Buffer.from([0xff, 0xff, 0xff, 0xf0, 2, 1, 0, 0])]));
    assert.ok(sent < 64 * MB, `the hub took ${sent / MB} MB before closing`);
    assert.ok(grown < 32 * MB, `buffers grew by ${Math.round(grown / MB)} MB`);
  });

  test("a frame above the max-frame-size of the hub's OPEN closes the connection; what follows is not buffered", async () => {
    const c = await connection();
    assert.equal(c.max_frame_size, 65_536);
    const closed = new Promise((resolve) => c.once('connection_close', resolve));
    (c as unknown as { socket: Socket }).socket.write(frame(MB, true));
    await within(10_000, 'the CLOSE', closed);
    assert.equal(condition(c), 'amqp:connection:framing-error');

    // A client that ignores the CLOSE and goes on sending.
    const hostile = await connection();
    const socket = (hostile as unknown as { socket: Socket }).socket;
    socket.removeAllListeners('data');
    const { sent, grown } = await flood(socket, frame(1024 * MB, true));
    assert.ok(sent < 64 * MB, `the hub took ${sent / MB} MB before closing`);
    assert.ok(grown < 32 * MB, `buffers grew by ${Math.round(grown / MB)} MB`);
  });

  test("a connection that stops sending is closed after twice the idle-time-out of the hub's OPEN; one that sends heartbeats stays", async () => {
    const quiet = await connection();
    const chatty = await connection();
    assert.equal(quiet.idle_time_out, 1000);
    for (const c of [quiet, chatty]) assert.equal(await putToken(c, audience(port, hubName)), 200);
    // rhea sends an empty frame every half idle-time-out of its peer; this client stops doing so.
    const internals = quiet as unknown as { remote: { open: { idle_time_out: number } }; heartbeat_out?: NodeJS.Timeout };
    internals.remote.open.idle_time_out = 0;
    clearTimeout(internals.heartbeat_out);
    const [closed] = (await within(10_000, 'the hub to close the quiet connection', once(quiet, 'connection_close'))) as [EventContext];
    assert.equal(condition(closed.connection), 'amqp:resource-limit-exceeded');
    assert.equal(chatty.is_open(), true, 'the connection that sends heartbeats is open');
  });

  // Each on its own connections and partition: their waits for token expiries overlap.
  describe('token expiry and renewal', { concurrency: true }, () => {
    test('a link is detached when the token that authorised it expires; a renewed token keeps its links', async () => {
      const partition = 1;
      const address = partitionAddress(partition);
      const filter = "amqp.annotation.x-opt-offset > '@latest'";
      const hubWide = audience(port, hubName);
      const expiring = await connection();
      const renewing = await connection();
      // 8 s: time for both connections' links and the renewal on a busy machine, before the first tokens expire.
      for (const c of [expiring, renewing]) assert.equal(await putToken(c, hubWide, sasToken(hubWide, 8)), 200);
      const expiringReader = reader(expiring, address, filter);
      const management = expiring.open_sender({ target: { address: '$management' } });
      management.on('sender_error', () => {});
      const renewingReader = reader(renewing, address, filter);
      for (const { link } of [expiringReader, renewingReader]) link.add_credit(10);
      await within(
        10_000,
        'the links',
        Promise.all([once(expiringReader.link, 'receiver_open'), once(management, 'sendable'), once(renewingReader.link, 'receiver_open')]),
      );
      assert.equal(await putToken(renewing, hubWide, sasToken(hubWide, 600)), 200);

      await within(
        15_000,
        'the expired links to be detached',
        Promise.all([once(expiringReader.link, 'receiver_close'), once(management, 'sender_close')]),
      );
      for (const link of [expiringReader.link, management]) {
        assert.equal(condition(link), 'amqp:link:detach-forced');
        assert.match(description(link)!, /is force detached\. Code: RenewToken\. Details: Unauthorized access\./);
      }
      assert.equal(expiring.is_open(), true, 'the connection stays: only the links go');

      await hub.log.append(telemetry(deviceOn(partition), 1));
      await eventually(10_000, 'the event on the renewed link', () => renewingReader.messages.length >= 1);
      assert.equal(renewingReader.link.is_open(), true);

      // As the SDKs do after such a detach: a new token, and the link again.
      assert.equal(await putToken(expiring, hubWide, sasToken(hubWide, 600)), 200);
      await readsAnEvent(reader(expiring, address, filter), partition, 2);
    });

    test('the SDK renews a short-lived token in time and reads on past the expiry of the first', async () => {
      const partition = 2;
      const hubWide = audience(port, hubName);
      let tokens = 0;
      let closing = false;
      const client = consumer(hub.connectionString());
      // A connection-string client signs hour-long tokens and renews them every 45 minutes; a TokenCredential
      // is renewed two minutes before the expiry it reports (and a credential-built client cannot reach a
      // plain-AMQP endpoint). So this one reports 2 min 3 s: the SDK puts a token every 3 s, each valid 8 s (5 s to
      // spare on a busy machine).
      const credential: TokenCredential = {
        getToken: async () => {
          // @azure/event-hubs restarts its renewal loop when close() lands during a renewal (util/timerLoop.js:
          // `.finally(loop.start)`), which kept this process alive for good. A renewal asked after the test never ends.
          if (closing) return new Promise<never>(() => {});
          tokens++;
          return { token: sasToken(hubWide, 8), expiresOnTimestamp: Date.now() + 123_000 };
        },
      };
      (client as unknown as { _context: { tokenCredential: TokenCredential } })._context.tokenCredential = credential;
      const received = collect(client, latestEventPosition, String(partition));
      try {
        await received.until(30_000, 'the reader', () => received.readyPartitions.has(String(partition)));
        const firstExpiry = Date.now() + 9_000;
        await eventually(20_000, 'the first token to expire', () => Date.now() > firstExpiry);
        await hub.log.append(telemetry(deviceOn(partition), 3));
        await received.until(30_000, 'the event', () => received.events.length >= 1);
        assert.deepEqual(received.errors, []);
        assert.ok(tokens >= 3, `${tokens} tokens put`);
      } finally {
        closing = true;
        await received.close();
        await client.close();
      }
    });
  });

  test('five readers may read a partition in a consumer group; the sixth gets the Event Hubs quota error', async () => {
    const partition = 3;
    const address = partitionAddress(partition);
    const filter = "amqp.annotation.x-opt-offset > '@latest'";
    const c = await connection();
    assert.equal(await putToken(c, audience(port, hubName)), 200);
    const named = (name: string) => reader(c, address, filter, undefined, { 'com.microsoft:receiver-name': name });
    const five = ['r0', 'r1', 'r2', 'r3', 'r4'].map(named);
    for (const { link } of five) link.add_credit(10);
    await within(10_000, 'five readers', Promise.all(five.map(({ link }) => once(link, 'receiver_open'))));
    const sixth = named('r5');
    await within(10_000, 'the refusal', once(sixth.link, 'receiver_close'));
    assert.equal(condition(sixth.link), 'amqp:resource-limit-exceeded');
    assert.equal(
      description(sixth.link),
      'Exceeded the maximum number of allowed receivers per partition in a consumer group which is 5. List of connected receivers - r0, r1, r2, r3, r4.',
    );

    // Another consumer group, or another partition, is another count.
    const otherGroup = reader(c, partitionAddress(partition, 'quota'), filter);
    const otherPartition = reader(c, partitionAddress(partition - 1), filter);
    await within(
      10_000,
      'readers elsewhere',
      Promise.all([once(otherGroup.link, 'receiver_open'), once(otherPartition.link, 'receiver_open')]),
    );
    await hub.log.append(telemetry(deviceOn(partition), 4));
    await eventually(10_000, 'the event for all five', () => five.every(({ messages }) => messages.length >= 1));
    assert.ok(five.every(({ link }) => link.is_open()));

    // When one leaves, another may come.
    five[0]!.link.close();
    await within(10_000, 'the detach', once(five[0]!.link, 'receiver_close'));
    await readsAnEvent(named('r6'), partition, 5);
  });

  test('with the SDK, the sixth subscription to a partition gets QuotaExceededError while five read', async () => {
    const partition = 0;
    const clients = Array.from({ length: 6 }, () => consumer(hub.connectionString(), 'quota'));
    const subscriptions = clients.slice(0, 5).map((client) => collect(client, latestEventPosition, String(partition)));
    let sixth: ReturnType<typeof collect> | undefined;
    try {
      for (const s of subscriptions) await s.until(30_000, 'a reader', () => s.readyPartitions.has(String(partition)));
      sixth = collect(clients[5]!, latestEventPosition, String(partition));
      await sixth.until(30_000, 'the refusal', () => sixth!.errors.length > 0);
      assert.deepEqual(errorCodes(sixth.errors[0]!), ['QuotaExceededError'], String(sixth.errors[0]));
      assert.match(sixth.errors[0]!.message, /maximum number of allowed receivers per partition in a consumer group which is 5/);
      await hub.log.append(telemetry(deviceOn(partition), 6));
      for (const s of subscriptions) await s.until(30_000, 'the event', () => s.events.length >= 1);
      assert.ok(subscriptions.every((s) => s.errors.length === 0));
    } finally {
      for (const s of [...subscriptions, ...(sixth ? [sixth] : [])]) await s.close();
      for (const client of clients) await client.close();
    }
  });
});
