import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Connection, ConnectionOptions, Container, EventContext, Receiver, Sender } from 'rhea';
import { rhea } from './rhea.js';
import { DEFAULT_CONNECTION_TIMEOUTS } from '../connection-timeouts.js';
import type { HubLog } from '../log.js';
import type { UnauthenticatedConnections } from '../unauthenticated-connections.js';
import { AmqpFrameGuard } from '../events/amqp-frame-guard.js';
import { Claims, handleCbsRequest, type VerifyToken } from '../events/cbs.js';
import { sendReply } from '../events/request-response.js';

// What every AMQP endpoint of the hub does the same way, whatever its links: SASL ANONYMOUS or PLAIN
// only opens a connection; what a client may do is decided by the tokens it puts on $cbs.
//
// Bounded as Event Hubs and IoT Hub bound it: a connection must have a token accepted within 20 s of
// connecting; until then it counts among the hub's unauthenticated connections and may send little;
// every frame is checked at its header (amqp-frame-guard.ts) before rhea reads it; a connection silent
// for twice the idle-time-out of the hub's OPEN is closed (rhea's heartbeat check: the SDKs send
// empty frames); a link is detached when the token that authorised it expires and no put-token renewed it.

const defaultIdleTimeOutMs = 30_000;
/** The largest frame the hub takes once open (its OPEN's max-frame-size). */
const defaultMaxFrameBytes = 64 * 1024;
/** What a connection may send before a token is accepted; the SDKs send under 2 KB. */
const unauthenticatedBytes = 64 * 1024;
/** How often authentication deadlines and token expiries are checked (tokens expire on whole seconds). */
const sweepIntervalMs = 1000;
const closeGraceMs = 1000;

export interface AmqpError {
  condition: string;
  description: string;
}

/** What one client connection holds: its stream, its claims and the links they authorise. */
export interface AmqpConnectionState {
  /** What rhea reads and writes: the TLS socket, or a WebSocket's stream. */
  stream: Duplex;
  /** The TCP or TLS socket beneath, for the peer's address and the unauthenticated bound. */
  peer: Socket;
  guard: AmqpFrameGuard;
  acceptedAtMs: number;
  authenticated: boolean;
  closing: boolean;
  claims: Claims;
  /** Links opened on the strength of a claim, with what the claim must go on covering. */
  authorised: Map<Sender | Receiver, ClaimNeed>;
}

/** What a link needs of the connection's claims: one on its entity path, granting `right` when given. */
export interface ClaimNeed {
  path: string;
  right?: string;
}

export interface AmqpConnectionsOptions {
  /** The container id the hub's OPEN carries. */
  containerId: string;
  /** The listener's name in log lines ('AMQP', 'AMQPS'). */
  listener: string;
  verifyToken: VerifyToken;
  unauthenticated: UnauthenticatedConnections;
  log: HubLog;
  /** The idle-time-out announced in the hub's OPEN; a connection silent for twice as long is closed. Default 30 s. */
  idleTimeOutMs?: number;
  /** How long a connection may go without a token accepted on $cbs. Default IoT Hub's 20 s. */
  authenticationTimeoutMs?: number;
  /** The max-frame-size of the hub's OPEN. Default 64 KB. */
  maxFrameBytes?: number;
  /** Options of the links the client attaches to send (rhea's receiver_options), e.g. autoaccept: false to settle each message itself. */
  receiverOptions?: Record<string, unknown>;
  /** Receiver addresses of the client's request-response pairs other than $cbs (e.g. '$management'). */
  replyAddresses?: string[];
  /** The detach error of a link whose claim expired. */
  expiredClaim(link: Sender | Receiver, path: string, connection: Connection): AmqpError;
  /** A link the client attached to send to the hub (other than $cbs). */
  receiverOpen(link: Receiver, state: AmqpConnectionState, context: EventContext): void;
  /** A link the client attached to receive from the hub (other than the reply links). */
  senderOpen(link: Sender, state: AmqpConnectionState, context: EventContext): void;
  /** A link that was authorised is gone (detached by the sweep, the client, or with its connection). */
  linkGone?(link: Sender | Receiver): void;
  /** A client's session has ended. */
  sessionClose?(context: EventContext): void;
}

/**
 * The connections of one AMQP endpoint: accepts streams, guards their frames, answers $cbs, bounds
 * how long they may stay unauthenticated, and detaches links whose token expired.
 */
export class AmqpConnections {
  private rheaContainer?: Container;
  private readonly states = new Map<Connection, AmqpConnectionState>();
  /** Every stream accepted and not closed yet (a closed connection's stream may linger a moment). */
  private readonly streams = new Set<Duplex>();
  private readonly connectionOptions: ConnectionOptions;
  private readonly maxFrameBytes: number;
  private readonly authenticationTimeoutMs: number;
  private readonly sweep: NodeJS.Timeout;

  constructor(private readonly options: AmqpConnectionsOptions) {
    this.maxFrameBytes = options.maxFrameBytes ?? defaultMaxFrameBytes;
    this.authenticationTimeoutMs = options.authenticationTimeoutMs ?? DEFAULT_CONNECTION_TIMEOUTS.amqpAuthenticationMs;
    this.connectionOptions = {
      // a server's: no host to dial
      max_frame_size: this.maxFrameBytes,
      idle_time_out: options.idleTimeOutMs ?? defaultIdleTimeOutMs,
      ...(options.receiverOptions ? { receiver_options: options.receiverOptions } : {}),
    } as ConnectionOptions;
    this.sweep = setInterval(() => this.sweepConnections(), sweepIntervalMs).unref();
  }

  /** The rhea container, made (and rhea loaded) with the first connection. */
  private get container(): Container {
    return (this.rheaContainer ??= this.createContainer());
  }

  private createContainer(): Container {
    const options = this.options;
    const container = rhea().create_container({ id: options.containerId });
    container.sasl_server_mechanisms.enable_anonymous();
    container.sasl_server_mechanisms.enable_plain(() => true);
    const replyAddresses = new Set(['$cbs', ...(options.replyAddresses ?? [])]);

    container.on('receiver_open', (context: EventContext) => {
      const link = context.receiver as Receiver;
      const state = this.states.get(context.connection)!;
      if (link.target?.address === '$cbs') {
        link.set_target({ address: '$cbs' });
        this.attached(link);
        link.on('message', (c: EventContext) => {
          if (options.receiverOptions?.autoaccept === false) c.delivery!.accept();
          const reply = handleCbsRequest(c.message!, options.verifyToken, state.claims);
          const putToken = `put-token on $cbs for '${String(c.message!.application_properties?.name)}' from ${state.peer.remoteAddress}:${state.peer.remotePort}`;
          if (reply.statusCode === 200) {
            this.authenticate(state);
            if (options.log.enabled('debug')) options.log.debug('amqp', `${putToken}: accepted`);
          } else {
            options.log.info('amqp', `refused a ${putToken}: ${reply.statusCode} ${reply.statusDescription}`);
          }
          sendReply(c.connection, c.message!, reply);
        });
        return;
      }
      options.receiverOpen(link, state, context);
    });
    container.on('sender_open', (context: EventContext) => {
      const link = context.sender as Sender;
      const address = link.source?.address ?? '';
      if (replyAddresses.has(address)) {
        link.set_source({ address });
        link.set_target({ address: link.target?.address ?? link.name });
        return this.attached(link);
      }
      options.senderOpen(link, this.states.get(context.connection)!, context);
    });
    const gone = (context: EventContext) => {
      const link = (context.sender ?? context.receiver) as Sender | Receiver | undefined;
      const state = this.states.get(context.connection);
      if (link && state?.authorised.delete(link)) options.linkGone?.(link);
    };
    container.on('sender_close', gone);
    container.on('receiver_close', gone);
    container.on('connection_close', (context: EventContext) => this.forget(context.connection));
    container.on('disconnected', (context: EventContext) => this.forget(context.connection));
    container.on('session_error', () => {});
    // What a client gets wrong (a bad frame, no AMQP at all, a reset socket) ends its connection,
    // never the hub; rhea would print the protocol errors nobody listens to.
    container.on('protocol_error', () => {});
    container.on('error', () => {});
    if (options.sessionClose) container.on('session_close', options.sessionClose);
    return container;
  }

  /** Takes a client's stream; the frame guard reads each chunk before rhea does. */
  accept(stream: Duplex, peer: Socket): void {
    const connection = this.container.create_connection(this.connectionOptions);
    const state: AmqpConnectionState = {
      stream,
      peer,
      guard: new AmqpFrameGuard(this.maxFrameBytes, unauthenticatedBytes),
      acceptedAtMs: Date.now(),
      authenticated: false,
      closing: false,
      claims: new Claims(),
      authorised: new Map(),
    };
    this.states.set(connection, state);
    this.streams.add(stream);
    stream.once('close', () => {
      this.streams.delete(stream);
      this.forget(connection);
    });
    stream.on('data', (chunk: Buffer) => {
      const refusal = state.guard.feed(chunk);
      if (refusal) this.closeConnection(connection, state, { condition: 'amqp:connection:framing-error', description: refusal });
    });
    this.options.unauthenticated.admit(peer, this.options.listener, () =>
      this.closeConnection(
        connection,
        state,
        { condition: 'amqp:resource-limit-exceeded', description: 'Too many connections are waiting to authenticate.' },
        true,
      ),
    );
    (connection as unknown as { accept(stream: Duplex): void }).accept(stream);
  }

  /** Records a link opened on the strength of a claim on `path` (with `right`): the sweep detaches it when the claim expires. */
  authorise(state: AmqpConnectionState, link: Sender | Receiver, path: string, right?: string): void {
    state.authorised.set(link, right === undefined ? { path } : { path, right });
    this.attached(link);
  }

  /** A link the hub accepted, for the debug log. */
  attached(link: Sender | Receiver): void {
    if (this.options.log.enabled('debug')) this.options.log.debug('amqp', `attached the link '${link.name}' to '${linkAddress(link)}'`);
  }

  /**
   * Ends a connection the hub will not keep: with a CLOSE carrying the error once it is open, and the
   * stream soon after. Says why in the log unless the caller did.
   */
  closeConnection(connection: Connection, state: AmqpConnectionState, error: AmqpError, logged = false): void {
    if (state.closing) return;
    state.closing = true;
    if (!logged)
      this.options.log.info(
        'amqp',
        `closed the ${this.options.listener} connection from ${state.peer.remoteAddress}:${state.peer.remotePort}: ${error.description}`,
      );
    // Nothing more is read from it (rhea would buffer what follows a frame the guard refused).
    state.stream.pause();
    // rhea learns of the end from the stream's error, and stops its timers.
    const end = (): void => void state.stream.destroy(new Error(error.description));
    if (!connection.is_open()) return end();
    connection.close(error);
    setTimeout(end, closeGraceMs).unref();
  }

  /** Closes every connection (the hub is stopping); resolves once their streams are gone. */
  async close(): Promise<void> {
    clearInterval(this.sweep);
    for (const [connection] of [...this.states]) {
      if (connection.is_open()) connection.close({ condition: 'amqp:connection:forced', description: 'The hub is shutting down.' });
      this.forget(connection);
    }
    // Give clients a moment to see the close, then drop whoever is still there (with an error, so that
    // rhea learns of it and stops its heartbeat timers).
    const closed = [...this.streams].map((stream) => new Promise((resolve) => stream.once('close', resolve)));
    const grace = setTimeout(() => this.streams.forEach((stream) => stream.destroy(new Error('The hub is shutting down.'))), closeGraceMs);
    await Promise.all(closed);
    clearTimeout(grace);
  }

  private forget(connection: Connection): void {
    const state = this.states.get(connection);
    if (!state) return;
    this.states.delete(connection);
    for (const link of state.authorised.keys()) this.options.linkGone?.(link);
    state.authorised.clear();
  }

  /** The first token accepted on $cbs (or a client certificate accepted for a link): the connection no longer counts as unauthenticated. */
  authenticate(state: AmqpConnectionState): void {
    if (state.authenticated) return;
    state.authenticated = true;
    state.guard.authenticate();
    this.options.unauthenticated.authenticated(state.peer);
  }

  private sweepConnections(): void {
    const nowMs = Date.now();
    for (const [connection, state] of this.states) {
      if (state.closing) continue;
      if (!state.authenticated && nowMs - state.acceptedAtMs > this.authenticationTimeoutMs) {
        this.closeConnection(connection, state, {
          condition: 'amqp:unauthorized-access',
          description: `no valid token was put on $cbs within ${this.authenticationTimeoutMs / 1000} s of connecting`,
        });
      } else if (state.claims.nextExpiry() <= nowMs) {
        this.expireClaims(connection, state, nowMs);
      }
    }
  }

  /** A link whose claim has expired is detached (the SDKs re-attach after a new put-token). */
  private expireClaims(connection: Connection, state: AmqpConnectionState, nowMs: number): void {
    state.claims.prune(nowMs);
    for (const [link, { path, right }] of state.authorised) {
      if (state.claims.covers(path, right, nowMs)) continue;
      state.authorised.delete(link);
      this.options.log.info('amqp', `detached the link '${link.name}' to '${linkAddress(link)}': the token for '${path}' expired`);
      link.close(this.options.expiredClaim(link, path, connection));
      this.options.linkGone?.(link);
    }
  }

  /**
   * Takes back what an identity was granted (its keys changed, it was disabled or deleted): the links
   * that need a claim on `path` (or below it, when `below`) are detached with `error`, the claims on
   * exactly `path` are forgotten, and a connection left with no link is closed. Returns how many
   * connections lost links.
   */
  revoke(path: string, below: boolean, error: AmqpError): number {
    const revoked = path.toLowerCase();
    let touched = 0;
    for (const [connection, state] of this.states) {
      state.claims.forget(revoked);
      let lost = false;
      for (const [link, need] of state.authorised) {
        const needed = need.path.toLowerCase();
        if (needed !== revoked && !(below && needed.startsWith(`${revoked}/`))) continue;
        state.authorised.delete(link);
        link.close(error);
        this.options.linkGone?.(link);
        lost = true;
      }
      if (!lost) continue;
      touched++;
      if (state.authorised.size === 0) this.closeConnection(connection, state, error, true);
    }
    return touched;
  }

  /** Answers an attach with a detach carrying the error, the way Event Hubs and IoT Hub refuse a link, and says so in the log. */
  refuse(link: Sender | Receiver, condition: string, description: string): void {
    this.options.log.info('amqp', `refused the link '${link.name}' to '${linkAddress(link)}': ${condition}, ${description}`);
    link.close({ condition, description });
  }
}

/** What a link attaches to: a receiving link's target, a sending link's source. */
export function linkAddress(link: Sender | Receiver): string {
  return (link.is_sender() ? link.source?.address : link.target?.address) ?? '';
}
