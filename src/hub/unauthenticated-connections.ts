import type { Socket } from 'node:net';
import type { HubLog } from './log.js';

// Connections that have not yet shown a good credential (MQTT CONNECT accepted, an HTTPS request
// answered below 400, a token accepted on AMQP's $cbs) cost a descriptor each, and anyone can open
// them. Their number across the hub's listeners is bounded well below the descriptor limit: at the
// bound, the oldest of them is closed to make room. Clients that complete their handshake in time
// get in however many silent ones are there, and those that authenticated never count.

/** Without a descriptor limit to derive from (Windows), the bound is this. */
const DEFAULT_BOUND = 1024;
/** A quarter of the descriptor limit, at most this: each waiting connection may also hold some memory. */
const MAX_BOUND = 4096;
const MIN_BOUND = 16;

/** How many unauthenticated connections a hub with this descriptor limit keeps. */
export function unauthenticatedBound(descriptorLimit: number | undefined): number {
  if (descriptorLimit === undefined) return DEFAULT_BOUND;
  return Math.max(MIN_BOUND, Math.min(MAX_BOUND, Math.floor(descriptorLimit / 4)));
}

interface Waiting {
  socket: Socket;
  /** Which listener took it and from where, for the log. */
  what: string;
  close: () => void;
}

export class UnauthenticatedConnections {
  /** In the order they came: the first is the oldest. */
  private readonly waiting = new Map<string, Waiting>();

  constructor(
    readonly bound: number,
    private readonly log: HubLog,
  ) {}

  /**
   * Counts a new connection until it authenticates or closes. `close` ends it when it is the
   * oldest at the bound (by default the socket is destroyed).
   */
  admit(socket: Socket, listener: string, close: () => void = () => socket.destroy()): void {
    const key = peerKey(socket);
    if (key === undefined) return; // already gone
    if (this.waiting.size >= this.bound) {
      const [oldestKey, oldest] = this.waiting.entries().next().value!;
      this.waiting.delete(oldestKey);
      this.log.info(
        'hub',
        `closed ${oldest.what}: it had not authenticated, and ${this.bound} connections waiting to ` +
          'authenticate is the bound (the oldest makes room)',
      );
      oldest.close();
    }
    this.waiting.set(key, { socket, what: `the ${listener} connection from ${socket.remoteAddress}:${socket.remotePort}`, close });
    socket.once('close', () => {
      if (this.waiting.get(key)?.socket === socket) this.waiting.delete(key);
    });
  }

  /** The connection of `socket` (the raw socket or the TLS socket over it) authenticated. */
  authenticated(socket: Socket): void {
    const key = peerKey(socket);
    if (key !== undefined) this.waiting.delete(key);
  }
}

/**
 * A connection's peer and local port: the same for a TLS socket and the TCP socket beneath it, and
 * unique among open connections (the hub's listeners each have one local address).
 */
function peerKey(socket: Socket): string | undefined {
  const { remoteAddress, remotePort, localPort } = socket;
  return remoteAddress === undefined ? undefined : `${localPort} ${remoteAddress} ${remotePort}`;
}
