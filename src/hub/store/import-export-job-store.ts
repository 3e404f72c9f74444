import type { Db } from './database.js';
import type { ImportExportJob } from '../import-export/import-export-jobs.js';

/** Import and export jobs (POST /jobs/create), kept so that GET /jobs/{id} answers across restarts. */
export class ImportExportJobStore {
  private readonly stmts;

  constructor(db: Db) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS import_export_jobs (
        job_id  TEXT NOT NULL PRIMARY KEY,
        created INTEGER NOT NULL,
        record  TEXT NOT NULL
      ) WITHOUT ROWID;
    `);
    this.stmts = {
      get: db.prepare<[string], { record: string }>('SELECT record FROM import_export_jobs WHERE job_id = ?'),
      all: db.prepare<[], { record: string }>('SELECT record FROM import_export_jobs ORDER BY created, job_id'),
      insert: db.prepare<[string, number, string]>('INSERT INTO import_export_jobs (job_id, created, record) VALUES (?, ?, ?)'),
      update: db.prepare<[string, string]>('UPDATE import_export_jobs SET record = ? WHERE job_id = ?'),
    };
  }

  get(jobId: string): ImportExportJob | undefined {
    const row = this.stmts.get.get(jobId);
    return row && (JSON.parse(row.record) as ImportExportJob);
  }

  all(): ImportExportJob[] {
    return this.stmts.all.all().map((row) => JSON.parse(row.record) as ImportExportJob);
  }

  insert(job: ImportExportJob): void {
    this.stmts.insert.run(job.jobId, Date.parse(job.startTimeUtc), JSON.stringify(job));
  }

  update(job: ImportExportJob): void {
    this.stmts.update.run(JSON.stringify(job), job.jobId);
  }
}
