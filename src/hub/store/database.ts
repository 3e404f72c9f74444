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
  /** Whether each commit gets a debug line (the log is at debug); fixed, so that otherwise a write pays one test. */
  readonly tracing: boolean;
  /** What the current transaction has written, for its commit's line (only while tracing). */
  private writes: string[] = [];

  /** `path` is a file, or ':memory:'; `log` hears of a full disk and, at debug, of each commit. */
  constructor(
    readonly path: string,
    private readonly log: HubLog = silentLog(),
  ) {
    this.tracing = log.enabled('debug');
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
    const what = this.tracing ? writeOf(sql) : '';
    return {
      run: (...params) => {
        const started = this.tracing ? performance.now() : 0;
        let result: { changes: number };
        try {
          result = statement.run(...params);
        } catch (err) {
          throw this.space.refused(err);
        }
        if (this.tracing) {
          if (this.depth > 0) this.writes.push(what);
          else this.logCommit([what], started); // outside a transaction, a write is its own commit
        }
        return result;
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
    const started = this.tracing && outermost ? performance.now() : 0;
    if (this.tracing && outermost) this.writes = [];
    const written = this.writes.length;
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
      this.writes.length = written;
      // A failed COMMIT may have ended the transaction already (SQLite rolls back on some errors).
      if (this.connection.isTransaction) {
        this.connection.exec(outermost ? 'ROLLBACK' : `ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`);
      }
      throw err;
    } finally {
      this.depth--;
      if (outermost) this.turns?.hubLeave();
    }
    if (outermost) {
      if (this.tracing && this.writes.length > 0) this.logCommit(this.writes, started);
      this.runCommitted();
    }
    return result;
  }

  /** The store's debug line for a commit: what it wrote (statements and tables, no values) and how long it took. */
  logCommit(writes: string[], startedMs: number): void {
    const counts = new Map<string, number>();
    for (const what of writes) counts.set(what, (counts.get(what) ?? 0) + 1);
    const summary = [...counts].map(([what, n]) => (n > 1 ? `${what} x${n}` : what)).join(', ');
    this.log.debug('store', `commit: ${summary} in ${(performance.now() - startedMs).toFixed(1)} ms`);
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

/** A write statement as its commit's line names it: 'INSERT devices', 'UPDATE twins', 'DELETE c2d_messages'. */
function writeOf(sql: string): string {
  const match = /^\s*(INSERT|REPLACE|UPDATE|DELETE)\b(?:\s+OR\s+\w+)?(?:\s+(?:INTO|FROM))?\s+"?(\w+)/i.exec(sql);
  return match ? `${match[1]!.toUpperCase()} ${match[2]}` : (sql.trim().split(/\s+/)[0] ?? '').toUpperCase();
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
