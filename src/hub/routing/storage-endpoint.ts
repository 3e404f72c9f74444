import { createHash, randomBytes } from 'node:crypto';
import { GroupCommit } from '../events/group-commit.js';
import type { HubLog } from '../log.js';
import type { BlobAccount } from '../storage/blob-account.js';
import type { Db } from '../store/database.js';
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
 * The store's storage endpoint tables that hold records and belong to none of `endpointNames` (an
 * endpoint removed from the routing settings, or renamed), with how many records each holds.
 */
export function strandedStorageRecords(db: Db, endpointNames: string[]): number {
  const owned = new Set(endpointNames.map(storageQueueTable));
  const tables = db
    .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'routing_storage_%'")
    .all();
  return tables
    .filter(({ name }) => !owned.has(name))
    .reduce((n, { name }) => n + (db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM ${name}`).get()?.n ?? 0), 0);
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

/** A batch is at most this many records, and about this many bytes of bodies (at least one record). */
const BATCH_RECORDS = 1000;
const BATCH_BYTES = 8 * 1024 * 1024;
/** How often at most the hub warns that records were dropped (a queue at its bound drops with every commit). */
const DROP_WARNING_MS = 60_000;

/**
 * A storage container endpoint: routed messages are stored in the hub's store at once (the device is
 * acknowledged only then, as for the built-in endpoint), and written to the container in batches, a
 * blob per partition and minute, every batchFrequencyInSeconds, when maxChunkSizeInBytes are waiting,
 * and (one batch) when the hub stops. A record leaves the store only once a blob holds it: a storage
 * account that does not answer delays the blobs, and loses nothing within the bounds.
 */
export class StorageEndpoint {
  private readonly commits: GroupCommit<StorageRecord, undefined>;
  private timer?: NodeJS.Timeout;
  /** The Avro sync marker of every blob of this endpoint and encoding, so that a later batch in the same minute appends to its blob. */
  private readonly sync: Buffer;
  /** Bytes of bodies added since the last batch. */
  private pendingBytes = 0;
  /** How many records wait in the store: counted once, then kept by what each write changes. */
  private waiting: number;
  private flushing?: Promise<void>;
  private containerReady = false;
  private droppedUnsaid = 0;
  private lastDropWarning = -Infinity;

  constructor(
    readonly settings: StorageEndpointSettings,
    private readonly queue: RecordQueue<StorageRecord>,
    private readonly account: BlobAccount,
    private readonly hubName: string,
    private readonly log: HubLog,
    private readonly now: () => number = Date.now,
    private readonly bounds: StorageEndpointBounds = {},
  ) {
    const { name, encoding } = settings;
    this.sync = createHash('sha256').update(`iothub-tut routing\n${hubName}\n${name}\n${encoding}`).digest().subarray(0, 16);
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
    this.pendingBytes += (record.body.length * 3) / 4;
    if (this.pendingBytes >= this.settings.maxChunkSizeInBytes) void this.flush();
  }

  /** Writes what is waiting to blobs; one write at a time. A failure is logged, and the records wait for the next batch. */
  flush(): Promise<void> {
    this.flushing ??= this.writeBatches(Infinity).finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /** Stops the timer and writes one batch of what waits (the rest waits in the store for the next start). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flushing;
    await this.writeBatches(1);
  }

  private async writeBatches(most: number): Promise<void> {
    try {
      this.pendingBytes = 0;
      this.dropped(this.queue.expire(this.now()), 'out of time');
      for (let written = 0, batch = this.batch(); written < most && batch.length > 0; written++, batch = this.batch()) {
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
          const blobName = await this.write(
            this.blobName(partition),
            queued.map((q) => q.record),
          );
          // What the bound dropped meanwhile is not removed twice: the count follows the rows deleted.
          this.waiting -= this.queue.remove(queued.map((q) => q.seq));
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

  /** The oldest waiting records, up to a batch's bounds. */
  private batch(): Array<QueuedRecord<StorageRecord>> {
    const oldest = this.queue.oldest(this.now(), BATCH_RECORDS);
    let bytes = 0;
    const end = oldest.findIndex((q, i) => (bytes += (q.record.body.length * 3) / 4) > BATCH_BYTES && i > 0);
    return end < 0 ? oldest : oldest.slice(0, end);
  }

  /** Says (at most once a minute) that records the storage account never took were dropped. */
  private dropped(count: number, why: string): void {
    if (count === 0) return;
    this.waiting -= count;
    this.droppedUnsaid += count;
    if (this.now() - this.lastDropWarning < DROP_WARNING_MS) return;
    this.log.warn(
      'routing',
      `storage endpoint '${this.settings.name}' dropped its ${this.droppedUnsaid} oldest message(s), ${why} for a storage account that does not take them`,
    );
    this.droppedUnsaid = 0;
    this.lastDropWarning = this.now();
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
   * Writes a batch as a block of a block blob (Put Block, then Put Block List): a new blob, or one more
   * block of this minute's blob when it exists (the same Avro header and sync marker, or more lines of
   * JSON), without reading the blob back. A blob of that name another encoding wrote is left alone: the
   * batch goes to `<name>.<encoding>`. Returns the blob's name.
   */
  private async write(name: string, records: StorageRecord[]): Promise<string> {
    const container = this.settings.containerName;
    const { encoding } = this.settings;
    let blobName = name;
    let committed = await this.committedBlocks(blobName);
    if (committed && committed.encoding !== encoding) {
      blobName = `${name}.${encoding}`;
      committed = await this.committedBlocks(blobName);
    }
    const url = this.account.url(container, blobName);
    const sas = await this.account.blobSas(container, blobName, 'rcw', this.now() + 5 * 60 * 1000, false);
    const blockId = randomBytes(24).toString('base64'); // every block id of a blob has the same length
    const block = await this.account.request(
      'PUT',
      `${url}?comp=block&blockid=${encodeURIComponent(blockId)}&${sas}`,
      {},
      this.encode(records, !committed),
    );
    if (block.status !== 201) throw new Error(`the storage account answered ${block.status} to a block of ${blobName}`);
    const list = [...(committed?.blocks ?? []).map((id) => `<Committed>${id}</Committed>`), `<Latest>${blockId}</Latest>`];
    const body = Buffer.from(`<?xml version="1.0" encoding="utf-8"?><BlockList>${list.join('')}</BlockList>`);
    const headers = { 'x-ms-blob-content-type': encoding === 'json' ? 'application/json' : 'avro/binary', 'x-ms-meta-encoding': encoding };
    const put = await this.account.request('PUT', `${url}?comp=blocklist&${sas}`, headers, body);
    if (put.status !== 201) throw new Error(`the storage account answered ${put.status} to committing ${blobName}`);
    return blobName;
  }

  /** A blob's committed block ids and the encoding that wrote it, or undefined when there is no such blob. */
  private async committedBlocks(blobName: string): Promise<{ blocks: string[]; encoding: string } | undefined> {
    const container = this.settings.containerName;
    const url = this.account.url(container, blobName);
    const sas = await this.account.blobSas(container, blobName, 'r', this.now() + 5 * 60 * 1000, false);
    const head = await this.account.request('HEAD', `${url}?${sas}`);
    if (head.status === 404) return undefined;
    if (head.status !== 200) throw new Error(`the storage account answered ${head.status} to reading ${blobName}`);
    const list = await this.account.request('GET', `${url}?comp=blocklist&blocklisttype=committed&${sas}`);
    if (list.status !== 200) throw new Error(`the storage account answered ${list.status} to listing the blocks of ${blobName}`);
    const blocks = [...list.body.toString('utf8').matchAll(/<Name>([^<]*)<\/Name>/g)].map((m) => m[1]!);
    return { blocks, encoding: String(head.headers['x-ms-meta-encoding'] ?? '') };
  }

  /** The records in the endpoint's encoding: a whole blob's first block, or a later one. */
  private encode(records: StorageRecord[], first: boolean): Buffer {
    if (this.settings.encoding === 'json') return Buffer.from(records.map(jsonLine).join(''));
    const codec: AvroCodec = this.settings.encoding === 'avrodeflate' ? 'deflate' : 'null';
    const messages = records.map((r) => ({
      EnqueuedTimeUtc: r.enqueuedTimeUtc,
      Properties: r.properties,
      SystemProperties: r.systemProperties,
      Body: Buffer.from(r.body, 'base64'),
    }));
    return first ? avroFile(messages, codec, this.sync) : avroBlock(messages, codec, this.sync);
  }
}

/**
 * A record as IoT Hub writes it with JSON encoding, one line: a JSON body as the device sent it (its
 * line breaks, which JSON allows only as whitespace, made spaces), any other as base64.
 */
function jsonLine(record: StorageRecord): string {
  let body = JSON.stringify(record.body);
  if (record.jsonBody) {
    const text = Buffer.from(record.body, 'base64').toString('utf8');
    if (isJson(text)) body = text.replace(/[\r\n]/g, ' ');
  }
  const { enqueuedTimeUtc, properties, systemProperties } = record;
  return `{"EnqueuedTimeUtc":${JSON.stringify(enqueuedTimeUtc)},"Properties":${JSON.stringify(properties)},"SystemProperties":${JSON.stringify(systemProperties)},"Body":${body}}\n`;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false; // not JSON after all (or nested past what the parser takes): base64, as IoT Hub writes a body it cannot read
  }
}
