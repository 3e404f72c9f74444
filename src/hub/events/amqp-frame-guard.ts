// AMQP 1.0 frames start with their size (a 4-byte integer, header included), so a client can
// announce 4 GB in its first eight bytes and rhea would wait for all of it, buffering what comes.
// The guard follows the client's bytes (protocol headers, then frame headers and the bodies it
// skips) and refuses a frame at its header: one above MIN-MAX-FRAME-SIZE (512 bytes, what AMQP
// allows before the connection is open: SASL frames and the OPEN itself), then one above the
// max-frame-size the hub announced in its OPEN. Until a token is accepted on $cbs, a connection may
// only open its $cbs links and put a token, so what it may send in all is bounded too.

/** AMQP 1.0, 2.7.1: the largest frame either side may send before the other's OPEN. */
const MIN_MAX_FRAME_SIZE = 512;

const FRAME_HEADER_BYTES = 8;
const AMQP = Buffer.from('AMQP');
const PROTOCOL_AMQP = 0;
const PROTOCOL_SASL = 3;

export class AmqpFrameGuard {
  /** The first bytes of a protocol or frame header, until there are eight. */
  private header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerBytes = 0;
  private bodyLeft = 0;
  private layer: 'start' | 'sasl' | 'amqp' = 'start';
  /** The client's OPEN has been read: from here its frames may be as large as the hub announced. */
  private opened = false;
  private received = 0;
  private authenticated = false;

  constructor(
    /** The max-frame-size of the hub's OPEN. */
    private readonly maxFrameSize: number,
    /** What a connection may send in all before it authenticates. */
    private readonly unauthenticatedBytes: number,
  ) {}

  /** A token was accepted: the connection may send as much as it likes, frame by frame. */
  authenticate(): void {
    this.authenticated = true;
  }

  /** Undefined while the stream is acceptable; from the first chunk that is not, why. */
  feed(chunk: Buffer): string | undefined {
    this.received += chunk.length;
    if (!this.authenticated && this.received > this.unauthenticatedBytes) {
      return `it sent more than ${this.unauthenticatedBytes} bytes before putting a valid token on $cbs`;
    }
    for (let i = 0; i < chunk.length;) {
      if (this.bodyLeft === 0) {
        const take = Math.min(FRAME_HEADER_BYTES - this.headerBytes, chunk.length - i);
        chunk.copy(this.header, this.headerBytes, i, i + take);
        this.headerBytes += take;
        i += take;
        if (this.headerBytes < FRAME_HEADER_BYTES) break;
        this.headerBytes = 0;
        const refusal = this.header.subarray(0, 4).equals(AMQP) && this.layer !== 'amqp' ? this.protocolHeader() : this.frameHeader();
        if (refusal) return refusal;
      } else {
        // Inside a frame: only its end matters.
        const skipped = Math.min(this.bodyLeft, chunk.length - i);
        this.bodyLeft -= skipped;
        i += skipped;
      }
    }
    return undefined;
  }

  /** `AMQP` id 1 0 0: first, and again after SASL (a frame header never starts so: that size is above any bound). */
  private protocolHeader(): string | undefined {
    const id = this.header[4];
    if (id === PROTOCOL_SASL && this.layer === 'start') this.layer = 'sasl';
    else if (id === PROTOCOL_AMQP) this.layer = 'amqp';
    else return `it asked for AMQP protocol id ${id}; this port serves SASL (3), then AMQP (0)`;
    return undefined;
  }

  private frameHeader(): string | undefined {
    if (this.layer === 'start') return 'it did not start with an AMQP protocol header';
    const size = this.header.readUInt32BE(0);
    const dataOffset = this.header[4]!;
    if (size < FRAME_HEADER_BYTES || dataOffset < 2 || dataOffset * 4 > size)
      return `it sent a malformed frame header (size ${size}, data offset ${dataOffset})`;
    const limit = this.opened ? this.maxFrameSize : MIN_MAX_FRAME_SIZE;
    if (size > limit) {
      return (
        `it announced a frame of ${size} bytes; the limit is ${limit} ` +
        (this.opened ? "(the max-frame-size of the hub's OPEN)" : 'before the connection is open (MIN-MAX-FRAME-SIZE)')
      );
    }
    this.bodyLeft = size - FRAME_HEADER_BYTES;
    // The first frame of the AMQP layer that is not empty (a heartbeat) is the client's OPEN.
    if (this.layer === 'amqp' && this.bodyLeft > 0) this.opened = true;
    return undefined;
  }
}
