import { HubError, hubErrors } from '../errors.js';
import type { HubLog } from '../log.js';
import type { Tier } from '../throttling.js';
import type { MethodInvocation, MethodResult } from '../methods/direct-methods.js';
import { checkPageSize, decodeContinuation, encodeContinuation } from '../query/paging.js';
import type { DeviceJobRecord, DeviceJobStatistics, JobRecord, JobStatus, JobStore } from '../store/job-store.js';
import { checkJobId, compileCondition, parseJob } from './job-input.js';
import { MethodSlots } from './method-slots.js';

/** What a job does to the hub's devices: the same paths as single calls, so devices see the same. */
export interface JobActions {
  /** The ids of the device twins the filter selects, in a stable order. */
  select(filter: (twin: unknown) => boolean): string[];
  invokeMethod(deviceId: string, invocation: MethodInvocation): Promise<MethodResult>;
  /** A service twin patch (tags, desired), as PATCH /twins/{id} applies it. */
  updateTwin(deviceId: string, patch: unknown): void;
}

/**
 * IoT Hub's concurrent-job limit of a tier ("IoT Hub quotas and throttling": 1 for S1, 5 for S2, 10
 * for S3). Without a tier the hub applies its own bound, so that the store's active jobs stay few.
 */
export function activeJobLimit(tier: Tier | undefined): number {
  return tier ? { s1: 1, s2: 5, s3: 10 }[tier] : 100;
}

export interface ScheduledJobsOptions {
  /** Jobs that may be queued, scheduled or running at once (IoT Hub: 1 for S1, 5 for S2, 10 for S3). */
  maxActiveJobs: number;
  now?: () => Date;
}

/** A job as GET /jobs/v2/{id} returns it. */
export type JobResponse = JobRecord & { deviceJobStatistics: DeviceJobStatistics };

const ACTIVE: readonly JobStatus[] = ['queued', 'scheduled', 'running'];
/** Device rows read at a time by a running job. */
const BATCH = 64;
/** Each job works for at most this long per turn of the event loop, then lets I/O (live traffic) in. */
const TURN_BUDGET_MS = 2;
/** Method calls in flight over all jobs: a job of 10,000 devices does not open 10,000 calls at once. */
const METHODS_IN_FLIGHT = 16;
/** setTimeout's longest delay; a later start re-arms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Scheduled jobs (IoT Hub's /jobs/v2): a direct method or a twin update on every device that a
 * query condition selects, from a start time, within a maximum execution time. Jobs and their
 * per-device rows live in the store; the hub's own timers start them, and a restarted hub picks up
 * where the last one stopped (a device whose call was in flight is failed as interrupted, never
 * called twice). The work shares the event loop: a turn's budget per job, a bound on method calls
 * in flight, and twin writes through the twin service as for single calls.
 */
export class ScheduledJobs {
  private readonly now: () => Date;
  private readonly timers = new Map<string, NodeJS.Timeout[]>();
  /** Running jobs' device calls in flight. */
  private readonly inFlight = new Map<string, number>();
  private readonly working = new Set<string>();
  private readonly slots = new MethodSlots(METHODS_IN_FLIGHT);
  private closed = false;

  constructor(
    private readonly store: JobStore,
    private readonly actions: JobActions,
    private readonly log: HubLog,
    private readonly options: ScheduledJobsOptions,
  ) {
    this.now = options.now ?? (() => new Date());
  }

  /** Resumes the jobs a previous run of the hub left queued, scheduled or running. */
  resume(): void {
    for (const job of this.store.withStatus('running')) {
      const interrupted = this.store.devices(job.jobId, 'running', Number.MAX_SAFE_INTEGER);
      for (const row of interrupted) {
        this.finishDevice(row, 'failed', {
          error: { code: 'JobInterrupted', description: "The hub stopped while this device's call was in flight; it was not repeated" },
        });
      }
      if (interrupted.length > 0)
        this.log.info(
          'jobs',
          `job ${job.jobId}: ${interrupted.length} device call(s) in flight when the hub stopped were failed as interrupted`,
        );
    }
    for (const status of ACTIVE) for (const job of this.store.withStatus(status)) this.arm(job);
  }

  schedule(jobId: string, body: unknown): JobResponse {
    const job = parseJob(jobId, body, this.now());
    this.store.transaction(() => {
      if (this.store.get(jobId)) throw hubErrors.jobAlreadyExists(jobId);
      if (this.store.activeCount() >= this.options.maxActiveJobs) {
        throw hubErrors.tooManyActiveJobs(
          `At most ${this.options.maxActiveJobs} job(s) may be queued, scheduled or running at once; wait for one to end`,
        );
      }
      this.store.insert(job);
    });
    this.log.info('jobs', `job ${jobId} (${job.type}) queued to start at ${job.startTime}`);
    this.arm(job);
    return this.response(job);
  }

  get(jobId: string): JobResponse {
    return this.response(this.record(jobId));
  }

  /** Cancels a job that has not ended; its devices not reached are cancelled. A job that ended is returned as it is. */
  cancel(jobId: string): JobResponse {
    const job = this.record(jobId);
    if (!ACTIVE.includes(job.status)) return this.response(job);
    this.end(job, 'cancelled', 'cancelled', {
      error: { code: 'JobCancelled', description: "The job was cancelled before this device's turn" },
    });
    this.log.info('jobs', `job ${jobId} cancelled`);
    return this.get(jobId);
  }

  /** GET /jobs/v2/query: jobs, oldest first, of a type and a status when given, a page at a time. */
  query(filter: { jobType?: string; jobStatus?: string }, pageSize: number | undefined, continuation: string | undefined) {
    const size = checkPageSize(pageSize);
    // The token is bound to the filter, as a twin query's is to its text.
    const key = `jobs?type=${filter.jobType ?? ''}&status=${filter.jobStatus ?? ''}`;
    const offset = decodeContinuation(key, continuation);
    const items: JobResponse[] = [];
    let index = 0;
    let more = false;
    for (const job of this.store.all()) {
      if (filter.jobType && job.type !== filter.jobType) continue;
      if (filter.jobStatus && job.status !== filter.jobStatus) continue;
      if (index >= offset + size) {
        more = true;
        break;
      }
      if (index >= offset) items.push(this.response(job));
      index++;
    }
    return { items, continuationToken: more ? encodeContinuation(key, offset + size) : undefined };
  }

  /** Every device's part of every job: the query language's devices.jobs. */
  deviceJobs(): Iterable<DeviceJobRecord> {
    return this.store.allDevices();
  }

  /** Stops the timers; calls still in flight are left running in the store, for the next start to end. */
  close(): void {
    this.closed = true;
    for (const timers of this.timers.values()) timers.forEach(clearTimeout);
    this.timers.clear();
  }

  private record(jobId: string): JobRecord {
    checkJobId(jobId);
    return this.store.get(jobId) ?? throwNotFound(jobId);
  }

  private response(job: JobRecord): JobResponse {
    return { ...job, deviceJobStatistics: this.store.statistics(job.jobId) };
  }

  /** Sets the job's timers: its start (now, or at startTime) and its end (startTime + maxExecutionTimeInSeconds). */
  private arm(job: JobRecord): void {
    const start = Date.parse(job.startTime);
    const deadline = start + job.maxExecutionTimeInSeconds * 1000;
    this.at(job.jobId, deadline, () => this.expire(job.jobId));
    if (job.status === 'running') {
      void this.work(job.jobId);
    } else if (start > this.now().getTime()) {
      if (job.status === 'queued') this.store.update({ ...job, status: 'scheduled' });
      this.at(job.jobId, start, () => this.begin(job.jobId));
    } else {
      setImmediate(() => this.begin(job.jobId));
    }
  }

  private at(jobId: string, time: number, fire: () => void): void {
    const wait = time - this.now().getTime();
    const timer = setTimeout(() => (wait > MAX_TIMER_MS ? this.at(jobId, time, fire) : fire()), Math.max(0, Math.min(wait, MAX_TIMER_MS)));
    timer.unref();
    this.timers.set(jobId, [...(this.timers.get(jobId) ?? []), timer]);
  }

  /** Start time: the query selects the devices, each gets a pending row, and the work begins. */
  private begin(jobId: string): void {
    if (this.closed) return;
    const job = this.store.get(jobId);
    if (!job || (job.status !== 'queued' && job.status !== 'scheduled')) return;
    try {
      const deviceIds = this.actions.select(compileCondition(job.queryCondition));
      const created = this.now().toISOString();
      const endTimeUtc = new Date(Date.parse(job.startTime) + job.maxExecutionTimeInSeconds * 1000).toISOString();
      this.store.transaction(() => {
        this.store.addDevices(
          deviceIds.map((deviceId) => ({
            deviceId,
            jobId,
            jobType: job.type,
            status: 'pending',
            startTimeUtc: job.startTime,
            endTimeUtc,
            createdDateTimeUtc: created,
            lastUpdatedDateTimeUtc: created,
            outcome: { deviceMethodResponse: null },
          })),
        );
        this.store.update({ ...job, status: 'running' });
      });
      this.log.info('jobs', `job ${jobId} running on ${deviceIds.length} device(s)`);
    } catch (err) {
      this.log.error('jobs', `job ${jobId} could not start: ${(err as Error).stack ?? err}`);
      this.store.update({
        ...job,
        status: 'failed',
        endTime: this.now().toISOString(),
        failureReason: `The job could not start: ${(err as Error).message}`,
      });
      return;
    }
    void this.work(jobId);
  }

  /** Works through the job's pending devices, a turn's budget at a time, until none is left. */
  private async work(jobId: string): Promise<void> {
    if (this.working.has(jobId)) return;
    this.working.add(jobId);
    try {
      let turnStart = performance.now();
      for (;;) {
        const job = this.store.get(jobId);
        if (this.closed || job?.status !== 'running') return;
        const rows = this.store.devices(jobId, 'pending', BATCH);
        if (rows.length === 0) break;
        for (const row of rows) {
          if (performance.now() - turnStart >= TURN_BUDGET_MS) {
            await new Promise((resolve) => setImmediate(resolve));
            turnStart = performance.now();
          }
          if (this.closed || this.store.get(jobId)?.status !== 'running') return;
          if (job.type === 'scheduleUpdateTwin') this.updateTwin(job, row);
          else {
            await this.slots.acquire();
            turnStart = performance.now();
            if (this.closed || this.store.get(jobId)?.status !== 'running') {
              this.slots.release();
              return;
            }
            void this.invokeMethod(job, row);
          }
        }
      }
      this.completeWhenIdle(jobId);
    } catch (err) {
      if (!this.closed) this.log.error('jobs', `job ${jobId} stopped on an unexpected error: ${(err as Error).stack ?? err}`);
    } finally {
      this.working.delete(jobId);
    }
  }

  private updateTwin(job: JobRecord, row: DeviceJobRecord): void {
    try {
      this.actions.updateTwin(row.deviceId, job.updateTwin);
      this.finishDevice(row, 'completed', {});
    } catch (err) {
      this.finishDevice(row, 'failed', { error: deviceError(err) });
    }
  }

  private async invokeMethod(job: JobRecord, row: DeviceJobRecord): Promise<void> {
    this.inFlight.set(job.jobId, (this.inFlight.get(job.jobId) ?? 0) + 1);
    const running = { ...row, status: 'running' as const, lastUpdatedDateTimeUtc: this.now().toISOString() };
    this.store.updateDevice(running);
    try {
      const result = await this.actions.invokeMethod(row.deviceId, job.cloudToDeviceMethod as unknown as MethodInvocation);
      if (!this.closed) this.finishDevice(running, 'completed', { outcome: { deviceMethodResponse: result } });
    } catch (err) {
      // Stopping hub: the row stays running, and the next start ends it as interrupted.
      if (!this.closed) this.finishDevice(running, 'failed', { error: deviceError(err) });
    } finally {
      this.slots.release();
      this.inFlight.set(job.jobId, this.inFlight.get(job.jobId)! - 1);
      if (!this.closed && !this.working.has(job.jobId)) this.completeWhenIdle(job.jobId);
    }
  }

  private finishDevice(row: DeviceJobRecord, status: 'completed' | 'failed' | 'cancelled', change: Partial<DeviceJobRecord>): void {
    this.store.updateDevice({ ...row, ...change, status, lastUpdatedDateTimeUtc: this.now().toISOString() });
  }

  /** A running job with no device left pending or in flight has completed (whatever each device's outcome). */
  private completeWhenIdle(jobId: string): void {
    if ((this.inFlight.get(jobId) ?? 0) > 0) return;
    const job = this.store.get(jobId);
    if (job?.status !== 'running' || this.store.devices(jobId, 'pending', 1).length > 0) return;
    this.inFlight.delete(jobId);
    this.clearTimers(jobId);
    this.store.update({ ...job, status: 'completed', endTime: this.now().toISOString() });
    const stats = this.store.statistics(jobId);
    this.log.info('jobs', `job ${jobId} completed: ${stats.succeededCount} succeeded, ${stats.failedCount} failed of ${stats.deviceCount}`);
  }

  /** maxExecutionTimeInSeconds passed: the job fails, and its devices not reached fail with it. */
  private expire(jobId: string): void {
    if (this.closed) return;
    const job = this.store.get(jobId);
    if (!job || !ACTIVE.includes(job.status)) return;
    const reason = `The job did not end within maxExecutionTimeInSeconds (${job.maxExecutionTimeInSeconds} s)`;
    this.end({ ...job, failureReason: reason }, 'failed', 'failed', {
      error: { code: 'JobExpired', description: `${reason} before this device's turn` },
    });
    this.log.info('jobs', `job ${jobId} failed: ${reason}`);
  }

  /** Ends a job that has not ended: its status and end time, and its pending devices, in one transaction. */
  private end(job: JobRecord, status: JobStatus, deviceStatus: 'failed' | 'cancelled', change: Partial<DeviceJobRecord>): void {
    this.clearTimers(job.jobId);
    this.store.transaction(() => {
      for (;;) {
        const rows = this.store.devices(job.jobId, 'pending', BATCH);
        if (rows.length === 0) break;
        for (const row of rows) this.finishDevice(row, deviceStatus, change);
      }
      this.store.update({ ...job, status, endTime: this.now().toISOString() });
    });
  }

  private clearTimers(jobId: string): void {
    this.timers.get(jobId)?.forEach(clearTimeout);
    this.timers.delete(jobId);
  }
}

function deviceError(err: unknown): { code: string; description: string } {
  return err instanceof HubError
    ? { code: err.code, description: err.message }
    : { code: 'ServerError', description: String((err as Error)?.message ?? err) };
}

function throwNotFound(jobId: string): never {
  throw hubErrors.jobNotFound(jobId);
}
