import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import type { DatabaseSync, SQLInputValue } from 'node:sqlite';
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

/** The hub's SQLite connection: the few operations the stores use, nothing more. */
export class Db {
  private readonly connection: DatabaseSync;
  private depth = 0;
  /** What runs once the outermost transaction has committed (see afterCommit). */
  private committed: Array<() => void> = [];
  /** Set when another connection (the event writer thread's) writes to the same file; see WriteTurns. */
  turns?: WriteTurns;

  /** `path` is a file, or ':memory:'. */
  constructor(readonly path: string) {
    this.connection = new sqlite.DatabaseSync(path);
  }

  get memory(): boolean {
    return this.path === ':memory:';
  }

  get inTransaction(): boolean {
    return this.depth > 0;
  }

  exec(sql: string): void {
    this.connection.exec(sql);
  }

  prepare<P extends unknown[] = SQLInputValue[], R = Record<string, unknown>>(sql: string): Statement<P, R> {
    return this.connection.prepare(sql) as unknown as Statement<P, R>;
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

  close(): void {
    this.connection.close();
  }
}

/**
 * Opens the hub's SQLite database. `path` is a file in the data dir, or ':memory:' for --in-memory.
 * WAL plus synchronous=FULL: a write the hub has acknowledged survives kill -9 and power loss.
 */
export function openDatabase(path: string): Db {
  // The database holds every key: owner-only. SQLite gives its -wal and -shm files the database file's mode.
  if (path !== ':memory:') {
    closeSync(openSync(path, 'a', 0o600));
    chmodSync(path, 0o600);
  }
  const db = new Db(path);
  db.exec('PRAGMA journal_mode = WAL');
  for (const file of db.memory ? [] : [`${path}-wal`, `${path}-shm`]) {
    if (existsSync(file)) chmodSync(file, 0o600); // from a hub that ran before modes were enforced
  }
  db.exec('PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000');
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
