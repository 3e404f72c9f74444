import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createJobClient } from '../clients/service-clients.js';
import type { ServiceConnection } from '../clients/connection-string.js';
import { ExitCode, ToolkitError } from '../clients/errors.js';
import { explain } from '../clients/sdk-errors.js';
import { DEFAULT_RETRY, withRetry } from '../clients/retry.js';

/** The "Schedule and broadcast jobs" tutorial's condition for every device: each twin has a deviceId. */
export const ALL_DEVICES = 'IS_DEFINED(deviceId)';

/** A direct method or a desired-properties update, on the devices a condition selects. */
export interface ScheduleJobOptions {
  /** Default: a new UUID, as the tutorial's service makes one. */
  jobId?: string;
  /** A WHERE condition in IoT Hub's query language; default: every device. */
  queryCondition?: string;
  method?: { methodName: string; payload?: unknown; responseTimeoutInSeconds?: number };
  /** Desired properties to merge into every selected twin. */
  desired?: Record<string, unknown>;
  /** When the job starts; default: now. */
  startTime?: Date;
  /** IoT Hub's maxExecutionTimeInSeconds; default 3600. */
  maxExecutionTimeInSeconds?: number;
}

/** A job as IoT Hub reports it (JobClient.getJob). */
export interface JobStatus {
  jobId: string;
  type: string;
  status: 'queued' | 'scheduled' | 'running' | 'completed' | 'failed' | 'cancelled';
  queryCondition: string;
  startTime: string;
  endTime?: string;
  failureReason?: string;
  deviceJobStatistics?: { deviceCount: number; failedCount: number; succeededCount: number; runningCount: number; pendingCount: number };
}

export const ENDED: ReadonlyArray<JobStatus['status']> = ['completed', 'failed', 'cancelled'];

/**
 * Schedules a job as the tutorial's service does (azure-iothub's JobClient: scheduleDeviceMethod or
 * scheduleTwinUpdate) and returns it as the hub accepted it. The call is not retried: a schedule the
 * hub took and answered too late would be refused as a duplicate the second time.
 */
export async function scheduleJob(connection: ServiceConnection, options: ScheduleJobOptions): Promise<JobStatus> {
  const jobId = options.jobId ?? randomUUID();
  const condition = options.queryCondition ?? ALL_DEVICES;
  const start = options.startTime ?? new Date();
  const seconds = options.maxExecutionTimeInSeconds ?? 3600;
  const jobs = createJobClient(connection);
  const what = `scheduling job '${jobId}'`;
  try {
    const { jobStatus } = options.method
      ? await jobs.scheduleDeviceMethod(jobId, condition, options.method, start, seconds)
      : await jobs.scheduleTwinUpdate(jobId, condition, { etag: '*', properties: { desired: options.desired ?? {} } }, start, seconds);
    return jobStatus as JobStatus;
  } catch (err) {
    throw jobError(err, what);
  }
}

export interface WatchJobOptions {
  /** Seconds to wait for the job to end; then exit 5 (timeout), the job left running. */
  timeoutSeconds: number;
  /** Between two reads of the job. */
  intervalMs?: number;
  signal?: AbortSignal;
  /** Each read of the job whose status or counts changed. */
  onProgress?: (job: JobStatus) => void;
}

/** Reads the job (JobClient.getJob) until it has ended, as the tutorial's monitorJob does, within the timeout. */
export async function watchJob(connection: ServiceConnection, jobId: string, options: WatchJobOptions): Promise<JobStatus> {
  const jobs = createJobClient(connection);
  const what = `reading job '${jobId}'`;
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  let last = '';
  for (;;) {
    let job: JobStatus;
    try {
      job = (await withRetry(() => jobs.getJob(jobId), { ...DEFAULT_RETRY, what })).jobStatus as JobStatus;
    } catch (err) {
      throw jobError(err, what);
    }
    const seen = JSON.stringify([job.status, job.deviceJobStatistics]);
    if (seen !== last) options.onProgress?.(job);
    last = seen;
    if (ENDED.includes(job.status)) return job;
    if (options.signal?.aborted) return job;
    if (Date.now() >= deadline) {
      throw new ToolkitError(
        `timed out after ${options.timeoutSeconds} s: job '${jobId}' is still ${job.status}; it goes on in the hub (see it with 'query "SELECT * FROM devices.jobs WHERE jobId = '${jobId}'"')`,
        ExitCode.timeout,
      );
    }
    // Ctrl-C ends the wait early (the abort rejects the sleep); the loop then returns the job as last read.
    await sleep(Math.min(options.intervalMs ?? 1000, Math.max(0, deadline - Date.now())), undefined, { signal: options.signal }).catch(
      () => undefined,
    );
  }
}

function jobError(err: unknown, what: string): ToolkitError {
  const body = (err as { responseBody?: unknown })?.responseBody;
  const code = typeof body === 'string' ? /ErrorCode:(\w+)/.exec(body)?.[1] : undefined;
  if (code === 'ThrottlingMaxActiveJobCountExceeded') {
    return new ToolkitError(
      `${what}: the hub already has as many active jobs as its tier allows (429004 ThrottlingMaxActiveJobCountExceeded); wait for one to end, or cancel one.`,
      ExitCode.unavailable,
    );
  }
  if (code === 'JobAlreadyExists')
    return new ToolkitError(`${what}: a job with this id exists already (409); pick another --job-id.`, ExitCode.conflict);
  if (code === 'JobNotFound') return new ToolkitError(`${what}: no such job (404002 JobNotFound).`, ExitCode.notFound);
  return explain(err, what);
}
