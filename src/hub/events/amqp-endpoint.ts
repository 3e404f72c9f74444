import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import type { EventContext, Receiver, Sender, Session } from 'rhea';
import { silentLog, type HubLog } from '../log.js';
import { UnauthenticatedConnections, unauthenticatedBound } from '../unauthenticated-connections.js';
import { AmqpConnections, type AmqpConnectionState } from '../amqp/amqp-connections.js';
import { parsePartitionAddress, sameName } from './addresses.js';
import type { VerifyToken } from './cbs.js';
import type { EventLog } from './event-log.js';
import { positionFromFilter } from './event-position.js';
import { handleManagementRequest, partitionIndex } from './management.js';
import { PartitionOwners, type OwnedReader } from './partition-owners.js';
import { PartitionSender } from './partition-sender.js';
import { sendReply } from './request-response.js';

// IoT Hub's Event Hub-compatible endpoint, as Microsoft's Event Hubs emulator serves it: AMQP 1.0 on
// plain TCP, so @azure/event-hubs connects with `UseDevelopmentEmulator=true`. Connections, $cbs and
// their bounds are the hub's AMQP rules (amqp/amqp-connections.ts); the links are Event Hubs'.

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
  /** How long a connection may go without a token accepted on $cbs. Default IoT Hub's 20 s. */
  authenticationTimeoutMs?: number;
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

export async function startEventHubEndpoint(options: EventHubEndpointOptions): Promise<EventHubEndpoint> {
  const { hubName, eventLog, verifyToken } = options;
  const log = options.log ?? silentLog();
  const unauthenticated = options.unauthenticated ?? new UnauthenticatedConnections(unauthenticatedBound(undefined), log);
  const consumerGroups = new Set((options.consumerGroups ?? ['$Default']).map((g) => g.toLowerCase()));
  const owners = new PartitionOwners();
  /** Each partition reader's link and the sender that feeds it. */
  const senders = new Map<Sender | Receiver, PartitionSender>();

  const connections: AmqpConnections = new AmqpConnections({
    containerId: `iothub-tut-${hubName}`,
    listener: 'AMQP',
    verifyToken,
    unauthenticated,
    log,
    idleTimeOutMs: options.idleTimeOutMs,
    authenticationTimeoutMs: options.authenticationTimeoutMs,
    replyAddresses: ['$management'],
    sessionClose: (context) => closeSessionSenders(senders, context.session!),
    expiredClaim: (link, path, connection) => ({
      condition: 'amqp:link:detach-forced',
      description:
        `The link '${link.name}' is force detached. Code: RenewToken. Details: Unauthorized access. ` +
        `'Listen' claim(s) are required to perform this operation. Resource: 'sb://${connection.hostname ?? 'localhost'}/${path.toLowerCase()}'.`,
    }),
    linkGone: (link) => senders.get(link)?.close(),
    // The client's sending links: requests to $management.
    receiverOpen: (link, state) => {
      const address = link.target?.address ?? '';
      if (address !== '$management') {
        return connections.refuse(
          link,
          'amqp:not-allowed',
          `'${address}' does not accept messages: the built-in events endpoint is read-only; devices send through the device gateway.`,
        );
      }
      const path = `${hubName}/$management`;
      if (!state.claims.covers(path)) {
        return connections.refuse(link, 'amqp:unauthorized-access', `Unauthorized: put a token for '${path}' on $cbs first.`);
      }
      link.set_target({ address });
      connections.authorise(state, link, path);
      link.on('message', (c: EventContext) =>
        sendReply(c.connection, c.message!, handleManagementRequest(c.message!, { hubName, eventLog })),
      );
    },
    // The client's receiving links: partition readers.
    senderOpen: (link, state) => openPartitionReader(link, state),
  });

  const openPartitionReader = (link: Sender, state: AmqpConnectionState): void => {
    const address = link.source?.address ?? '';
    const target = parsePartitionAddress(address);
    if (!state.claims.covers(address)) {
      return connections.refuse(link, 'amqp:unauthorized-access', `Unauthorized: put a token for '${address}' on $cbs first.`);
    }
    if (!target || !sameName(target.hubName, hubName)) {
      return connections.refuse(link, 'amqp:not-found', `The messaging entity '${address}' could not be found.`);
    }
    if (!consumerGroups.has(target.consumerGroup.toLowerCase())) {
      return connections.refuse(
        link,
        'amqp:not-found',
        `The messaging entity '${hubName}/ConsumerGroups/${target.consumerGroup}' could not be found.`,
      );
    }
    const partition = partitionIndex(target.partitionId, eventLog.partitionCount);
    if (partition === undefined) {
      return connections.refuse(
        link,
        'com.microsoft:argument-out-of-range',
        `The partition '${target.partitionId}' does not exist; partition ids are 0 to ${eventLog.partitionCount - 1}.`,
      );
    }
    let start: number;
    try {
      start = eventLog.startSequence(partition, positionFromFilter(link.source.filter));
    } catch (error) {
      return connections.refuse(link, 'com.microsoft:argument-error', (error as Error).message);
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
    if (refusal) return connections.refuse(link, refusal.condition, refusal.description);

    const runtimeMetric = capabilities(link.desired_capabilities).includes(runtimeMetricCapability);
    link.set_source({ address, filter: link.source.filter });
    const local = (link as unknown as { local: { attach: Record<string, unknown> } }).local.attach;
    local.snd_settle_mode = 1; // settled: an Event Hubs reader tracks its position, it does not settle events
    if (runtimeMetric) local.offered_capabilities = [runtimeMetricCapability];
    const sender: PartitionSender = new PartitionSender(link, eventLog, partition, start, runtimeMetric, () => {
      senders.delete(link);
      state.authorised.delete(link);
      owners.release(groupPartition, reader);
    });
    senders.set(link, sender);
    connections.authorise(state, link, address);
  };

  const server = createServer((socket: Socket) => connections.accept(socket, socket));
  server.listen(options.port, options.host ?? '127.0.0.1');
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([error]) => Promise.reject(error))]);
  // Past the start, a failed accept (the descriptor limit reached) leaves the listener serving.
  server.on('error', (error) => log.error('amqp', `could not accept a connection: ${error.message}`));

  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await connections.close();
      await closed;
    },
  };
}

function closeSessionSenders(senders: Map<Sender | Receiver, PartitionSender>, session: Session): void {
  for (const sender of senders.values()) if (sender.link.session === session) sender.close();
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
