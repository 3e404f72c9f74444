import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import type { DatabaseSync, SQLInputValue } from 'node:sqlite';
import { silentLog, type HubLog } from '../log.js';
import { DiskFullError, DiskSpace } from './disk-space.js';
import type { WriteTurns } from './write-turns.js';

/** A prepared statement, typed by its parameters (positional, or one object of named ones) and its rows. */
export interface Statement<P extends unknown[] = SQLInputValue[], R = Record<string, unknown>> {
  run(...params: P): { changes: number };
  get(...params: P): R | undefined;
  all(...params: P): R[];
}

/**
 * Node's own SQLite (node:sqlite), so that installing the hub needs no native build. Node 22 flags
 * it as experimental when it is first loaded; that warning would reach every command's stderr, and
 * the hub relies only on what Node 24 has made stable, so it is muted for that one load.
 */
const sqlite = (() => {
  const emitWarning = process.emitWarning;
  process.emitWarning = () => undefined;
  try {
    return process.getBuiltinModule('node:sqlite');
  } finally {
    process.emitWarning = emitWarning;
  }
})();

/**
 * The hub's SQLite connection: the few operations the stores use, nothing more. A write that finds
 * the disk full throws DiskFullError (see disk-space.ts), whichever statement found out.
 */
export class Db {
  readonly space: DiskSpace;
  private readonly connection: DatabaseSync;
  private depth = 0;
  /** What runs once the outermost transaction has committed (see afterCommit). */
  private committed: Array<() => void> = [];
  /** Set when another connection (the event writer thread's) writes to the same file; see WriteTurns. */
  turns?: WriteTurns;

  /** `path` is a file, or ':memory:'; `log` hears of a full disk. */
  constructor(
    readonly path: string,
    log: HubLog = silentLog(),
  ) {
    this.connection = new sqlite.DatabaseSync(path);
    this.space = new DiskSpace(path, log, (writes) =>
      this.transaction(() => {
        for (const write of writes) write();
      }),
    );
  }

  get memory(): boolean {
    return this.path === ':memory:';
  }

  get inTransaction(): boolean {
    return this.depth > 0;
  }

  exec(sql: string): void {
    try {
      this.connection.exec(sql);
    } catch (err) {
      throw this.space.refused(err);
    }
  }

  prepare<P extends unknown[] = SQLInputValue[], R = Record<string, unknown>>(sql: string): Statement<P, R> {
    const statement = this.connection.prepare(sql) as unknown as Statement<P, R>;
    return {
      run: (...params) => {
        try {
          return statement.run(...params);
        } catch (err) {
          throw this.space.refused(err);
        }
      },
      get: (...params) => statement.get(...params),
      all: (...params) => statement.all(...params),
    };
  }

  /**
   * Runs `fn` in one transaction: all of its writes land, or none. Immediate (the write lock from
   * the start, waiting up to busy_timeout for it): a transaction that read first would fail with
   * SQLITE_BUSY on its first write if the event writer thread committed in between. A transaction
   * inside another is a savepoint, undone alone when it throws.
   */
  transaction<T>(fn: () => T): T {
    const savepoint = `s${this.depth}`;
    const outermost = this.depth === 0;
    const queued = this.committed.length;
    if (outermost) this.turns?.hubEnter();
    try {
      this.exec(outermost ? 'BEGIN IMMEDIATE' : `SAVEPOINT ${savepoint}`);
    } catch (err) {
      if (outermost) this.turns?.hubLeave();
      throw err;
    }
    this.depth++;
    let result: T;
    try {
      result = fn();
      this.exec(outermost ? 'COMMIT' : `RELEASE ${savepoint}`);
    } catch (err) {
      this.committed.length = queued; // what the undone writes announced does not happen
      // A failed COMMIT may have ended the transaction already (SQLite rolls back on some errors).
      if (this.connection.isTransaction) {
        this.connection.exec(outermost ? 'ROLLBACK' : `ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`);
      }
      throw err;
    } finally {
      this.depth--;
      if (outermost) this.turns?.hubLeave();
    }
    if (outermost) this.runCommitted();
    return result;
  }

  /**
   * Runs `fn` once the current transaction's outermost COMMIT has succeeded (at once outside a
   * transaction); never when it rolls back. For notifications about what a transaction wrote.
   */
  afterCommit(fn: () => void): void {
    if (this.depth === 0) fn();
    else this.committed.push(fn);
  }

  private runCommitted(): void {
    const committed = this.committed;
    this.committed = [];
    for (const fn of committed) fn();
  }

  /**
   * Runs `write`, which no client waits for (connection state, session filters): on a full disk it
   * is kept under `key`, replacing what was kept there, and written once there is room (then
   * `written` is called). Inside a transaction it is part of that transaction: all or none. Returns
   * whether it was written now.
   */
  writeOrKeep(key: string, write: () => void, written?: () => void): boolean {
    if (this.inTransaction) {
      write();
      return true;
    }
    this.space.forget(key);
    try {
      write();
      return true;
    } catch (err) {
      if (!(err instanceof DiskFullError)) throw err;
      this.space.keep(key, write, written);
      return false;
    }
  }

  close(): void {
    this.space.close();
    this.connection.close();
  }
}

/**
 * Opens the hub's SQLite database. `path` is a file in the data dir, or ':memory:' for --in-memory.
 * WAL plus synchronous=FULL: a write the hub has acknowledged survives kill -9 and power loss.
 */
export function openDatabase(path: string, log?: HubLog): Db {
  // The database holds every key: owner-only. SQLite gives its -wal and -shm files the database file's mode.
  if (path !== ':memory:') {
    closeSync(openSync(path, 'a', 0o600));
    chmodSync(path, 0o600);
  }
  const db = new Db(path, log);
  try {
    db.exec('PRAGMA journal_mode = WAL');
    for (const file of db.memory ? [] : [`${path}-wal`, `${path}-shm`]) {
      if (existsSync(file)) chmodSync(file, 0o600); // from a hub that ran before modes were enforced
    }
    db.exec('PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000');
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/**
 * Runs `write` without waiting for the disk (synchronous=NORMAL for its commit): the change survives
 * kill -9 (it is in the WAL) but may be lost on power loss. Only for state no client was promised
 * durability for, such as connection state, whose fsync per connect halved the connect rate.
 */
export function withoutFsync<T>(db: Db, write: () => T): T {
  // Inside a transaction the write commits with it (and SQLite refuses to change the level there).
  if (db.inTransaction) return write();
  db.exec('PRAGMA synchronous = NORMAL');
  try {
    return write();
  } finally {
    db.exec('PRAGMA synchronous = FULL');
  }
}
