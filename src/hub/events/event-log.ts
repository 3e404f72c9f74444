import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { HubError, hubErrors } from '../errors.js';
import { silentLog, type HubLog } from '../log.js';
import type { EventStore, NewEvent, PartitionInfo, StoredEvent } from '../store/event-store.js';
import { EventTail } from './event-tail.js';
import { GroupCommit } from './group-commit.js';

export type { PartitionInfo, StoredEvent };

/** A device-to-cloud message as a device gateway hands it over. */
export interface D2CMessage {
  deviceId: string;
  moduleId?: string;
  body: Buffer;
  messageId?: string;
  correlationId?: string;
  contentType?: string;
  contentEncoding?: string;
  userId?: string;
  /** `$.to` (IoTHub-To over HTTPS): carried as the AMQP message's `to`. */
  to?: string;
  /** `$.exp` (IoTHub-Expiry), ISO 8601: carried as absolute-expiry-time. */
  expiryTime?: string;
  /** `$.ctime` (iothub-creation-time-utc), ISO 8601: carried as creation-time. */
  creationTime?: string;
  /** `$.ifid` (iothub-interface-id): carried as the iothub-interface-id annotation. */
  interfaceId?: string;
  properties: Record<string, string>;
  authMethod?: 'sas' | 'x509';
  /** The identity's generationId from the registry, stamped as iothub-connection-auth-generation-id. */
  authGenerationId?: string;
  /** The model id the sender's connection announced (IoT Plug and Play), stamped as dt-dataschema. */
  modelId?: string;
  /** The IoT Plug and Play component the message is from (`$.sub`), stamped as dt-subject. */
  component?: string;
}

/** Where the device gateways hand device-to-cloud messages: the built-in endpoint, or message routing in front of it. */
export interface D2CSink {
  /** Resolves once the message is stored (or routed nowhere): the device's acknowledgement waits for it. */
  append(msg: D2CMessage): Promise<unknown>;
  /** All or none of them, as one request of the device. */
  appendMany(msgs: D2CMessage[]): Promise<unknown>;
}

/** The data sources of IoT Hub's own (non-telemetry) events, as `iothub-message-source` names them. */
export type HubEventSource = 'twinChangeEvents' | 'deviceLifecycleEvents' | 'deviceConnectionStateEvents' | 'digitalTwinChangeEvents';

/** An event IoT Hub itself emits about an identity (its twin changed, it was created, it connected), routed to the endpoint. */
export interface HubEvent {
  source: HubEventSource;
  deviceId: string;
  moduleId?: string;
  /** JSON, UTF-8. */
  body: Buffer;
  /** application/json, or application/json-patch+json (a digital twin change). */
  contentType: string;
  /** The device's model id (IoT Plug and Play), stamped as dt-dataschema on a digital twin change. */
  modelId?: string;
  /** A unique id of the event. */
  correlationId: string;
  /** The hub's name. */
  userId: string;
  /** hubName, deviceId, moduleId, operationTimestamp, iothub-message-schema, opType, and enrichments. */
  properties: Record<string, string>;
}

/** Where a reader starts in a partition, as an Event Hubs receiver's filter says. */
export type EventPosition =
  { kind: 'earliest' } | { kind: 'latest' } | { kind: 'sequenceNumber' | 'offset' | 'enqueuedTime'; value: number; inclusive: boolean };

export interface EventLogOptions {
  /** Fixed when the log is first created. Default 4, the minimum of IoT Hub's built-in endpoint. */
  partitionCount?: number;
  /** Events older than this are pruned. Default 1 day, IoT Hub's default retention. */
  retentionMs?: number;
  /** Beyond this many events a partition drops its oldest. Default 100,000. */
  maxEventsPerPartition?: number;
  /** How often retention runs. Default 1 minute. */
  pruneIntervalMs?: number;
  /** How many of each partition's newest events live readers get from memory. Default 4,096. */
  tailEventsPerPartition?: number;
  /**
   * The most the in-memory tail holds, in bytes over all partitions (each gets its share); readers
   * behind it read from the store. Default 32 MB: 128 of IoT Hub's largest messages (256 KB), and
   * thousands of common ones, so that live readers rarely go to the store.
   */
  tailBytes?: number;
  now?: () => number;
  /** Hears of appends that failed unexpectedly (a full disk the store tells itself). */
  log?: HubLog;
}

interface EventLogEvents {
  /** Events up to `lastSequenceNumber` are readable in `partition`. */
  appended: [partition: number, lastSequenceNumber: number];
}

const defaults = {
  partitionCount: 4,
  retentionMs: 24 * 60 * 60 * 1000,
  maxEventsPerPartition: 100_000,
  pruneIntervalMs: 60_000,
  tailEventsPerPartition: 4096,
  tailBytes: 32 * 1024 * 1024,
};

/**
 * IoT Hub's built-in events endpoint as a domain: device-to-cloud messages stamped as IoT Hub stamps
 * them, spread over partitions by device, durable once appended, readable by sequence number, and
 * announced to live readers with an 'appended' event.
 */
export class EventLog extends EventEmitter<EventLogEvents> implements D2CSink {
  readonly partitionCount: number;
  readonly createdAt: Date;
  private readonly now: () => number;
  private readonly retentionMs: number;
  private readonly maxEventsPerPartition: number;
  private readonly pruneTimer: NodeJS.Timeout;
  private readonly partitions = new Map<string, number>();
  /**
   * The stamps of each sender (identity, auth method, generation): one object for all of its
   * messages, which the store then encodes once rather than per message.
   */
  private readonly stamps = new Map<string, Readonly<Record<string, string>>>();
  private readonly tail: EventTail;
  private readonly commits: GroupCommit<NewEvent, StoredEvent>;

  constructor(
    private readonly store: EventStore,
    options: EventLogOptions = {},
  ) {
    super();
    this.setMaxListeners(0); // one listener per open receiver link
    this.now = options.now ?? Date.now;
    this.retentionMs = options.retentionMs ?? defaults.retentionMs;
    this.maxEventsPerPartition = options.maxEventsPerPartition ?? defaults.maxEventsPerPartition;
    const requested = options.partitionCount ?? defaults.partitionCount;
    if (!Number.isInteger(requested) || requested < 1 || requested > 128) {
      throw hubErrors.argumentInvalid(`The partition count must be an integer from 1 to 128, not ${requested}.`);
    }
    const hub = store.ensureHub(requested, this.now());
    if (options.partitionCount !== undefined && hub.partitionCount !== options.partitionCount) {
      throw hubErrors.argumentInvalid(
        `The event log was created with ${hub.partitionCount} partitions and cannot change to ` +
          `${options.partitionCount} (as in IoT Hub); use a new data directory for another count.`,
      );
    }
    this.partitionCount = hub.partitionCount;
    this.tail = new EventTail(
      options.tailEventsPerPartition ?? defaults.tailEventsPerPartition,
      (options.tailBytes ?? defaults.tailBytes) / this.partitionCount,
    );
    this.createdAt = new Date(hub.createdAtMs);
    this.pruneTimer = setInterval(() => this.prune(), options.pruneIntervalMs ?? defaults.pruneIntervalMs);
    this.pruneTimer.unref();
    const log = options.log ?? silentLog();
    this.commits = new GroupCommit(
      (events) => this.commit(events, log),
      (stored) => this.announce(stored),
    );
  }

  /** The partition of a device: a stable hash of its id, so a device's messages stay in order. */
  partitionOf(deviceId: string): number {
    let partition = this.partitions.get(deviceId);
    if (partition === undefined) {
      // A hash per message showed in the D2C profile; a bounded memo of it does not.
      if (this.partitions.size >= 100_000) this.partitions.clear();
      partition = createHash('sha256').update(deviceId).digest().readUInt32BE(0) % this.partitionCount;
      this.partitions.set(deviceId, partition);
    }
    return partition;
  }

  partitionIds(): string[] {
    return Array.from({ length: this.partitionCount }, (_, p) => String(p));
  }

  /** Appends one message; it is on disk when this resolves. */
  async append(msg: D2CMessage): Promise<StoredEvent> {
    return this.commits.add(this.toNewEvent(msg));
  }

  /**
   * Appends messages, all or none of them: in one transaction with whatever else is appended at the
   * same time. They are on disk, and announced to live readers, when this resolves.
   */
  async appendMany(msgs: D2CMessage[]): Promise<StoredEvent[]> {
    const events = msgs.map((msg) => this.toNewEvent(msg)); // all checked before any is added
    return Promise.all(events.map((event) => this.commits.add(event)));
  }

  /** Appends one of IoT Hub's own events, stamped as IoT Hub stamps them (no connection's auth method: no device sent it). */
  async appendHubEvent(event: HubEvent): Promise<StoredEvent> {
    const annotations = definedOnly({
      'iothub-connection-device-id': event.deviceId,
      'iothub-connection-module-id': event.moduleId,
      'iothub-message-source': event.source,
      'dt-dataschema': event.modelId,
    });
    const systemProperties = {
      correlationId: event.correlationId,
      contentType: event.contentType,
      contentEncoding: 'utf-8',
      userId: event.userId,
    };
    return this.commits.add({
      partition: this.partitionOf(event.deviceId),
      body: event.body,
      systemProperties,
      annotations,
      properties: event.properties,
    });
  }

  /** Up to `max` events of a partition from sequence number `fromSequence` on, oldest first. */
  read(partition: number, fromSequence: number, max: number): StoredEvent[] {
    this.checkPartition(partition);
    return this.tail.read(partition, fromSequence, max) ?? this.store.read(partition, fromSequence, max);
  }

  partitionInfo(partition: number): PartitionInfo {
    this.checkPartition(partition);
    return this.store.partitionInfo(partition);
  }

  /** The sequence number a reader starting at `position` reads first (it may not be enqueued yet). */
  startSequence(partition: number, position: EventPosition): number {
    const info = this.partitionInfo(partition);
    const next = info.lastSequenceNumber + 1;
    switch (position.kind) {
      case 'earliest':
        return info.beginSequenceNumber;
      case 'latest':
        return next;
      case 'sequenceNumber':
        return position.inclusive ? position.value : position.value + 1;
      case 'offset':
        return this.store.firstSequenceAfterOffset(partition, position.value, position.inclusive) ?? next;
      case 'enqueuedTime':
        return this.store.firstSequenceAfterTime(partition, position.value, position.inclusive) ?? next;
    }
  }

  /** Applies retention now; it also runs on a timer. Returns how many events were deleted. */
  prune(): number {
    const deleted = this.store.prune(this.now() - this.retentionMs, this.maxEventsPerPartition);
    if (deleted > 0) this.tail.clear();
    return deleted;
  }

  /** Stops retention and waits for the append in flight; later appends fail. */
  async close(): Promise<void> {
    clearInterval(this.pruneTimer);
    this.removeAllListeners();
    await this.store.close();
  }

  /**
   * Stores one group of appends; if that fails, none of them is acknowledged. A failure that is not a
   * HubError (a full disk is one, 503, and the store logs it) is unexpected: logged once for the group.
   */
  private async commit(events: NewEvent[], log: HubLog): Promise<StoredEvent[]> {
    try {
      return await this.store.append(events, this.now());
    } catch (err) {
      if (err instanceof HubError) throw err;
      log.error('store', `storing ${events.length} device-to-cloud messages failed, none is acknowledged: ${(err as Error)?.stack ?? err}`);
      throw err;
    }
  }

  /** Hands committed events to live readers. */
  private announce(stored: StoredEvent[]): void {
    this.tail.add(stored);
    const last = new Map<number, number>();
    for (const event of stored) last.set(event.partition, event.sequenceNumber);
    for (const [partition, sequenceNumber] of last) this.emit('appended', partition, sequenceNumber);
  }

  private checkPartition(partition: number): void {
    if (!Number.isInteger(partition) || partition < 0 || partition >= this.partitionCount) {
      throw hubErrors.argumentInvalid(`Partition ${partition} does not exist; partitions are 0 to ${this.partitionCount - 1}.`);
    }
  }

  private toNewEvent(msg: D2CMessage): NewEvent {
    if (!msg.deviceId) throw hubErrors.argumentNull('A device-to-cloud message needs the sending device id.');
    const systemProperties: NewEvent['systemProperties'] = {};
    if (msg.messageId !== undefined) systemProperties.messageId = msg.messageId;
    if (msg.correlationId !== undefined) systemProperties.correlationId = msg.correlationId;
    if (msg.contentType !== undefined) systemProperties.contentType = msg.contentType;
    if (msg.contentEncoding !== undefined) systemProperties.contentEncoding = msg.contentEncoding;
    if (msg.userId !== undefined) systemProperties.userId = msg.userId;
    if (msg.to !== undefined) systemProperties.to = msg.to;
    if (msg.expiryTime !== undefined) systemProperties.absoluteExpiryTimeMs = timeOf('expiry time', msg.expiryTime);
    if (msg.creationTime !== undefined) systemProperties.creationTimeMs = timeOf('creation time', msg.creationTime);
    const stamps = this.stampsOf(msg);
    const annotations =
      msg.component === undefined && msg.interfaceId === undefined
        ? stamps
        : definedOnly({ ...stamps, 'dt-subject': msg.component, 'iothub-interface-id': msg.interfaceId });
    return { partition: this.partitionOf(msg.deviceId), body: msg.body, systemProperties, annotations, properties: msg.properties };
  }

  private stampsOf(msg: D2CMessage): Readonly<Record<string, string>> {
    // Identity ids never hold a line feed (and the model id, which might, comes last).
    const sender = `${msg.deviceId}\n${msg.moduleId ?? ''}\n${msg.authMethod ?? ''}\n${msg.authGenerationId ?? ''}\n${msg.modelId ?? ''}`;
    let stamps = this.stamps.get(sender);
    if (!stamps) {
      if (this.stamps.size >= 100_000) this.stamps.clear();
      stamps = Object.freeze(connectionStamps(msg));
      this.stamps.set(sender, stamps);
    }
    return stamps;
  }
}

function authMethod(scope: 'device' | 'module', x509: boolean): string {
  return JSON.stringify({
    scope,
    type: x509 ? 'x509Certificate' : 'sas',
    issuer: x509 ? 'external' : 'iothub',
    acceptingIpFilterRule: null,
  });
}

/** iothub-connection-auth-method's four possible values, made once rather than per message. */
const AUTH_METHOD = {
  device: { sas: authMethod('device', false), x509: authMethod('device', true) },
  module: { sas: authMethod('module', false), x509: authMethod('module', true) },
};

/**
 * The iothub-* system properties IoT Hub puts on every device-to-cloud message, in IoT Hub's order, and
 * dt-dataschema on those of a connection that announced a model. iothub-enqueuedtime is the enqueued
 * time, added where the event is read out.
 */
export function connectionStamps(msg: D2CMessage): Record<string, string> {
  const x509 = msg.authMethod === 'x509';
  return definedOnly({
    'iothub-connection-device-id': msg.deviceId,
    'iothub-connection-module-id': msg.moduleId,
    'iothub-connection-auth-method': AUTH_METHOD[msg.moduleId ? 'module' : 'device'][x509 ? 'x509' : 'sas'],
    'iothub-connection-auth-generation-id': msg.authGenerationId,
    'iothub-message-source': 'Telemetry',
    'dt-dataschema': msg.modelId,
  });
}

/** A message's date (ISO 8601, as the SDKs write it) in ms; one that is not a date is refused (400). */
function timeOf(what: string, text: string): number {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw hubErrors.argumentInvalid(`The message's ${what} '${text.slice(0, 40)}' is not an ISO 8601 date.`);
  return ms;
}

export function definedOnly(record: Record<string, string | undefined>): Record<string, string> {
  const defined: Record<string, string> = {};
  for (const name in record) if (record[name] !== undefined) defined[name] = record[name];
  return defined;
}
