import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import rhea, { type Connection, type ConnectionOptions, type EventContext, type Receiver, type Sender, type Session } from 'rhea';
import { silentLog, type HubLog } from '../log.js';
import { UnauthenticatedConnections, unauthenticatedBound } from '../unauthenticated-connections.js';
import { parsePartitionAddress, sameName } from './addresses.js';
import { AmqpFrameGuard } from './amqp-frame-guard.js';
import { Claims, handleCbsRequest, type VerifyToken } from './cbs.js';
import type { EventLog } from './event-log.js';
import { positionFromFilter } from './event-position.js';
import { handleManagementRequest, partitionIndex } from './management.js';
import { PartitionOwners, type OwnedReader } from './partition-owners.js';
import { PartitionSender } from './partition-sender.js';
import { sendReply } from './request-response.js';

// IoT Hub's Event Hub-compatible endpoint, as Microsoft's Event Hubs emulator serves it: AMQP 1.0 on
// plain TCP, so @azure/event-hubs connects with `UseDevelopmentEmulator=true`. SASL ANONYMOUS or
// PLAIN only opens the connection; what a client may do is decided by the tokens it puts on $cbs.
//
// Bounded as Event Hubs bounds it: a connection must have a token accepted within 20 s of
// connecting; until then it counts among the hub's unauthenticated connections and may send little;
// every frame is checked at its header (amqp-frame-guard.ts); a connection silent for twice the
// idle-time-out of the hub's OPEN is closed (rhea's heartbeat check: the SDKs send empty frames);
// a link is detached when the token that authorised it expires and no put-token renewed it.

export interface EventHubEndpointOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 for an ephemeral port. */
  port: number;
  /** The Event Hub-compatible name, the EntityPath of the connection string. */
  hubName: string;
  eventLog: EventLog;
  /** Default ['$Default']. */
  consumerGroups?: string[];
  verifyToken: VerifyToken;
  /** Connections that have not authenticated yet, counted with the hub's other listeners. Default: a bound of its own. */
  unauthenticated?: UnauthenticatedConnections;
  /** The idle-time-out announced in the hub's OPEN; a connection silent for twice as long is closed. Default 30 s. */
  idleTimeOutMs?: number;
  /** Where refused and closed connections are told. Default: nowhere. */
  log?: HubLog;
}

export interface EventHubEndpoint {
  port: number;
  close(): Promise<void>;
}

const runtimeMetricCapability = 'com.microsoft:enable-receiver-runtime-metric';
const epochProperty = 'com.microsoft:epoch';
const receiverNameProperty = 'com.microsoft:receiver-name';
const closeGraceMs = 1000;
/** Service Bus and Event Hubs drop a connection that put no valid token on $cbs within 20 s. */
const authenticationTimeoutMs = 20_000;
const defaultIdleTimeOutMs = 30_000;
/** The largest frame the hub takes once open (its OPEN's max-frame-size): it receives only small requests. */
const maxFrameBytes = 64 * 1024;
/** What a connection may send before a token is accepted; the SDK sends under 2 KB. */
const unauthenticatedBytes = 64 * 1024;
/** How often authentication deadlines and token expiries are checked (tokens expire on whole seconds). */
const sweepIntervalMs = 1000;

/** What one client connection holds: its socket, its claims and the links they authorise. */
interface ConnectionState {
  socket: Socket;
  guard: AmqpFrameGuard;
  acceptedAtMs: number;
  authenticated: boolean;
  closing: boolean;
  claims: Claims;
  /** Links opened on the strength of a claim, with the entity path the claim must go on covering. */
  authorised: Map<Sender | Receiver, string>;
  senders: Set<PartitionSender>;
}

export async function startEventHubEndpoint(options: EventHubEndpointOptions): Promise<EventHubEndpoint> {
  const { hubName, eventLog, verifyToken } = options;
  const log = options.log ?? silentLog();
  const unauthenticated = options.unauthenticated ?? new UnauthenticatedConnections(unauthenticatedBound(undefined), log);
  const idleTimeOutMs = options.idleTimeOutMs ?? defaultIdleTimeOutMs;
  const consumerGroups = new Set((options.consumerGroups ?? ['$Default']).map((g) => g.toLowerCase()));
  const owners = new PartitionOwners();
  const states = new Map<Connection, ConnectionState>();
  const forget = (connection: Connection): void => {
    for (const sender of states.get(connection)?.senders ?? []) sender.close();
    states.delete(connection);
  };

  const container = rhea.create_container({ id: `iothub-tut-${hubName}` });
  container.sasl_server_mechanisms.enable_anonymous();
  container.sasl_server_mechanisms.enable_plain(() => true);
  const connectionOptions = { max_frame_size: maxFrameBytes, idle_time_out: idleTimeOutMs } as ConnectionOptions; // a server's: no host to dial

  /**
   * Ends a connection the hub will not keep: with a CLOSE carrying the error once it is open, and the
   * socket soon after. Says why in the log unless the caller did.
   */
  const closeConnection = (connection: Connection, state: ConnectionState, error: { condition: string; description: string }, logged = false): void => {
    if (state.closing) return;
    state.closing = true;
    if (!logged) log.info('amqp', `closed the connection from ${peer(state)}: ${error.description}`);
    // Nothing more is read from it (rhea would buffer what follows a frame the guard refused).
    state.socket.pause();
    // rhea learns of the end from the socket's error, and stops its timers.
    const end = (): void => void state.socket.destroy(new Error(error.description));
    if (!connection.is_open()) return end();
    connection.close(error);
    setTimeout(end, closeGraceMs).unref();
  };

  // The hub takes the sockets itself, so that its frame guard reads each chunk before rhea does.
  const accept = (socket: Socket): void => {
    sockets.add(socket);
    const connection = container.create_connection(connectionOptions);
    const state: ConnectionState = {
      socket,
      guard: new AmqpFrameGuard(maxFrameBytes, unauthenticatedBytes),
      acceptedAtMs: Date.now(),
      authenticated: false,
      closing: false,
      claims: new Claims(),
      authorised: new Map(),
      senders: new Set(),
    };
    states.set(connection, state);
    socket.once('close', () => {
      sockets.delete(socket);
      forget(connection);
    });
    socket.on('data', (chunk: Buffer) => {
      const refusal = state.guard.feed(chunk);
      if (refusal) closeConnection(connection, state, { condition: 'amqp:connection:framing-error', description: refusal });
    });
    unauthenticated.admit(socket, 'AMQP', () => closeConnection(connection, state,
      { condition: 'amqp:resource-limit-exceeded', description: 'Too many connections are waiting to authenticate.' }, true));
    (connection as unknown as { accept(socket: Socket): void }).accept(socket);
  };

  /** The first token accepted on $cbs: the connection no longer counts as unauthenticated. */
  const authenticated = (state: ConnectionState): void => {
    if (state.authenticated) return;
    state.authenticated = true;
    state.guard.authenticate();
    unauthenticated.authenticated(state.socket);
  };

  /** A link whose claim has expired is detached, as Event Hubs detaches it (the SDKs re-attach after a new put-token). */
  const expireClaims = (connection: Connection, state: ConnectionState, nowMs: number): void => {
    state.claims.prune(nowMs);
    for (const [link, path] of state.authorised) {
      if (state.claims.covers(path, nowMs)) continue;
      state.authorised.delete(link);
      link.close({
        condition: 'amqp:link:detach-forced',
        description: `The link '${link.name}' is force detached. Code: RenewToken. Details: Unauthorized access. ` +
          `'Listen' claim(s) are required to perform this operation. Resource: 'sb://${connection.hostname ?? 'localhost'}/${path.toLowerCase()}'.`,
      });
      for (const sender of state.senders) if (sender.link === link) sender.close();
    }
  };

  const sweep = setInterval(() => {
    const nowMs = Date.now();
    for (const [connection, state] of states) {
      if (state.closing) continue;
      if (!state.authenticated && nowMs - state.acceptedAtMs > authenticationTimeoutMs) {
        closeConnection(connection, state, {
          condition: 'amqp:unauthorized-access',
          description: `no valid token was put on $cbs within ${authenticationTimeoutMs / 1000} s of connecting`,
        });
      } else if (state.claims.nextExpiry() <= nowMs) {
        expireClaims(connection, state, nowMs);
      }
    }
  }, sweepIntervalMs).unref();

  /** Answers an attach with a detach carrying the error, the way Event Hubs refuses a link. */
  const refuse = (link: Sender | Receiver, condition: string, description: string): void => {
    log.info('amqp', `refused the link '${link.name}' to '${linkAddress(link)}': ${condition}, ${description}`);
    link.close({ condition, description });
  };
  const attached = (link: Sender | Receiver): void => {
    if (log.enabled('debug')) log.debug('amqp', `attached the link '${link.name}' to '${linkAddress(link)}'`);
  };

  // The client's sending links: requests to $cbs and $management.
  container.on('receiver_open', (context: EventContext) => {
    const link = context.receiver as Receiver;
    const address = link.target?.address ?? '';
    const state = states.get(context.connection)!;
    if (address === '$cbs') {
      link.set_target({ address });
      attached(link);
      link.on('message', (c: EventContext) => {
        const reply = handleCbsRequest(c.message!, verifyToken, state.claims);
        const audience = String(c.message!.application_properties?.name);
        if (reply.statusCode === 200) {
          authenticated(state);
          if (log.enabled('debug')) log.debug('amqp', `put-token on $cbs for '${audience}' from ${peer(state)}: accepted`);
        } else {
          log.info('amqp', `refused a put-token on $cbs for '${audience}' from ${peer(state)}: ${reply.statusCode} ${reply.statusDescription}`);
        }
        sendReply(c.connection, c.message!, reply);
      });
    } else if (address === '$management') {
      const path = `${hubName}/$management`;
      if (!state.claims.covers(path)) {
        return refuse(link, 'amqp:unauthorized-access', `Unauthorized: put a token for '${path}' on $cbs first.`);
      }
      link.set_target({ address });
      attached(link);
      state.authorised.set(link, path);
      link.on('receiver_close', () => state.authorised.delete(link));
      link.on('message', (c: EventContext) =>
        sendReply(c.connection, c.message!, handleManagementRequest(c.message!, { hubName, eventLog })));
    } else {
      refuse(link, 'amqp:not-allowed',
        `'${address}' does not accept messages: the built-in events endpoint is read-only; devices send through the device gateway.`);
    }
  });

  // The client's receiving links: replies from $cbs and $management, and partition readers.
  container.on('sender_open', (context: EventContext) => {
    const link = context.sender as Sender;
    const address = link.source?.address ?? '';
    if (address === '$cbs' || address === '$management') {
      link.set_source({ address });
      link.set_target({ address: link.target?.address ?? link.name });
      return attached(link);
    }
    openPartitionReader(link, states.get(context.connection)!);
  });

  const openPartitionReader = (link: Sender, state: ConnectionState): void => {
    const address = link.source?.address ?? '';
    const target = parsePartitionAddress(address);
    if (!state.claims.covers(address)) {
      return refuse(link, 'amqp:unauthorized-access', `Unauthorized: put a token for '${address}' on $cbs first.`);
    }
    if (!target || !sameName(target.hubName, hubName)) {
      return refuse(link, 'amqp:not-found', `The messaging entity '${address}' could not be found.`);
    }
    if (!consumerGroups.has(target.consumerGroup.toLowerCase())) {
      return refuse(link, 'amqp:not-found',
        `The messaging entity '${hubName}/ConsumerGroups/${target.consumerGroup}' could not be found.`);
    }
    const partition = partitionIndex(target.partitionId, eventLog.partitionCount);
    if (partition === undefined) {
      return refuse(link, 'com.microsoft:argument-out-of-range',
        `The partition '${target.partitionId}' does not exist; partition ids are 0 to ${eventLog.partitionCount - 1}.`);
    }
    let start: number;
    try {
      start = eventLog.startSequence(partition, positionFromFilter(link.source.filter));
    } catch (error) {
      return refuse(link, 'com.microsoft:argument-error', (error as Error).message);
    }
    const groupPartition = `${target.consumerGroup.toLowerCase()}/${partition}`;
    const reader: OwnedReader = {
      ownerLevel: ownerLevel(link.properties),
      name: receiverName(link.properties),
      disconnect: (description) => {
        link.close({ condition: 'amqp:link:stolen', description });
        sender.close();
      },
    };
    const refusal = owners.admit(groupPartition, reader);
    if (refusal) return refuse(link, refusal.condition, refusal.description);

    const runtimeMetric = capabilities(link.desired_capabilities).includes(runtimeMetricCapability);
    link.set_source({ address, filter: link.source.filter });
    const local = (link as unknown as { local: { attach: Record<string, unknown> } }).local.attach;
    local.snd_settle_mode = 1; // settled: an Event Hubs reader tracks its position, it does not settle events
    if (runtimeMetric) local.offered_capabilities = [runtimeMetricCapability];
    const sender: PartitionSender = new PartitionSender(link, eventLog, partition, start, runtimeMetric, () => {
      state.senders.delete(sender);
      state.authorised.delete(link);
      owners.release(groupPartition, reader);
    });
    state.senders.add(sender);
    state.authorised.set(link, address);
    attached(link);
  };

  container.on('session_close', (context: EventContext) => closeSessionSenders(states.get(context.connection), context.session!));
  container.on('session_error', () => {});
  container.on('connection_close', (context: EventContext) => forget(context.connection));
  container.on('disconnected', (context: EventContext) => forget(context.connection));
  // What a client gets wrong (a bad frame, no AMQP at all, a reset socket) ends its connection,
  // never the hub; rhea would print the protocol errors nobody listens to.
  container.on('protocol_error', () => {});
  container.on('error', () => {});

  const sockets = new Set<Socket>();
  const server = createServer(accept);
  server.listen(options.port, options.host ?? '127.0.0.1');
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([error]) => Promise.reject(error))]);
  // Past the start, a failed accept (the descriptor limit reached) leaves the listener serving.
  server.on('error', (error) => log.error('amqp', `could not accept a connection: ${error.message}`));

  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      clearInterval(sweep);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of states.keys()) {
        if (connection.is_open()) connection.close({ condition: 'amqp:connection:forced', description: 'The hub is shutting down.' });
        forget(connection);
      }
      // Give clients a moment to see the close, then drop whoever is still there (with an error, so that
      // rhea learns of it and stops its heartbeat timers).
      const grace = setTimeout(() => sockets.forEach((socket) => socket.destroy(new Error('The hub is shutting down.'))), closeGraceMs);
      await closed;
      clearTimeout(grace);
    },
  };
}

/** Where a connection comes from, for the log. */
function peer(state: ConnectionState): string {
  return `${state.socket.remoteAddress}:${state.socket.remotePort}`;
}

/** What a link attaches to: a receiving link's target, a sending link's source. */
function linkAddress(link: Sender | Receiver): string {
  return (link.is_sender() ? link.source?.address : link.target?.address) ?? '';
}

function closeSessionSenders(state: ConnectionState | undefined, session: Session): void {
  for (const sender of state?.senders ?? []) if (sender.link.session === session) sender.close();
}

function ownerLevel(properties: Record<string, unknown> | undefined): number | undefined {
  const level = properties?.[epochProperty];
  return typeof level === 'number' ? level : undefined;
}

function receiverName(properties: Record<string, unknown> | undefined): string | undefined {
  const name = properties?.[receiverNameProperty];
  return typeof name === 'string' ? name : undefined;
}

function capabilities(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
