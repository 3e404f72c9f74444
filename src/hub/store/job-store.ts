import { withoutFsync, type Db } from './database.js';

/** A scheduled job's status, as IoT Hub names them. */
export type JobStatus = 'queued' | 'scheduled' | 'running' | 'completed' | 'failed' | 'cancelled';
/** One device's part of a job. */
export type DeviceJobStatus = 'pending' | 'scheduled' | 'running' | 'completed' | 'failed' | 'cancelled';
export type JobType = 'scheduleDeviceMethod' | 'scheduleUpdateTwin';

/** A scheduled job as stored: IoT Hub's JobResponse without the statistics, which are counted. */
export interface JobRecord {
  jobId: string;
  type: JobType;
  queryCondition: string;
  createdTime: string;
  startTime: string;
  endTime?: string;
  maxExecutionTimeInSeconds: number;
  cloudToDeviceMethod?: Record<string, unknown>;
  updateTwin?: Record<string, unknown>;
  status: JobStatus;
  failureReason?: string;
  statusMessage?: string;
}

/** A device's part of a job, with the fields `SELECT * FROM devices.jobs` returns on IoT Hub. */
export interface DeviceJobRecord {
  deviceId: string;
  jobId: string;
  jobType: JobType;
  status: DeviceJobStatus;
  startTimeUtc: string;
  endTimeUtc: string;
  createdDateTimeUtc: string;
  lastUpdatedDateTimeUtc: string;
  outcome: { deviceMethodResponse: { status: number; payload: unknown } | null };
  error?: { code: string; description: string };
}

export interface DeviceJobStatistics {
  deviceCount: number;
  failedCount: number;
  succeededCount: number;
  runningCount: number;
  pendingCount: number;
}

const PAGE_SIZE = 256;

/**
 * Scheduled jobs (/jobs/v2) and their per-device results. A job and its device rows are JSON
 * documents beside the columns the hub selects on; devices are kept in job order (`seq`) so that
 * queries page stably.
 */
export class JobStore {
  private readonly stmts;

  constructor(private readonly db: Db) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS jobs (
        job_id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL UNIQUE,
        status TEXT NOT NULL,
        doc TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS device_jobs (
        job_seq INTEGER NOT NULL REFERENCES jobs(seq) ON DELETE CASCADE,
        device_id TEXT NOT NULL,
        status TEXT NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (job_seq, device_id)
      ) WITHOUT ROWID;
    `);
    type Doc = { doc: string };
    this.stmts = {
      insert: db.prepare<[string, string, string]>(
        'INSERT INTO jobs (job_id, seq, status, doc) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs), ?, ?)',
      ),
      update: db.prepare<[string, string, string]>('UPDATE jobs SET status = ?, doc = ? WHERE job_id = ?'),
      get: db.prepare<[string], Doc>('SELECT doc FROM jobs WHERE job_id = ?'),
      page: db.prepare<[number, number], Doc & { seq: number }>('SELECT seq, doc FROM jobs WHERE seq > ? ORDER BY seq LIMIT ?'),
      withStatus: db.prepare<[string], Doc>('SELECT doc FROM jobs WHERE status = ? ORDER BY seq'),
      active: db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM jobs WHERE status IN ('queued', 'scheduled', 'running')"),
      insertDevice: db.prepare<[string, string, string, string]>(
        'INSERT OR IGNORE INTO device_jobs (job_seq, device_id, status, doc) VALUES ((SELECT seq FROM jobs WHERE job_id = ?), ?, ?, ?)',
      ),
      updateDevice: db.prepare<[string, string, string, string]>(
        'UPDATE device_jobs SET status = ?, doc = ? WHERE job_seq = (SELECT seq FROM jobs WHERE job_id = ?) AND device_id = ?',
      ),
      devicesWithStatus: db.prepare<[string, string, string, number], Doc & { device_id: string }>(
        `SELECT device_id, doc FROM device_jobs WHERE job_seq = (SELECT seq FROM jobs WHERE job_id = ?) AND status = ? AND device_id > ?
         ORDER BY device_id LIMIT ?`,
      ),
      counts: db.prepare<[string], { status: string; n: number }>(
        'SELECT status, COUNT(*) AS n FROM device_jobs WHERE job_seq = (SELECT seq FROM jobs WHERE job_id = ?) GROUP BY status',
      ),
      devicePage: db.prepare<[number, number, string, number], Doc & { job_seq: number; device_id: string }>(
        `SELECT job_seq, device_id, doc FROM device_jobs WHERE job_seq > ? OR (job_seq = ? AND device_id > ?)
         ORDER BY job_seq, device_id LIMIT ?`,
      ),
    };
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn);
  }

  insert(job: JobRecord): void {
    this.stmts.insert.run(job.jobId, job.status, JSON.stringify(job));
  }

  update(job: JobRecord): void {
    this.stmts.update.run(job.status, JSON.stringify(job), job.jobId);
  }

  get(jobId: string): JobRecord | undefined {
    const row = this.stmts.get.get(jobId);
    return row && JSON.parse(row.doc);
  }

  /** Every job, oldest first. */
  *all(): IterableIterator<JobRecord> {
    let after = 0;
    for (;;) {
      const rows = this.stmts.page.all(after, PAGE_SIZE);
      for (const row of rows) yield JSON.parse(row.doc);
      if (rows.length < PAGE_SIZE) return;
      after = rows[rows.length - 1]!.seq;
    }
  }

  withStatus(status: JobStatus): JobRecord[] {
    return this.stmts.withStatus.all(status).map((row) => JSON.parse(row.doc));
  }

  /** Jobs that are queued, scheduled or running: what IoT Hub's concurrent-job limit counts. */
  activeCount(): number {
    return this.stmts.active.get()!.n;
  }

  addDevices(rows: DeviceJobRecord[]): void {
    for (const row of rows) this.stmts.insertDevice.run(row.jobId, row.deviceId, row.status, JSON.stringify(row));
  }

  /**
   * A device's progress. Written without waiting for the disk: it survives kill -9 (WAL), and a row
   * lost on power loss is one a restarted hub finds still running, and ends as interrupted.
   */
  updateDevice(row: DeviceJobRecord): void {
    withoutFsync(this.db, () => this.stmts.updateDevice.run(row.status, JSON.stringify(row), row.jobId, row.deviceId));
  }

  /** Up to `limit` of a job's device rows in one status, in device id order after `afterDeviceId`. */
  devices(jobId: string, status: DeviceJobStatus, limit: number, afterDeviceId = ''): DeviceJobRecord[] {
    return this.stmts.devicesWithStatus.all(jobId, status, afterDeviceId, limit).map((row) => JSON.parse(row.doc));
  }

  statistics(jobId: string): DeviceJobStatistics {
    const n: Partial<Record<DeviceJobStatus, number>> = {};
    for (const row of this.stmts.counts.all(jobId)) n[row.status as DeviceJobStatus] = row.n;
    const count = (status: DeviceJobStatus) => n[status] ?? 0;
    return {
      deviceCount: Object.values(n).reduce((a, b) => a + b, 0),
      failedCount: count('failed'),
      succeededCount: count('completed'),
      runningCount: count('running'),
      pendingCount: count('pending') + count('scheduled'),
    };
  }

  /** Every device row of every job, in job order then device id order: the devices.jobs collection. */
  *allDevices(): IterableIterator<DeviceJobRecord> {
    let after = { seq: 0, deviceId: '' };
    for (;;) {
      const rows = this.stmts.devicePage.all(after.seq, after.seq, after.deviceId, PAGE_SIZE);
      for (const row of rows) yield JSON.parse(row.doc);
      if (rows.length < PAGE_SIZE) return;
      const last = rows[rows.length - 1]!;
      after = { seq: last.job_seq, deviceId: last.device_id };
    }
  }
}
