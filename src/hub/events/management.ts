import type { Message } from 'rhea';
import { rhea } from '../amqp/rhea.js';
import { sameName } from './addresses.js';
import type { EventLog } from './event-log.js';
import { errorReply, type Reply } from './request-response.js';

// The $management node answers READ requests for the hub's and a partition's runtime information:
// what EventHubConsumerClient.getEventHubProperties / getPartitionProperties ask, and what the
// consumer asks before it subscribes, to learn the partition ids.

export interface ManagedHub {
  hubName: string;
  eventLog: EventLog;
}

export function handleManagementRequest(request: Message, hub: ManagedHub): Reply {
  const properties = request.application_properties ?? {};
  if (properties.operation !== 'READ') {
    return errorReply(400, 'amqp:not-implemented', `The $management operation '${String(properties.operation)}' is not supported.`);
  }
  if (typeof properties.name !== 'string' || !sameName(properties.name, hub.hubName)) {
    return errorReply(404, 'amqp:not-found', `The messaging entity '${String(properties.name)}' could not be found.`);
  }
  switch (properties.type) {
    case 'com.microsoft:eventhub':
      return ok({
        name: hub.hubName,
        type: properties.type,
        created_at: hub.eventLog.createdAt,
        partition_count: rhea().types.wrap_int(hub.eventLog.partitionCount),
        partition_ids: hub.eventLog.partitionIds(),
      });
    case 'com.microsoft:partition':
      return readPartition(hub, properties.partition);
    default:
      return errorReply(400, 'amqp:not-implemented', `The $management type '${String(properties.type)}' is not supported.`);
  }
}

function readPartition(hub: ManagedHub, partitionId: unknown): Reply {
  const partition = partitionIndex(partitionId, hub.eventLog.partitionCount);
  if (partition === undefined) {
    return errorReply(
      400,
      'com.microsoft:argument-out-of-range',
      `The partition '${String(partitionId)}' does not exist; partition ids are 0 to ${hub.eventLog.partitionCount - 1}.`,
    );
  }
  const info = hub.eventLog.partitionInfo(partition);
  return ok({
    name: hub.hubName,
    type: 'com.microsoft:partition',
    partition: String(partition),
    begin_sequence_number: rhea().types.wrap_long(info.beginSequenceNumber),
    last_enqueued_sequence_number: rhea().types.wrap_long(info.lastSequenceNumber),
    last_enqueued_offset: info.lastOffset,
    last_enqueued_time_utc: new Date(info.lastEnqueuedTimeMs),
    is_partition_empty: info.isEmpty,
  });
}

/** A partition id ('0', '1', ...) as an index, or undefined when there is no such partition. */
export function partitionIndex(partitionId: unknown, partitionCount: number): number | undefined {
  if (typeof partitionId !== 'string' || !/^\d+$/.test(partitionId)) return undefined;
  const index = Number(partitionId);
  return index < partitionCount ? index : undefined;
}

function ok(body: Record<string, unknown>): Reply {
  return { statusCode: 200, statusDescription: 'OK', body };
}
