import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { Db, openDatabase } from './database.js';
import { DiskFullError, isNoSpace } from './disk-space.js';
import type { HubLog } from '../log.js';

/** A data dir the hub will not serve; the message says why and what to do, in one line. */
export class DataDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataDirError';
  }
}

/**
 * Up to this size (database and WAL together) the start-up check is a whole `PRAGMA quick_check`,
 * which reads every page: 1.3–6 ms per MB with the file cached (a quiet and a busy two-core box),
 * ~85 ms per MB from a cold disk, so at most ~0.4 s cached and ~5 s cold (BENCHMARKS.md, "The
 * start-up check"). Above it, every table but the event log's is checked whole, and the event log at
 * each partition's ends: 0.37 s cached, 4.2 s cold for 1.7 GB (400,000 events, 10,000 twins).
 */
export const WHOLE_CHECK_BYTES = 64 * 2 ** 20;

const SQLITE_CORRUPT = 11;
const SQLITE_NOTADB = 26;

/**
 * Opens a data dir's database for the hub after checking that the hub may serve it. `held` says
 * that the data dir has held a hub (its CA is there): then a missing or empty database is not a new
 * hub to create, it is a hub whose devices and keys are gone. A damaged database is refused, not
 * served until a read trips over the damage.
 */
export function openHubDatabase(path: string, options: { held: boolean; log: HubLog }): Db {
  const dir = dirname(path);
  if (options.held && isGone(path)) {
    throw new DataDirError(
      `the data dir ${dir} holds a hub's CA but not its database (${path} is ${existsSync(path) ? 'empty' : 'missing'}): ` +
        'restore hub.db from a backup, or remove the data dir to start a new, empty hub (new keys, no devices)',
    );
  }
  if (existsSync(path)) checkDatabase(path);
  return openDatabase(path, options.log);
}

/** Missing, or empty with no WAL holding its pages (an empty file with a WAL is a hub that never checkpointed). */
function isGone(path: string): boolean {
  if (!existsSync(path)) return true;
  return statSync(path).size === 0 && sizeOf(`${path}-wal`) === 0;
}

function sizeOf(path: string): number {
  return existsSync(path) ? statSync(path).size : 0;
}

/** Checks the database's structure on a connection of its own (see WHOLE_CHECK_BYTES); throws DataDirError. */
export function checkDatabase(path: string, wholeCheckBytes = WHOLE_CHECK_BYTES): void {
  let db: Db | undefined;
  try {
    db = new Db(path);
    const problems = sizeOf(path) + sizeOf(`${path}-wal`) <= wholeCheckBytes ? quickCheck(db) : partialCheck(db);
    if (problems.length > 0) throw damaged(path, `quick_check: ${problems.slice(0, 3).join('; ')}`);
  } catch (err) {
    if (err instanceof DataDirError) throw err;
    const code = (err as { errcode?: unknown }).errcode;
    if (typeof code === 'number' && ((code & 0xff) === SQLITE_CORRUPT || code === SQLITE_NOTADB))
      throw damaged(path, (err as Error).message);
    if (err instanceof DiskFullError || isNoSpace(err)) {
      throw new DataDirError(
        `the disk holding ${dirname(path)} is full (${path} cannot be opened: ${(err as Error).message}): free some space, then start the hub again`,
      );
    }
    throw err;
  } finally {
    db?.close();
  }
}

function quickCheck(db: Db, table?: string): string[] {
  const rows = db.prepare<[], { quick_check: string }>(table ? `PRAGMA quick_check("${table}")` : 'PRAGMA quick_check').all();
  return rows.map((r) => r.quick_check).filter((r) => r !== 'ok');
}

/** Every table but the event log whole; the event log's rows at each partition's two ends. */
function partialCheck(db: Db): string[] {
  const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_schema WHERE type = 'table' AND name <> 'events'").all();
  const problems = tables.flatMap(({ name }) => quickCheck(db, name));
  if (!tables.some(({ name }) => name === 'event_partitions')) return problems;
  const partitions = db.prepare<[], { partition: number }>('SELECT partition FROM event_partitions').all();
  const end = (order: 'ASC' | 'DESC') =>
    db.prepare<[number], { body: Uint8Array }>(
      `SELECT body, properties FROM events WHERE partition = ? ORDER BY sequence ${order} LIMIT 1`,
    );
  const [first, last] = [end('ASC'), end('DESC')];
  for (const { partition } of partitions) {
    first.get(partition);
    last.get(partition);
  }
  return problems;
}

function damaged(path: string, reason: string): DataDirError {
  return new DataDirError(
    `the hub's database ${path} is damaged (${reason}): restore it from a backup, or move the data dir away to start a new, empty hub`,
  );
}
