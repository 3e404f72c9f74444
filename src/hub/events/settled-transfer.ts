import type { Writable } from 'node:stream';
import type { Sender } from 'rhea';

// rhea frames each transfer generically: a composite object per field, a zero-filled 1 KiB buffer
// and a heartbeat timer reset per frame, ~20 % of the hub's CPU per D2C message. The hub's transfers
// to Event Hubs readers all have one shape (pre-settled, one frame, message format 0), so it writes
// them itself whenever rhea has nothing queued ahead of them, and moves rhea's session and link
// counters on as rhea's own Outgoing.process would. Otherwise, or if rhea's state is not what this
// module expects (another rhea version), the delivery goes through Sender.send.

/** The rhea 3 state a transfer reads and moves on. */
interface RheaSender {
  credit: number;
  delivery_count: number;
  local: { handle: number; attach: { snd_settle_mode?: number } };
  next_tag(): Buffer;
  session: {
    local: { channel: number };
    outgoing: {
      deliveries: { size: number };
      next_delivery_id: number;
      next_pending_delivery: number;
      next_transfer_id: number;
      window: number;
      transfer_window(): number;
    };
  };
  connection: {
    socket?: Writable;
    socket_ready: boolean;
    amqp_transport?: { pending: unknown[] };
    /** rhea's own bound for a frame (it splits larger transfers); unset by default. */
    max_frame_size?: number;
  };
}

/** Frame header, the transfer performative's descriptor, list header and six fields, the tag at most 255 bytes. */
const MAX_HEAD = 8 + 3 + 9 + 5 + 5 + 2 + 255 + 3;

/** A uint in its shortest AMQP form (uint0, smalluint, uint). */
function writeUint(buf: Buffer, at: number, value: number): number {
  if (value === 0) {
    buf[at] = 0x43;
    return at + 1;
  }
  if (value < 256) {
    buf[at] = 0x52;
    buf[at + 1] = value;
    return at + 2;
  }
  buf[at] = 0x70;
  return buf.writeUInt32BE(value >>> 0, at + 1);
}

/**
 * The frame before the payload of a pre-settled, single-frame transfer: size, doff 2, AMQP frame type,
 * channel, then the transfer performative (handle, delivery-id, delivery-tag, message-format 0,
 * settled true, more false), as rhea writes it.
 */
export function transferFrameHead(channel: number, handle: number, deliveryId: number, tag: Buffer, payloadLength: number): Buffer {
  const head = Buffer.allocUnsafe(MAX_HEAD);
  head[4] = 2; // doff: the header is 2 × 4 bytes
  head[5] = 0; // AMQP frame
  head.writeUInt16BE(channel, 6);
  head[8] = 0x00; // described
  head[9] = 0x53; // smallulong descriptor
  head[10] = 0x14; // transfer
  head[11] = 0xd0; // list32: size and count follow
  let at = writeUint(head, 20, handle);
  at = writeUint(head, at, deliveryId);
  head[at++] = 0xa0; // vbin8
  head[at++] = tag.length;
  at += tag.copy(head, at);
  head[at++] = 0x43; // message-format 0
  head[at++] = 0x41; // settled: true
  head[at++] = 0x42; // more: false
  head.writeUInt32BE(at - 16, 12); // list size: the count and the fields
  head.writeUInt32BE(6, 16);
  head.writeUInt32BE(at + payloadLength, 0);
  return head.subarray(0, at);
}

function isReady(link: RheaSender, payload: Buffer): boolean {
  const { session, connection } = link;
  const outgoing = session?.outgoing;
  const pending = connection?.amqp_transport?.pending;
  return (
    link.local?.attach?.snd_settle_mode === 1 &&
    typeof link.credit === 'number' &&
    link.credit > 0 &&
    typeof link.delivery_count === 'number' &&
    typeof link.local.handle === 'number' &&
    typeof link.next_tag === 'function' &&
    typeof session.local?.channel === 'number' &&
    // Nothing of rhea's own ahead of this transfer: no delivery waiting, no frame unwritten.
    outgoing?.deliveries?.size === 0 &&
    typeof outgoing.next_delivery_id === 'number' &&
    outgoing.next_pending_delivery === outgoing.next_delivery_id &&
    typeof outgoing.next_transfer_id === 'number' &&
    typeof outgoing.window === 'number' &&
    typeof outgoing.transfer_window === 'function' &&
    outgoing.transfer_window() > 0 &&
    Array.isArray(pending) &&
    pending.length === 0 &&
    connection.socket_ready === true &&
    !!connection.socket &&
    !connection.socket.writableEnded &&
    !(connection.max_frame_size && payload.length + MAX_HEAD > connection.max_frame_size)
  );
}

/**
 * Sends `payload` (an encoded message) as one pre-settled transfer on `link`, written straight to the
 * socket. Returns false, having done nothing, when rhea has to send it (see above).
 */
export function sendSettled(sender: Sender, payload: Buffer): boolean {
  const link = sender as unknown as RheaSender;
  if (!isReady(link, payload)) return false;
  const tag = link.next_tag(); // a decimal counter: far under vbin8's 255 bytes
  const { outgoing } = link.session;
  const head = transferFrameHead(link.session.local.channel, link.local.handle, outgoing.next_delivery_id, tag, payload.length);
  // What Outgoing.process does for a settled delivery that leaves in one frame.
  outgoing.next_delivery_id++;
  outgoing.next_pending_delivery++;
  outgoing.next_transfer_id++;
  outgoing.window--;
  link.credit--;
  link.delivery_count++;
  const socket = link.connection.socket!;
  socket.write(head);
  socket.write(payload);
  return true;
}
