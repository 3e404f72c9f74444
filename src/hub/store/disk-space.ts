import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { HubError } from '../errors.js';
import type { HubLog } from '../log.js';

// A full disk is an error the hub answers, not one it dies of: a write that finds no room fails as
// IoT Hub fails a write it cannot commit, everything that only reads goes on, and writes resume by
// themselves once there is room again (every write is tried; SQLite refuses one fast when it cannot).

const SQLITE_FULL = 13;
/** No room for the WAL index (the -shm file), which every connection maps. */
const SQLITE_IOERR_SHMSIZE = 4874;

/** True when `err` is SQLite's answer to a write that found no room on the disk. */
export function isNoSpace(err: unknown): boolean {
  const code = (err as { errcode?: unknown } | undefined)?.errcode;
  return typeof code === 'number' && ((code & 0xff) === SQLITE_FULL || code === SQLITE_IOERR_SHMSIZE);
}

/** A write refused for want of room: IoT Hub's 503 ServiceUnavailable, which clients retry. */
export class DiskFullError extends HubError {
  constructor() {
    super(503, 503001, 'ServiceUnavailable', 'The hub cannot store this now: its disk is full. Retry once space has been freed.');
  }
}

/** How often, while the disk is full, the hub looks for room and writes what it kept. */
const RETRY_MS = 1000;
/** Free bytes from which a full disk counts as having room again. */
const ROOM_BYTES = 1024 * 1024;

/**
 * Whether the disk under one database has room, as its writes find out. The first write refused
 * for want of room logs one line (where, and what still works); then, once a second, the hub looks
 * at the file system's free space, and with room again it writes what it kept and logs that writes
 * resume. Kept are writes no client waits for (connection state, session filters): the latest per
 * key, so that a connect does not fail because its state cannot be recorded.
 */
export class DiskSpace {
  private full = false;
  private readonly kept = new Map<string, { write: () => void; written?: () => void }>();
  private timer?: NodeJS.Timeout;

  /**
   * `path` is the database file (or ':memory:'); `writeKept` runs the kept writes, all or none.
   */
  constructor(
    private readonly path: string,
    private readonly log: HubLog,
    private readonly writeKept: (writes: Array<() => void>) => void,
  ) {}

  get isFull(): boolean {
    return this.full;
  }

  /** `err` as callers should see it: a DiskFullError when it is a want of room (the disk is then full), else itself. */
  refused(err: unknown): unknown {
    if (!(err instanceof DiskFullError) && !isNoSpace(err)) return err;
    if (!this.full) {
      this.full = true;
      this.log.error(
        'store',
        `the disk holding ${this.where} is full (${describeFree(this.freeBytes())} free): ` +
          'writes fail (REST 503 ServiceUnavailable, MQTT publishes unacknowledged) until space is freed; reads, connections and direct methods go on',
      );
      this.timer = setInterval(() => this.retry(), RETRY_MS);
      this.timer.unref();
    }
    return err instanceof DiskFullError ? err : new DiskFullError();
  }

  /**
   * Keeps `write` under `key` (replacing what was kept there), to write once there is room (see
   * Db.writeOrKeep); `written` is called once it has been.
   */
  keep(key: string, write: () => void, written?: () => void): void {
    this.kept.delete(key); // the latest goes last
    this.kept.set(key, { write, written });
  }

  /** Drops what was kept under `key`: a newer write has landed. */
  forget(key: string): void {
    if (this.kept.size > 0) this.kept.delete(key);
  }

  get keeping(): boolean {
    return this.kept.size > 0;
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private retry(): void {
    const free = this.freeBytes();
    if (free !== undefined && free < ROOM_BYTES) return;
    const kept = [...this.kept.values()];
    try {
      if (kept.length > 0) this.writeKept(kept.map((k) => k.write));
    } catch (err) {
      if (err instanceof DiskFullError) return; // room for statfs, not for SQLite: later
      this.log.error(
        'store',
        `writing the connection states and sessions kept while the disk was full failed; they are dropped: ${(err as Error)?.stack ?? err}`,
      );
    }
    this.kept.clear();
    for (const { written } of kept) written?.();
    this.full = false;
    this.close();
    this.log.info('store', `the disk holding ${this.where} has room again (${describeFree(free)} free): writes resume`);
  }

  private get where(): string {
    return this.path === ':memory:' ? 'the in-memory database' : dirname(this.path);
  }

  /** Free bytes for an unprivileged writer where the database lives; undefined for memory or when the OS cannot tell. */
  private freeBytes(): number | undefined {
    if (this.path === ':memory:') return undefined;
    try {
      const stats = statfsSync(dirname(this.path));
      return stats.bavail * stats.bsize;
    } catch {
      return undefined; // no statfs here: the kept writes tell whether there is room
    }
  }
}

function describeFree(bytes: number | undefined): string {
  if (bytes === undefined) return 'unknown';
  return bytes < 1024 * 1024 ? `${Math.round(bytes / 1024)} KB` : `${(bytes / 2 ** 20).toFixed(1)} MB`;
}
