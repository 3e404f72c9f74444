import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hubErrors } from '../errors.js';
import { BlobAccount } from '../storage/blob-account.js';
import type { HubLog } from '../log.js';
import type { QueuedRecord, RecordQueue } from '../store/record-queue.js';
import type { StorageAccount } from '../storage/storage-account.js';

// IoT Hub's file upload ("Upload files with IoT Hub"): a device asks for a SAS URI to a blob named
// {deviceId}/{blobName} in the hub's container, uploads it to the storage account itself, then tells
// the hub how it went; a success becomes a file upload notification for the service's
// /messages/serviceBound/filenotifications link.

/** IoT Hub's defaults: a SAS URI is good for an hour; a notification waits an hour for a receiver. */
export const DEFAULT_SAS_TTL_MS = 60 * 60 * 1000;
const NOTIFICATION_TTL_MS = 60 * 60 * 1000;
/** "Each device can only have 10 concurrent active file uploads at a time." */
const MAX_ACTIVE_UPLOADS = 10;
/** Azure Storage's limit for a blob name. */
const MAX_BLOB_NAME = 1024;

export interface FileUploadSettings {
  storage: StorageAccount;
  /** The blob container the uploads go to (created when missing). */
  container: string;
  /** How long a SAS URI lets a device write its blob. */
  sasTtlMs: number;
}

/** A file upload notification, as IoT Hub's body has it. */
export interface FileNotification {
  deviceId: string;
  blobUri: string;
  blobName: string;
  lastUpdatedTime?: string;
  blobSizeInBytes?: number;
  enqueuedTimeUtc: string;
}

/** What a correlation id carries, signed: whose upload, of which blob, until when its SAS holds. */
interface Upload {
  deviceId: string;
  blobName: string;
  expiresMs: number;
}

export class FileUploads extends EventEmitter<{ notification: [] }> {
  /** The uploads each device has begun and not completed, by correlation id, with their SAS expiry. */
  private readonly active = new Map<string, Map<string, number>>();
  /** The uploads completed since the hub started, by correlation id, until their SAS expires: a second completion is refused. */
  private readonly completed = new Map<string, number>();
  private readonly signingKey: Buffer;
  private readonly account: BlobAccount;
  private containerReady?: Promise<void>;

  constructor(
    readonly settings: FileUploadSettings,
    private readonly queue: RecordQueue<FileNotification>,
    hubCa: string,
    private readonly log: HubLog,
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.signingKey = Buffer.from(settings.storage.accountKey, 'base64');
    this.account = new BlobAccount(settings.storage, hubCa, now);
  }

  /** POST /devices/{id}/files: a SAS URI for `{deviceId}/{blobName}` and the correlation id that completes it. */
  async begin(deviceId: string, body: Buffer): Promise<Record<string, string>> {
    const requested = parseJsonObject(body, 'a file upload request');
    const name = requested['blobName'];
    if (typeof name !== 'string' || name.length === 0) throw hubErrors.argumentInvalid('The request needs a "blobName" string');
    const blobName = `${deviceId}/${name}`;
    if (blobName.length > MAX_BLOB_NAME) {
      throw hubErrors.argumentInvalid(
        `The blob name ${deviceId}/... is ${blobName.length} characters; Azure Storage allows ${MAX_BLOB_NAME}`,
      );
    }
    const nowMs = this.now();
    const active = this.activeUploads(deviceId, nowMs);
    if (active.size >= MAX_ACTIVE_UPLOADS) {
      throw hubErrors.activeFileUploadLimit(
        `Device ${deviceId} has ${MAX_ACTIVE_UPLOADS} file uploads in progress, IoT Hub's limit; complete one (POST /devices/${deviceId}/files/notifications) first.`,
      );
    }
    const upload: Upload = { deviceId, blobName, expiresMs: nowMs + this.settings.sasTtlMs };
    const correlationId = this.sign(upload);
    // Counted before the awaits below, so that requests at the same time cannot pass the limit together.
    active.set(correlationId, upload.expiresMs);
    let sasToken: string;
    try {
      await this.ensureContainer();
      sasToken = await this.sas(blobName, 'rw', upload.expiresMs);
    } catch (err) {
      active.delete(correlationId);
      throw err;
    }
    this.log.info('rest', `device ${deviceId} begins a file upload to ${this.settings.container}/${blobName}`);
    return {
      correlationId,
      hostName: this.settings.storage.hostName,
      containerName: this.settings.container,
      blobName,
      sasToken: `?${sasToken}`,
    };
  }

  /**
   * POST /devices/{id}/files/notifications[/{correlationId}]: the device says how its upload went
   * (azure-iot-device puts the correlation id in the path, the other SDKs in the body). A success
   * becomes a notification, with the blob's size and time as the storage account has them.
   */
  async complete(deviceId: string, body: Buffer, pathCorrelationId?: string): Promise<void> {
    const status = parseJsonObject(body, 'a file upload status');
    const correlationId = status['correlationId'] ?? pathCorrelationId;
    if (typeof correlationId !== 'string' || !correlationId) throw hubErrors.argumentInvalid('The status needs a "correlationId" string');
    if (typeof status['isSuccess'] !== 'boolean') throw hubErrors.argumentInvalid('The status needs "isSuccess": true or false');
    const upload = this.verify(correlationId, deviceId);
    if (this.completed.has(correlationId)) {
      throw hubErrors.argumentInvalid(`Device ${deviceId} has completed the file upload of ${upload.blobName} already`);
    }
    this.active.get(deviceId)?.delete(correlationId);
    this.completed.set(correlationId, upload.expiresMs);
    const detail = [status['statusCode'], status['statusDescription']].filter((v) => v !== undefined && v !== '').join(' ');
    const outcome = `${status['isSuccess'] ? 'succeeded' : 'failed'}${detail ? ` (${detail})` : ''}`;
    this.log.info('rest', `device ${deviceId}'s file upload to ${this.settings.container}/${upload.blobName} ${outcome}`);
    if (!status['isSuccess']) return;
    const properties = await this.blobProperties(upload.blobName);
    const nowMs = this.now();
    const notification: FileNotification = {
      deviceId,
      blobUri: `https://${this.settings.storage.hostName}/${this.settings.container}/${upload.blobName}`,
      blobName: upload.blobName,
      ...properties,
      enqueuedTimeUtc: new Date(nowMs).toISOString(),
    };
    this.queue.expire(nowMs);
    this.queue.add(notification, nowMs, nowMs + NOTIFICATION_TTL_MS);
    this.emit('notification');
  }

  /** The oldest notifications waiting for a receiver, at most `limit`. */
  notifications(limit: number): Array<QueuedRecord<FileNotification>> {
    return this.queue.oldest(this.now(), limit);
  }

  /** Notifications the service settled: gone. */
  settle(seqs: number[]): void {
    this.queue.remove(seqs);
  }

  private activeUploads(deviceId: string, nowMs: number): Map<string, number> {
    for (const [id, expiresMs] of this.completed) if (expiresMs <= nowMs) this.completed.delete(id);
    let active = this.active.get(deviceId);
    if (!active) this.active.set(deviceId, (active = new Map()));
    // An upload whose SAS has expired cannot write any more: it no longer counts.
    for (const [id, expiresMs] of active) if (expiresMs <= nowMs) active.delete(id);
    return active;
  }

  /**
   * A correlation id carries its upload, signed with the storage account's key: a device completes
   * its upload after a restart of the hub, and cannot complete another device's.
   */
  private sign(upload: Upload): string {
    const payload = Buffer.from(JSON.stringify({ ...upload, nonce: randomBytes(6).toString('base64url') })).toString('base64url');
    return `${payload}.${this.mac(payload).toString('base64url')}`;
  }

  private verify(correlationId: string, deviceId: string): Upload {
    const refused = () => hubErrors.argumentInvalid(`The correlation id is not one this hub gave device ${deviceId} for a file upload`);
    const [payload, mac, extra] = correlationId.split('.');
    if (!payload || !mac || extra !== undefined) throw refused();
    const given = Buffer.from(mac, 'base64url');
    const expected = this.mac(payload);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw refused();
    const upload = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Upload;
    if (upload.deviceId !== deviceId) throw refused();
    return upload;
  }

  private mac(payload: string): Buffer {
    return createHmac('sha256', this.signingKey).update(`iothub-tut file upload\n${payload}`).digest();
  }

  /** A service SAS for one blob of the container (IoT Hub's: read and write, https only). */
  private sas(blobName: string, permissions: string, expiresMs: number): Promise<string> {
    return this.account.blobSas(this.settings.container, blobName, permissions, expiresMs);
  }

  /**
   * Creates the container once, when the first upload begins, if the account does not have it (IoT
   * Hub leaves that to its user; a fresh Azurite has none). A failure is logged and retried at the
   * next upload: the device's own upload then fails with the storage account's answer.
   */
  private ensureContainer(): Promise<void> {
    return (this.containerReady ??= this.account.ensureContainer(this.settings.container).catch((err: Error) => {
      this.containerReady = undefined;
      this.log.warn(
        'rest',
        `could not create the file upload container ${this.settings.container} at ${this.settings.storage.blobEndpoint}: ${err.message}`,
      );
    }));
  }

  /** The blob's size and last-modified time (a HEAD with a read SAS); none when the storage account cannot say. */
  private async blobProperties(blobName: string): Promise<Pick<FileNotification, 'lastUpdatedTime' | 'blobSizeInBytes'>> {
    try {
      const sas = await this.sas(blobName, 'r', this.now() + 5 * 60 * 1000);
      const { status, headers } = await this.account.request('HEAD', `${this.account.url(this.settings.container, blobName)}?${sas}`);
      if (status !== 200) throw new Error(`the storage account answered ${status}`);
      const modified = headers['last-modified'];
      return {
        ...(modified ? { lastUpdatedTime: new Date(modified).toISOString() } : {}),
        blobSizeInBytes: Number(headers['content-length'] ?? 0),
      };
    } catch (err) {
      this.log.warn(
        'rest',
        `could not read ${this.settings.container}/${blobName}'s size and time for its notification: ${(err as Error).message}`,
      );
      return {};
    }
  }
}

function parseJsonObject(body: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw hubErrors.argumentInvalid(`The body of ${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw hubErrors.argumentInvalid(`The body of ${what} must be a JSON object`);
  return value as Record<string, unknown>;
}
