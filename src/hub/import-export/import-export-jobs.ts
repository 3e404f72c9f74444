import { randomUUID } from 'node:crypto';
import { hubErrors, HubError } from '../errors.js';
import type { HubLog } from '../log.js';
import type { Registry } from '../registry/registry.js';
import type { ImportExportJobStore } from '../store/import-export-job-store.js';
import type { TwinIdentity } from '../twins/document.js';
import { isJsonObject } from '../twins/json.js';
import type { Twins } from '../twins/twin-service.js';
import type { IdentityRecord } from '../store/identity-store.js';
import { BlobContainer, checkContainerUri, describeStorageError } from './blob-container.js';
import { exportLine, importLine } from './device-lines.js';

export type ImportExportJobStatus = 'enqueued' | 'running' | 'completed' | 'failed' | 'cancelled';

/** A job as IoT Hub's JobProperties shows it. */
export interface ImportExportJob {
  jobId: string;
  type: 'export' | 'import';
  status: ImportExportJobStatus;
  progress: number;
  startTimeUtc: string;
  endTimeUtc?: string;
  inputBlobContainerUri?: string;
  inputBlobName?: string;
  outputBlobContainerUri: string;
  outputBlobName?: string;
  excludeKeysInExport: boolean;
  storageAuthenticationType: 'keyBased';
  failureReason?: string;
}

const EXPORT_BLOB = 'devices.txt';
const IMPORT_ERRORS_BLOB = 'importErrors.log';
/** IoT Hub's limit on the identities one import file may hold. */
const MAX_IMPORT_LINES = 1_000_000;
/** Lines applied between two yields to the event loop (and two progress writes): live traffic goes on during a job. */
const BATCH = 100;

const STOPPED = 'The hub stopped before the job ended; create the job again.';

const ended = (status: ImportExportJobStatus) => status === 'completed' || status === 'failed' || status === 'cancelled';

/**
 * Import and export of the identity registry through blob storage (POST /jobs/create), as IoT Hub
 * runs them: one job at a time, the others enqueued; export writes devices.txt (one identity per
 * line, keys unless excludeKeysInExport, with its twin); import reads devices.txt (or inputBlobName),
 * applies each line with its importMode and writes importErrors.log (empty when every line applied).
 * A job that meets errors in some lines still applies the others, then ends 'failed' with
 * ImportWarningExistsError. Jobs are kept in the store; one the hub stopped in ends 'failed'.
 */
export class ImportExportJobs {
  private queue: Promise<void> = Promise.resolve();
  private readonly stopping = new AbortController();
  private readonly cancelled = new Set<string>();

  constructor(
    private readonly store: ImportExportJobStore,
    private readonly registry: Registry,
    private readonly twins: Twins,
    private readonly identityOf: (record: IdentityRecord) => TwinIdentity,
    private readonly log: HubLog,
  ) {
    for (const job of store.all()) {
      if (!ended(job.status)) this.finish(job, 'failed', STOPPED);
    }
  }

  /** POST /jobs/create: validates the request, stores the job 'enqueued' and runs it after those before it. */
  create(body: unknown): ImportExportJob {
    if (!isJsonObject(body))
      throw hubErrors.argumentInvalid('The body must be a job: {"type": "export" | "import", "outputBlobContainerUri": ...}');
    const type = typeof body.type === 'string' ? body.type.toLowerCase() : body.type;
    if (type !== 'export' && type !== 'import')
      throw hubErrors.argumentInvalid(`type must be 'export' or 'import', not ${JSON.stringify(body.type)}`);
    const authentication = typeof body.storageAuthenticationType === 'string' ? body.storageAuthenticationType.toLowerCase() : 'keybased';
    if (authentication !== 'keybased') {
      throw hubErrors.argumentInvalid(
        'The local hub has no managed identity: give a container URI with a SAS token (storageAuthenticationType keyBased)',
      );
    }
    if (body.includeConfigurations === true)
      throw hubErrors.argumentInvalid('The local hub does not export or import configurations (includeConfigurations)');
    const blobName = (name: string): string | undefined => {
      const value = body[name];
      if (value === undefined || value === null) return undefined;
      if (typeof value !== 'string' || !value || value.length > 1024) throw hubErrors.argumentInvalid(`${name} must be a blob name`);
      return value;
    };
    const job: ImportExportJob = {
      jobId: randomUUID(),
      type,
      status: 'enqueued',
      progress: 0,
      startTimeUtc: new Date().toISOString(),
      ...(type === 'import'
        ? {
            inputBlobContainerUri: checkContainerUri(body.inputBlobContainerUri, 'inputBlobContainerUri'),
            inputBlobName: blobName('inputBlobName'),
          }
        : {}),
      outputBlobContainerUri: checkContainerUri(body.outputBlobContainerUri, 'outputBlobContainerUri'),
      outputBlobName: blobName('outputBlobName'),
      excludeKeysInExport: body.excludeKeysInExport === true,
      storageAuthenticationType: 'keyBased',
    };
    this.store.insert(job);
    this.queue = this.queue
      .then(() => this.run(job.jobId))
      .catch((err: Error) => {
        this.log.error('hub', `${job.type} job ${job.jobId} failed unexpectedly: ${err?.stack ?? err}`);
      });
    return job;
  }

  get(jobId: string): ImportExportJob {
    return this.store.get(jobId) ?? notFound(jobId);
  }

  list(): ImportExportJob[] {
    return this.store.all();
  }

  /** DELETE /jobs/{id}: an enqueued or running job ends 'cancelled' (a running one after its current batch); an ended one stays as it is. */
  cancel(jobId: string): ImportExportJob {
    const job = this.get(jobId);
    if (ended(job.status)) return job;
    this.cancelled.add(jobId);
    return this.finish(job, 'cancelled');
  }

  /** Ends the running job at its next batch, and waits for it. */
  async close(): Promise<void> {
    this.stopping.abort();
    await this.queue;
  }

  private async run(jobId: string): Promise<void> {
    const job = this.store.get(jobId);
    if (!job || job.status !== 'enqueued' || this.stopping.signal.aborted) return;
    job.status = 'running';
    this.store.update(job);
    const output = new BlobContainer(job.outputBlobContainerUri, this.stopping.signal);
    let blob = job.outputBlobName ?? (job.type === 'export' ? EXPORT_BLOB : IMPORT_ERRORS_BLOB);
    let container = output;
    try {
      if (job.type === 'export') {
        await this.export(job, output, blob);
      } else {
        container = new BlobContainer(job.inputBlobContainerUri!, this.stopping.signal);
        blob = job.inputBlobName ?? EXPORT_BLOB;
        const text = await container.read(blob);
        container = output;
        blob = IMPORT_ERRORS_BLOB;
        await this.import(job, text, output);
      }
    } catch (err) {
      if (err instanceof Interrupted) return;
      if (this.stopping.signal.aborted) {
        this.finish(job, 'failed', STOPPED);
        return;
      }
      // A HubError is the job's own (a bad file); anything else came from the storage client.
      const reason = err instanceof HubError ? `${err.code}: ${err.message}` : describeStorageError(err, container, blob);
      this.log.info('hub', `${job.type} job ${job.jobId} failed: ${reason}`);
      this.finish(job, 'failed', reason);
    }
  }

  private async export(job: ImportExportJob, output: BlobContainer, blobName: string): Promise<void> {
    const devices = this.registry.listDevices(Number.MAX_SAFE_INTEGER);
    const lines: string[] = [];
    for (const [index, device] of devices.entries()) {
      for (const record of [device, ...this.registry.listModules(device.deviceId)]) {
        const key = record.moduleId ? { deviceId: record.deviceId, moduleId: record.moduleId } : { deviceId: record.deviceId };
        lines.push(exportLine(record, this.twins.toDocument(key, this.identityOf(record)), job.excludeKeysInExport));
      }
      if ((index + 1) % BATCH === 0) await this.checkpoint(job, (index + 1) / devices.length);
    }
    await output.write(blobName, lines.map((line) => `${line}\n`).join(''));
    this.finish(job, 'completed');
  }

  private async import(job: ImportExportJob, text: string, output: BlobContainer): Promise<void> {
    const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '');
    if (lines.length > MAX_IMPORT_LINES)
      throw hubErrors.argumentInvalid(`The import file has ${lines.length} lines; IoT Hub imports at most ${MAX_IMPORT_LINES} per job`);
    const errors: string[] = [];
    for (const [index, line] of lines.entries()) {
      try {
        importLine(this.registry, this.twins, line);
      } catch (err) {
        if (!(err instanceof HubError)) throw err;
        errors.push(JSON.stringify({ errorCode: err.errorCode, errorStatus: `${err.code}: ${err.message}` }));
      }
      if ((index + 1) % BATCH === 0) await this.checkpoint(job, (index + 1) / lines.length);
    }
    await output.write(IMPORT_ERRORS_BLOB, errors.map((line) => `${line}\n`).join(''));
    if (errors.length === 0) this.finish(job, 'completed');
    else
      this.finish(
        job,
        'failed',
        `ImportWarningExistsError: ${errors.length} of ${lines.length} lines were not imported; see ${IMPORT_ERRORS_BLOB} in the output container`,
      );
  }

  /** Records progress and yields to the event loop; a cancelled job or a stopping hub ends here. */
  private async checkpoint(job: ImportExportJob, done: number): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    if (this.cancelled.has(job.jobId)) throw new Interrupted();
    if (this.stopping.signal.aborted) {
      this.finish(job, 'failed', STOPPED);
      throw new Interrupted();
    }
    job.progress = Math.floor(done * 100);
    this.store.update(job);
  }

  private finish(job: ImportExportJob, status: ImportExportJobStatus, failureReason?: string): ImportExportJob {
    // A job cancelled while it ran keeps that state, however its last batch ends.
    if (this.cancelled.has(job.jobId) && status !== 'cancelled') return this.get(job.jobId);
    Object.assign(job, {
      status,
      endTimeUtc: new Date().toISOString(),
      ...(status === 'completed' ? { progress: 100 } : {}),
      ...(failureReason ? { failureReason } : {}),
    });
    this.store.update(job);
    return job;
  }
}

/** A job that ended while it ran (cancelled, or the hub stopping): its state is already recorded. */
class Interrupted extends Error {}

function notFound(jobId: string): never {
  throw hubErrors.jobNotFound(jobId);
}
