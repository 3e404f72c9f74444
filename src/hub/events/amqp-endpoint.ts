import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import rhea, { type Connection, type EventContext, type Receiver, type Sender, type Session } from 'rhea';
import { parsePartitionAddress, sameName } from './addresses.js';
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
}

export interface EventHubEndpoint {
  port: number;
  close(): Promise<void>;
}

const runtimeMetricCapability = 'com.microsoft:enable-receiver-runtime-metric';
const epochProperty = 'com.microsoft:epoch';
const closeGraceMs = 1000;

/** What one client connection holds: its claims and the partition links it reads. */
interface ConnectionState {
  claims: Claims;
  senders: Set<PartitionSender>;
}

export async function startEventHubEndpoint(options: EventHubEndpointOptions): Promise<EventHubEndpoint> {
  const { hubName, eventLog, verifyToken } = options;
  const consumerGroups = new Set((options.consumerGroups ?? ['$Default']).map((g) => g.toLowerCase()));
  const owners = new PartitionOwners();
  const states = new Map<Connection, ConnectionState>();
  const stateOf = (connection: Connection): ConnectionState => {
    let state = states.get(connection);
    if (!state) {
      state = { claims: new Claims(), senders: new Set() };
      states.set(connection, state);
    }
    return state;
  };
  const forget = (connection: Connection): void => {
    for (const sender of states.get(connection)?.senders ?? []) sender.close();
    states.delete(connection);
  };

  const container = rhea.create_container({ id: `iothub-tut-${hubName}` });
  container.sasl_server_mechanisms.enable_anonymous();
  container.sasl_server_mechanisms.enable_plain(() => true);

  container.on('connection_open', (context: EventContext) => stateOf(context.connection));

  // The client's sending links: requests to $cbs and $management.
  container.on('receiver_open', (context: EventContext) => {
    const link = context.receiver as Receiver;
    const address = link.target?.address ?? '';
    const state = stateOf(context.connection);
    if (address === '$cbs') {
      link.set_target({ address });
      link.on('message', (c: EventContext) =>
        sendReply(c.connection, c.message!, handleCbsRequest(c.message!, verifyToken, state.claims)));
    } else if (address === '$management') {
      if (!state.claims.covers(`${hubName}/$management`)) {
        return refuse(link, 'amqp:unauthorized-access', `Unauthorized: put a token for '${hubName}/$management' on $cbs first.`);
      }
      link.set_target({ address });
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
      return;
    }
    openPartitionReader(link, stateOf(context.connection));
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
      disconnect: (description) => {
        link.close({ condition: 'amqp:link:stolen', description });
        sender.close();
      },
    };
    const refusal = owners.admit(groupPartition, reader);
    if (refusal) return refuse(link, 'amqp:link:stolen', refusal);

    const runtimeMetric = capabilities(link.desired_capabilities).includes(runtimeMetricCapability);
    link.set_source({ address, filter: link.source.filter });
    const local = (link as unknown as { local: { attach: Record<string, unknown> } }).local.attach;
    local.snd_settle_mode = 1; // settled: an Event Hubs reader tracks its position, it does not settle events
    if (runtimeMetric) local.offered_capabilities = [runtimeMetricCapability];
    const sender: PartitionSender = new PartitionSender(link, eventLog, partition, start, runtimeMetric, () => {
      state.senders.delete(sender);
      owners.release(groupPartition, reader);
    });
    state.senders.add(sender);
  };

  container.on('session_close', (context: EventContext) => closeSessionSenders(states.get(context.connection), context.session!));
  container.on('session_error', () => {});
  container.on('connection_close', (context: EventContext) => forget(context.connection));
  container.on('disconnected', (context: EventContext) => forget(context.connection));
  // What a client gets wrong (a bad frame, no AMQP at all, a reset socket) ends its connection,
  // never the hub; rhea would print the protocol errors nobody listens to.
  container.on('protocol_error', () => {});
  container.on('error', () => {});

  const server = container.listen({ host: options.host ?? '127.0.0.1', port: options.port });
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([error]) => Promise.reject(error))]);

  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of states.keys()) {
        if (connection.is_open()) connection.close({ condition: 'amqp:connection:forced', description: 'The hub is shutting down.' });
        forget(connection);
      }
      // Give clients a moment to see the close, then drop whoever is still there.
      const grace = setTimeout(() => sockets.forEach((socket) => socket.destroy()), closeGraceMs);
      await closed;
      clearTimeout(grace);
    },
  };
}

/** Answers an attach with a detach carrying the error, the way Event Hubs refuses a link. */
function refuse(link: Sender | Receiver, condition: string, description: string): void {
  link.close({ condition, description });
}

function closeSessionSenders(state: ConnectionState | undefined, session: Session): void {
  for (const sender of state?.senders ?? []) if (sender.link.session === session) sender.close();
}

function ownerLevel(properties: Record<string, unknown> | undefined): number | undefined {
  const level = properties?.[epochProperty];
  return typeof level === 'number' ? level : undefined;
}

function capabilities(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
