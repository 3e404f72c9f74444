import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';

export type Db = Database.Database;

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
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  for (const file of path === ':memory:' ? [] : [`${path}-wal`, `${path}-shm`]) {
    if (existsSync(file)) chmodSync(file, 0o600); // from a hub that ran before modes were enforced
  }
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
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
  db.pragma('synchronous = NORMAL');
  try {
    return write();
  } finally {
    db.pragma('synchronous = FULL');
  }
}
