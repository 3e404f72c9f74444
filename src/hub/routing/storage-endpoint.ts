import { createHash } from 'node:crypto';
import { GroupCommit } from '../events/group-commit.js';
import type { HubLog } from '../log.js';
import type { BlobAccount } from '../storage/blob-account.js';
import type { QueuedRecord, RecordQueue } from '../store/record-queue.js';
import { avroBlock, avroFile, type AvroCodec } from './avro.js';
import type { StorageEndpointSettings } from './routing-settings.js';

/** One routed message or event, kept in the hub's store until a blob holds it. */
export interface StorageRecord {
  partition: number;
  /** IoT Hub's format: seven fractional digits, `2019-05-10T06:06:32.7220000Z`. */
  enqueuedTimeUtc: string;
  properties: Record<string, string>;
  systemProperties: Record<string, string>;
  /** base64. */
  body: string;
  /** The body is JSON in UTF-8 (content type application/json, encoding UTF-8): JSON encoding writes it as JSON, not base64. */
  jsonBody: boolean;
}

/** The store table of an endpoint's records (endpoint names may hold '-' and '.', which SQL names may not). */
export function storageQueueTable(endpointName: string): string {
  return `routing_storage_${createHash('sha256').update(endpointName).digest('hex').slice(0, 16)}`;
}

/**
 * How long, and how many, records wait for a storage account that does not take them, before the
 * oldest are dropped (with a warning): the event log's retention and its bound per partition.
 */
const RECORD_TTL_MS = 24 * 60 * 60 * 1000;
const MAX_WAITING_RECORDS = 100_000;

export interface StorageEndpointBounds {
  /** Default: the event log's retention, a day. */
  recordTtlMs?: number;
  /** Default 100,000. */
  maxWaiting?: number;
}
/** Records read from the store per blob write. */
const READ_LIMIT = 1000;

/**
 * A storage container endpoint: routed messages are stored in the hub's store at once (the device is
 * acknowledged only then, as for the built-in endpoint), and written to the container in batches, a
 * blob per partition, every batchFrequencyInSeconds or when maxChunkSizeInBytes are waiting, and when
 * the hub stops. A record leaves the store only once a blob holds it: a storage account that does not
 * answer delays the blobs, and loses nothing for a day.
 */
export class StorageEndpoint {
  private readonly commits: GroupCommit<StorageRecord, undefined>;
  private timer?: NodeJS.Timeout;
  /** The Avro sync marker of every blob of this endpoint, so that a second batch in the same minute appends to its blob. */
  private readonly sync: Buffer;
  private pendingBytes = 0;
  /** How many records wait in the store (counted once, then kept up to date). */
  private waiting: number;
  private flushing?: Promise<void>;
  private containerReady = false;

  constructor(
    readonly settings: StorageEndpointSettings,
    private readonly queue: RecordQueue<StorageRecord>,
    private readonly account: BlobAccount,
    private readonly hubName: string,
    private readonly log: HubLog,
    private readonly now: () => number = Date.now,
    private readonly bounds: StorageEndpointBounds = {},
  ) {
    this.sync = createHash('sha256').update(`iothub-tut routing\n${hubName}\n${settings.name}`).digest().subarray(0, 16);
    this.waiting = queue.count();
    this.commits = new GroupCommit(async (records) => {
      const max = this.bounds.maxWaiting ?? MAX_WAITING_RECORDS;
      this.queue.addMany(records, this.now(), this.now() + (this.bounds.recordTtlMs ?? RECORD_TTL_MS));
      this.waiting += records.length;
      if (this.waiting > max) this.dropped(this.queue.dropOldest(this.waiting - max), `beyond ${max} waiting`);
      return records.map(() => undefined);
    });
  }

  /** Starts the batch timer (what a previous run left in the store goes with the first batch). */
  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.settings.batchFrequencyInSeconds * 1000);
    this.timer.unref();
  }

  /** What the hub says of it at start. */
  describe(): string {
    const { name, containerName, batchFrequencyInSeconds, encoding } = this.settings;
    return `storage endpoint ${name} writes to ${this.account.url(containerName)} every ${batchFrequencyInSeconds} s (${encoding})`;
  }

  /** Resolves once the record is in the hub's store (a blob gets it with the next batch). */
  async add(record: StorageRecord): Promise<void> {
    await this.commits.add(record);
    this.pendingBytes += record.body.length;
    if (this.pendingBytes >= this.settings.maxChunkSizeInBytes) void this.flush();
  }

  /** Writes what is waiting to blobs; one write at a time. A failure is logged, and the records wait for the next batch. */
  flush(): Promise<void> {
    this.flushing ??= this.writeAll().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /** Stops the timer and writes what is waiting. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private async writeAll(): Promise<void> {
    try {
      this.pendingBytes = 0;
      this.dropped(this.queue.expire(this.now()), 'out of time');
      for (let batch = this.queue.oldest(this.now(), READ_LIMIT); batch.length > 0; batch = this.queue.oldest(this.now(), READ_LIMIT)) {
        if (!this.containerReady) {
          await this.account.ensureContainer(this.settings.containerName);
          this.containerReady = true;
        }
        const partitions = new Map<number, Array<QueuedRecord<StorageRecord>>>();
        for (const queued of batch) {
          const list = partitions.get(queued.record.partition);
          if (list) list.push(queued);
          else partitions.set(queued.record.partition, [queued]);
        }
        for (const [partition, queued] of partitions) {
          const blobName = this.blobName(partition);
          await this.write(
            blobName,
            queued.map((q) => q.record),
          );
          this.queue.remove(queued.map((q) => q.seq));
          this.waiting -= queued.length;
          this.log.debug(
            'routing',
            `storage endpoint '${this.settings.name}' wrote ${queued.length} message(s) to ${this.settings.containerName}/${blobName}`,
          );
        }
      }
    } catch (err) {
      this.log.warn(
        'routing',
        `storage endpoint '${this.settings.name}' could not write to ${this.account.url(this.settings.containerName)}, the messages wait for the next batch: ${(err as Error).message}`,
      );
    }
  }

  /** Says that records the storage account never took were dropped. */
  private dropped(count: number, why: string): void {
    if (count === 0) return;
    this.waiting -= count;
    this.log.warn(
      'routing',
      `storage endpoint '${this.settings.name}' dropped its ${count} oldest message(s), ${why} for a storage account that does not take them`,
    );
  }

  /** The blob name of a batch written now: the endpoint's fileNameFormat with its tokens filled (UTC). */
  private blobName(partition: number): string {
    const at = new Date(this.now()).toISOString(); // 2026-12-03T08:05:00.000Z
    const values: Record<string, string> = {
      '{iothub}': this.hubName,
      '{partition}': String(partition),
      '{YYYY}': at.slice(0, 4),
      '{MM}': at.slice(5, 7),
      '{DD}': at.slice(8, 10),
      '{HH}': at.slice(11, 13),
      '{mm}': at.slice(14, 16),
    };
    return this.settings.fileNameFormat.replace(/\{(iothub|partition|YYYY|MM|DD|HH|mm)\}/g, (token) => values[token]!);
  }

  /**
   * Writes one blob (a block blob, as IoT Hub writes), or, when this minute's blob of the partition
   * exists already, appends to it: the same Avro header and sync marker, or one more line of JSON.
   */
  private async write(blobName: string, records: StorageRecord[]): Promise<void> {
    const container = this.settings.containerName;
    const url = this.account.url(container, blobName);
    const sas = await this.account.blobSas(container, blobName, 'rcw', this.now() + 5 * 60 * 1000, false);
    const headers = { 'x-ms-blob-type': 'BlockBlob', 'content-type': this.contentType() };
    const created = await this.account.request('PUT', `${url}?${sas}`, { ...headers, 'if-none-match': '*' }, this.encode(records, true));
    if (created.status === 201) return;
    if (created.status !== 409) throw new Error(`the storage account answered ${created.status} to writing ${blobName}`);
    const existing = await this.account.request('GET', `${url}?${sas}`);
    if (existing.status !== 200) throw new Error(`the storage account answered ${existing.status} to reading ${blobName}`);
    const appended = Buffer.concat([existing.body, this.encode(records, false)]);
    const etag = String(existing.headers.etag ?? '*');
    const replaced = await this.account.request('PUT', `${url}?${sas}`, { ...headers, 'if-match': etag }, appended);
    if (replaced.status !== 201) throw new Error(`the storage account answered ${replaced.status} to appending to ${blobName}`);
  }

  private contentType(): string {
    return this.settings.encoding === 'json' ? 'application/json' : 'avro/binary';
  }

  /** The records in the endpoint's encoding: a whole blob, or what is appended to one. */
  private encode(records: StorageRecord[], whole: boolean): Buffer {
    if (this.settings.encoding === 'json') return Buffer.from(records.map((r) => JSON.stringify(jsonRecord(r)) + '\n').join(''));
    const codec: AvroCodec = this.settings.encoding === 'avrodeflate' ? 'deflate' : 'null';
    const messages = records.map((r) => ({
      EnqueuedTimeUtc: r.enqueuedTimeUtc,
      Properties: r.properties,
      SystemProperties: r.systemProperties,
      Body: Buffer.from(r.body, 'base64'),
    }));
    return whole ? avroFile(messages, codec, this.sync) : avroBlock(messages, codec, this.sync);
  }
}

/** A record as IoT Hub writes it with JSON encoding: a JSON body as JSON, any other as base64. */
function jsonRecord(record: StorageRecord): Record<string, unknown> {
  let body: unknown = record.body;
  if (record.jsonBody) {
    try {
      body = JSON.parse(Buffer.from(record.body, 'base64').toString('utf8'));
    } catch {
      // not JSON after all: base64, as IoT Hub writes a body it cannot read
    }
  }
  return { EnqueuedTimeUtc: record.enqueuedTimeUtc, Properties: record.properties, SystemProperties: record.systemProperties, Body: body };
}
