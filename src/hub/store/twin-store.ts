import type { Db } from './database.js';
import type { TwinKey, TwinState } from '../twins/twin-state.js';

export type TwinKind = 'devices' | 'modules';

export interface TwinEntry {
  key: TwinKey;
  state: TwinState;
}

interface TwinRow {
  device_id: string;
  module_id: string;
  version: number;
  etag: string;
  desired_version: number;
  reported_version: number;
  tags: string;
  desired: string;
  reported: string;
  desired_metadata: string;
  reported_metadata: string;
}

/** Rows per page when walking all twins: bounded memory, and no statement left open in between. */
const pageSize = 256;

/**
 * Twins in SQLite: one row per twin, keyed by (device_id, module_id), module_id '' for a device's
 * own twin. Sections and their metadata are JSON text; versions are columns. Every write is
 * committed when the method returns.
 */
export class TwinStore {
  private readonly statements;
  constructor(private readonly db: Db) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS twins (
        device_id         TEXT    NOT NULL,
        module_id         TEXT    NOT NULL,
        version           INTEGER NOT NULL,
        etag              TEXT    NOT NULL,
        desired_version   INTEGER NOT NULL,
        reported_version  INTEGER NOT NULL,
        tags              TEXT    NOT NULL,
        desired           TEXT    NOT NULL,
        reported          TEXT    NOT NULL,
        desired_metadata  TEXT    NOT NULL,
        reported_metadata TEXT    NOT NULL,
        PRIMARY KEY (device_id, module_id)
      ) WITHOUT ROWID;
    `);
    this.statements = {
      get: db.prepare<[string, string], TwinRow>('SELECT * FROM twins WHERE device_id = ? AND module_id = ?'),
      put: db.prepare<[TwinRow]>(`
        INSERT OR REPLACE INTO twins (device_id, module_id, version, etag, desired_version, reported_version,
                                      tags, desired, reported, desired_metadata, reported_metadata)
        VALUES (@device_id, @module_id, @version, @etag, @desired_version, @reported_version,
                @tags, @desired, @reported, @desired_metadata, @reported_metadata)`),
      delete: db.prepare<[string, string]>('DELETE FROM twins WHERE device_id = ? AND module_id = ?'),
      deleteDevice: db.prepare<[string]>('DELETE FROM twins WHERE device_id = ?'),
      devicesPage: db.prepare<[string, number], TwinRow>(
        "SELECT * FROM twins WHERE module_id = '' AND device_id > ? ORDER BY device_id LIMIT ?",
      ),
      modulesPage: db.prepare<[string, string, string, number], TwinRow>(`
        SELECT * FROM twins WHERE module_id <> '' AND (device_id > ? OR (device_id = ? AND module_id > ?))
        ORDER BY device_id, module_id LIMIT ?`),
      countDevices: db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM twins WHERE module_id = ''"),
      countModules: db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM twins WHERE module_id <> ''"),
    };
  }

  get(key: TwinKey): TwinState | undefined {
    const row = this.statements.get.get(key.deviceId, key.moduleId ?? '');
    return row && fromRow(row).state;
  }

  /** Creates or overwrites the twin. */
  put(key: TwinKey, state: TwinState): void {
    this.statements.put.run(toRow(key, state));
  }

  /**
   * Replaces the twin with `change(current)` in one transaction; `change` returns `current` itself
   * to write nothing, and may throw to abort. Returns the new state, or undefined for no such twin.
   */
  update(key: TwinKey, change: (current: TwinState) => TwinState): TwinState | undefined {
    // Read-modify-write under SQLite's write lock, so no other connection's write slips in between.
    return this.db.transaction(() => {
      const current = this.get(key);
      if (!current) return undefined;
      const next = change(current);
      if (next !== current) this.put(key, next);
      return next;
    });
  }

  delete(key: TwinKey): void {
    this.statements.delete.run(key.deviceId, key.moduleId ?? '');
  }

  /** Deletes a device's twin and its modules' twins. */
  deleteDevice(deviceId: string): void {
    this.statements.deleteDevice.run(deviceId);
  }

  /** All device twins, or all module twins, in key order. */
  *entries(kind: TwinKind): IterableIterator<TwinEntry> {
    let after = { deviceId: '', moduleId: '' };
    for (;;) {
      const rows =
        kind === 'devices'
          ? this.statements.devicesPage.all(after.deviceId, pageSize)
          : this.statements.modulesPage.all(after.deviceId, after.deviceId, after.moduleId, pageSize);
      for (const row of rows) yield fromRow(row);
      if (rows.length < pageSize) return;
      const last = rows[rows.length - 1]!;
      after = { deviceId: last.device_id, moduleId: last.module_id };
    }
  }

  count(kind: TwinKind): number {
    const counter = kind === 'devices' ? this.statements.countDevices : this.statements.countModules;
    return counter.get()!.n;
  }
}

function toRow(key: TwinKey, state: TwinState): TwinRow {
  return {
    device_id: key.deviceId,
    module_id: key.moduleId ?? '',
    version: state.version,
    etag: state.etag,
    desired_version: state.desiredVersion,
    reported_version: state.reportedVersion,
    tags: JSON.stringify(state.tags),
    desired: JSON.stringify(state.desired),
    reported: JSON.stringify(state.reported),
    desired_metadata: JSON.stringify(state.desiredMetadata),
    reported_metadata: JSON.stringify(state.reportedMetadata),
  };
}

function fromRow(row: TwinRow): TwinEntry {
  return {
    key: row.module_id ? { deviceId: row.device_id, moduleId: row.module_id } : { deviceId: row.device_id },
    state: {
      tags: JSON.parse(row.tags),
      desired: JSON.parse(row.desired),
      reported: JSON.parse(row.reported),
      desiredMetadata: JSON.parse(row.desired_metadata),
      reportedMetadata: JSON.parse(row.reported_metadata),
      desiredVersion: row.desired_version,
      reportedVersion: row.reported_version,
      version: row.version,
      etag: row.etag,
    },
  };
}
