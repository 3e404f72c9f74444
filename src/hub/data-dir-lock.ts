import { chmodSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Db } from './store/database.js';

/** Who holds a data dir: the hub's process and, once it listens, its ports. */
export interface DataDirHolder {
  pid: number;
  port?: number;
  eventHubPort?: number;
}

/** A second hub on a data dir that a running hub holds. */
export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    /** Undefined in the instant between the holder's lock and its record. */
    readonly holder: DataDirHolder | undefined,
  ) {
    super(`The data dir ${dataDir} is in use by another hub${holder ? ` (pid ${holder.pid})` : ''}`);
    this.name = 'DataDirInUseError';
  }
}

const LOCK_FILE = 'hub.lock';
const HOLDER_FILE = 'hub.lock.json';
const SQLITE_BUSY = 5;

/**
 * One hub per data dir: two hubs writing one database would each trust a state the other changes.
 *
 * The lock is SQLite's own file lock on `<data dir>/hub.lock`, an exclusive transaction kept open
 * for as long as the hub runs (fcntl locks on POSIX systems, LockFileEx on Windows). Why it is safe:
 * the kernel grants it atomically, so of two hubs starting at once exactly one gets it, and it drops
 * it when the process ends, however it ends (kill -9 too). There is therefore no stale lock to
 * detect or break, no window in which two starters both break one, and no pid to mistake for a
 * reused one: the file outlives the hub but means nothing unless a live process locks it. SQLite
 * also keeps two connections of one process apart, so two hubs in one process are refused alike.
 *
 * `hub.lock.json` beside it says who holds the lock, for the refusal message; only the holder writes
 * it, and it is read only when the lock is found taken.
 */
export class DataDirLock {
  private constructor(
    private readonly db: Db,
    private readonly dataDir: string,
  ) {}

  /** Locks `dataDir` (which must exist) or throws DataDirInUseError at once. */
  static acquire(dataDir: string): DataDirLock {
    const path = join(dataDir, LOCK_FILE);
    const db = new Db(path);
    try {
      // busy_timeout 0: a taken lock refuses at once; the journal in memory: no second file.
      db.exec('PRAGMA busy_timeout = 0; PRAGMA journal_mode = MEMORY; BEGIN EXCLUSIVE');
    } catch (err) {
      db.close();
      if ((err as { errcode?: number }).errcode === SQLITE_BUSY) throw new DataDirInUseError(dataDir, readHolder(dataDir));
      throw err;
    }
    chmodSync(path, 0o600);
    const lock = new DataDirLock(db, dataDir);
    lock.describe({ pid: process.pid });
    return lock;
  }

  /**
   * Records who holds the lock (written whole, then renamed into place, so a reader never sees half
   * of it). The record only names the holder in a refusal: on a full disk the hub starts without it
   * (a previous holder's record is removed, so no refusal names a dead process).
   */
  describe(holder: DataDirHolder): void {
    const path = join(this.dataDir, HOLDER_FILE);
    rmSync(`${path}.tmp`, { force: true }); // a left-over would keep its mode
    try {
      writeFileSync(`${path}.tmp`, JSON.stringify(holder) + '\n', { mode: 0o600 });
      renameSync(`${path}.tmp`, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      rmSync(`${path}.tmp`, { force: true });
      rmSync(path, { force: true });
    }
  }

  /** Removes the record while the lock is still held (so it cannot remove the next holder's), then lets go. */
  release(): void {
    rmSync(join(this.dataDir, HOLDER_FILE), { force: true });
    this.db.close(); // closing ends the transaction, and with it the lock
  }
}

function readHolder(dataDir: string): DataDirHolder | undefined {
  try {
    return JSON.parse(readFileSync(join(dataDir, HOLDER_FILE), 'utf8')) as DataDirHolder;
  } catch {
    return undefined; // not written yet: the holder is starting
  }
}
