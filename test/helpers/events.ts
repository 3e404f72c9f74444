import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventHubConsumerClient, type EventPosition, type ReceivedEventData, type SubscribeOptions } from '@azure/event-hubs';
import { startEventHubEndpoint, type EventHubEndpoint } from '../../src/hub/events/amqp-endpoint.js';
import { EventLog, type D2CMessage, type EventLogOptions } from '../../src/hub/events/event-log.js';
import type { VerifyToken } from '../../src/hub/events/cbs.js';
import { openDatabase, type Db } from '../../src/hub/store/database.js';
import { EventStore } from '../../src/hub/store/event-store.js';

export const hubName = 'tut-hub';
export const keyName = 'service';
export const key = Buffer.from('the service policy key, 32 bytes').toString('base64');

/**
 * Checks an Event Hubs SAS token for `keyName`/`key` (until the hub's auth module does). Event Hubs
 * signs `encodeURIComponent(sr) + '\n' + se` with HMAC-SHA256 keyed by the key *string's* UTF-8
 * bytes: that is what @azure/core-amqp does (IoT Hub's own tokens use the base64-decoded key).
 */
export function verifyEventHubsSas(expectedKeyName: string, sharedKey: string): VerifyToken {
  return (token, audience) => {
    const prefix = 'SharedAccessSignature ';
    if (!token.startsWith(prefix)) return false;
    const fields = new Map(
      token
        .slice(prefix.length)
        .split('&')
        .map((pair) => {
          const at = pair.indexOf('=');
          return [pair.slice(0, at), pair.slice(at + 1)] as [string, string];
        }),
    );
    const [sr, sig, se, skn] = ['sr', 'sig', 'se', 'skn'].map((name) => fields.get(name));
    if (!sr || !sig || !se || !skn) return false;
    if (decodeURIComponent(skn) !== expectedKeyName) return false;
    if (!(Number(se) * 1000 > Date.now())) return false;
    const resource = decodeURIComponent(sr).toLowerCase().replace(/\/+$/, '');
    const wanted = audience.toLowerCase().replace(/\/+$/, '');
    if (wanted !== resource && !wanted.startsWith(`${resource}/`)) return false;
    const expected = createHmac('sha256', sharedKey)
      .update(`${encodeURIComponent(decodeURIComponent(sr))}\n${se}`)
      .digest();
    const given = Buffer.from(decodeURIComponent(sig), 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
}

export interface TestHub {
  dir: string;
  dbPath: string;
  db: Db;
  log: EventLog;
  endpoint: EventHubEndpoint;
  connectionString(sharedKey?: string): string;
  /** Stops the endpoint and closes the database, keeping the files (for a restart). */
  stop(): Promise<void>;
  /** Stops and deletes the files. */
  dispose(): Promise<void>;
}

export async function startTestHub(
  options: EventLogOptions & { dir?: string; consumerGroups?: string[]; idleTimeOutMs?: number } = {},
): Promise<TestHub> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'iothub-events-'));
  const dbPath = join(dir, 'hub.db');
  const db = openDatabase(dbPath);
  const log = new EventLog(new EventStore(db), options);
  const endpoint = await startEventHubEndpoint({
    port: 0,
    hubName,
    eventLog: log,
    consumerGroups: options.consumerGroups,
    idleTimeOutMs: options.idleTimeOutMs,
    verifyToken: verifyEventHubsSas(keyName, key),
  });
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await endpoint.close();
    await log.close();
    db.close();
  };
  return {
    dir,
    dbPath,
    db,
    log,
    endpoint,
    connectionString: (sharedKey = key) =>
      `Endpoint=sb://localhost:${endpoint.port}/;SharedAccessKeyName=${keyName};SharedAccessKey=${sharedKey};` +
      `EntityPath=${hubName};UseDevelopmentEmulator=true`,
    stop,
    async dispose() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function consumer(connectionString: string, consumerGroup = '$Default'): EventHubConsumerClient {
  return new EventHubConsumerClient(consumerGroup, connectionString, {
    retryOptions: { maxRetries: 2, retryDelayInMs: 200, timeoutInMs: 15_000 },
  });
}

/** The SDK's error codes (`UnauthorizedError`, `QuotaExceededError`...) in an error, or in all those it aggregates. */
export function errorCodes(error: Error): string[] {
  if (error instanceof AggregateError) return (error.errors as Error[]).flatMap(errorCodes);
  const { code } = error as Error & { code?: string };
  return code === undefined ? [] : [code];
}

/** Rejects after `ms` so that no test waits forever. */
export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `predicate` until it holds; fails after `ms`, and stops polling then (a poll left running would keep the file alive). */
export async function eventually(ms: number, what: string, predicate: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export interface Collected {
  events: ReceivedEventData[];
  errors: Error[];
  /** Partitions whose receiver has answered at least once (with events or after its max wait). */
  readyPartitions: Set<string>;
  /** Resolves once `predicate` holds (checked on every batch and error), rejects after `ms`. */
  until(ms: number, what: string, predicate: () => boolean): Promise<void>;
  close(): Promise<void>;
}

/** Subscribes to all partitions (or one) and collects what arrives. */
export function collect(
  client: EventHubConsumerClient,
  startPosition: EventPosition,
  partitionId?: string,
  options: SubscribeOptions = {},
): Collected {
  const events: ReceivedEventData[] = [];
  const errors: Error[] = [];
  const readyPartitions = new Set<string>();
  const waiters = new Set<() => void>();
  const notify = (): void => waiters.forEach((check) => check());
  const handlers = {
    processEvents: async (batch: ReceivedEventData[], context: { partitionId: string }) => {
      events.push(...batch);
      readyPartitions.add(context.partitionId);
      notify();
    },
    processError: async (error: Error) => {
      errors.push(error);
      notify();
    },
  };
  const subscribeOptions: SubscribeOptions = { startPosition, maxBatchSize: 100, maxWaitTimeInSeconds: 1, ...options };
  const subscription =
    partitionId === undefined ? client.subscribe(handlers, subscribeOptions) : client.subscribe(partitionId, handlers, subscribeOptions);
  return {
    events,
    errors,
    readyPartitions,
    until(ms, what, predicate) {
      let check!: () => void;
      const reached = new Promise<void>((resolve) => {
        check = () => {
          if (predicate()) resolve();
        };
        waiters.add(check);
        check();
      });
      return within(ms, what, reached).finally(() => waiters.delete(check));
    },
    close: () => subscription.close(),
  };
}

export function telemetry(deviceId: string, index: number, extra: Partial<D2CMessage> = {}): D2CMessage {
  return {
    deviceId,
    body: Buffer.from(JSON.stringify({ index, deviceId })),
    messageId: `msg-${index}`,
    correlationId: `corr-${index}`,
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    properties: { index: String(index), kind: 'telemetry' },
    ...extra,
  };
}
