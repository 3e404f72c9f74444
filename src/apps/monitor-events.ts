import { EventHubConsumerClient, earliestEventPosition, type EventPosition, type ReceivedEventData } from '@azure/event-hubs';
import type { EventHubConnection } from '../clients/connection-string.js';
import { explain } from '../clients/sdk-errors.js';

/** A device-to-cloud message as the monitor shows it. */
export interface MonitoredEvent {
  deviceId?: string;
  moduleId?: string;
  enqueuedTime: string;
  /** `iothub-message-source`: Telemetry for what devices send; twinChangeEvents, deviceLifecycleEvents... for what routes send of IoT Hub's own events. */
  source?: string;
  partitionId: string;
  sequenceNumber: number;
  body: unknown;
  /** The application properties the device set. */
  properties: Record<string, unknown>;
  /** messageId, correlationId, contentType... and IoT Hub's iothub-* stamps. */
  systemProperties: Record<string, unknown>;
}

export interface MonitorEventsOptions {
  /** Only this device's messages. */
  deviceId?: string;
  /** Stop after this many (matching) events. */
  count?: number;
  /** Stop after this long; timedOut tells whether it was this that stopped it. */
  timeoutSeconds?: number;
  /** 'latest' (default): what is enqueued from now on; 'earliest': everything retained. */
  startPosition?: 'latest' | 'earliest';
  consumerGroup?: string;
  signal?: AbortSignal;
  /** Called once every partition's start is fixed: anything enqueued from then on is seen. */
  onReady?: (partitionIds: string[]) => void;
  onEvent?: (event: MonitoredEvent) => void;
}

/**
 * The tutorial's monitor (iothub-explorer monitor-events): reads the device-to-cloud messages from
 * the hub's Event Hub-compatible endpoint with @azure/event-hubs, all partitions, one consumer group.
 */
export async function monitorEvents(
  connection: EventHubConnection,
  options: MonitorEventsOptions = {},
): Promise<{ received: number; timedOut: boolean }> {
  const client = new EventHubConsumerClient(options.consumerGroup ?? '$Default', connection.connectionString, {
    retryOptions: { maxRetries: 3, retryDelayInMs: 1000, timeoutInMs: 30_000 },
  });
  let received = 0;
  try {
    // 'latest' is pinned to each partition's last sequence number now, so the monitor is ready (and
    // can say so) before its receivers attach: nothing sent after onReady can slip past it.
    const partitionIds = await client.getPartitionIds().catch((err) => {
      throw explain(err, 'reading the Event Hub-compatible endpoint');
    });
    const positions: Record<string, EventPosition> = {};
    for (const id of partitionIds) {
      if (options.startPosition === 'earliest') {
        positions[id] = earliestEventPosition;
        continue;
      }
      const partition = await client.getPartitionProperties(id);
      positions[id] = partition.isEmpty
        ? earliestEventPosition
        : { sequenceNumber: partition.lastEnqueuedSequenceNumber, isInclusive: false };
    }
    options.onReady?.(partitionIds);

    let timer: NodeJS.Timeout | undefined;
    const timedOut = await new Promise<boolean>((resolve, reject) => {
      if (options.count === 0 || options.signal?.aborted) return resolve(false);
      if (options.timeoutSeconds !== undefined) timer = setTimeout(() => resolve(true), options.timeoutSeconds * 1000);
      options.signal?.addEventListener('abort', () => resolve(false), { once: true });
      // Closing the client (below) closes the subscription.
      client.subscribe(
        {
          processEvents: async (events, context) => {
            for (const event of events) {
              const monitored = toMonitored(event, context.partitionId);
              if (options.deviceId !== undefined && monitored.deviceId !== options.deviceId) continue;
              if (options.count !== undefined && received >= options.count) break;
              received++;
              options.onEvent?.(monitored);
              if (received === options.count) resolve(false);
            }
          },
          processError: async (err) => {
            // The client retries what is transient; a refused token or a missing entity is final.
            const code = (err as { code?: string }).code;
            if (code === 'UnauthorizedError' || code === 'MessagingEntityNotFoundError') reject(explain(err, 'reading events'));
          },
        },
        { startPosition: positions, maxBatchSize: 100, maxWaitTimeInSeconds: 5 },
      );
    });
    clearTimeout(timer);
    return { received, timedOut };
  } finally {
    await client.close().catch(() => undefined);
  }
}

/**
 * A system property as text where it holds text in binary: AMQP's user-id, where IoT Hub puts a
 * device's user id or the hub's name, reaches us as a Buffer, or, copied by @azure/event-hubs (which
 * copies objects to turn their dates into numbers), as an object of its bytes by index.
 */
function textOf(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const bytes = Object.values(value);
  const isBytes =
    bytes.length > 0 &&
    Object.keys(value).every((key, i) => key === String(i)) &&
    bytes.every((b) => Number.isInteger(b) && b >= 0 && b < 256);
  return isBytes ? Buffer.from(bytes as number[]).toString('utf8') : value;
}

function toMonitored(event: ReceivedEventData, partitionId: string): MonitoredEvent {
  const system = event.systemProperties ?? {};
  const systemProperties: Record<string, unknown> = {};
  for (const [name, value] of Object.entries({
    messageId: event.messageId,
    correlationId: event.correlationId,
    contentType: event.contentType,
    ...system,
  })) {
    if (value !== undefined && name !== 'iothub-enqueuedtime') systemProperties[name] = textOf(value);
  }
  return {
    deviceId: system['iothub-connection-device-id'] as string | undefined,
    moduleId: system['iothub-connection-module-id'] as string | undefined,
    enqueuedTime: event.enqueuedTimeUtc.toISOString(),
    ...(typeof system['iothub-message-source'] === 'string' ? { source: system['iothub-message-source'] } : {}),
    partitionId,
    sequenceNumber: event.sequenceNumber,
    body: decodeBody(event.body),
    properties: { ...event.properties },
    systemProperties,
  };
}

/** JSON when it is JSON, text when it is text: what a person wants to read. */
function decodeBody(body: unknown): unknown {
  if (!Buffer.isBuffer(body) && typeof body !== 'string') return body;
  const text = body.toString();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
