import type { Db } from './database.js';
import type { ConfigurationRecord, TwinConfigurations } from '../configurations/configuration.js';

export interface ConfigurationTwinKey {
  deviceId: string;
  moduleId?: string;
}

interface StatusRow {
  device_id: string;
  module_id: string;
  configuration_id: string;
  status: string;
}

const twinKeyOf = (deviceId: string, moduleId: string): string => JSON.stringify([deviceId, moduleId]);

/**
 * Automatic device configurations and, per twin, the configurations that target it ('Targeted') or
 * were applied to it ('Applied'). The statuses are also kept in memory: every twin document shows
 * them, and reading a row per twin would slow every query down.
 */
export class ConfigurationStore {
  private readonly stmts;
  private readonly statuses = new Map<string, TwinConfigurations>();

  constructor(private readonly db: Db) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS configurations (
        id     TEXT NOT NULL PRIMARY KEY,
        record TEXT NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS twin_configurations (
        device_id        TEXT NOT NULL,
        module_id        TEXT NOT NULL,
        configuration_id TEXT NOT NULL,
        status           TEXT NOT NULL,
        PRIMARY KEY (device_id, module_id, configuration_id)
      ) WITHOUT ROWID;
    `);
    this.stmts = {
      get: db.prepare<[string], { record: string }>('SELECT record FROM configurations WHERE id = ?'),
      all: db.prepare<[], { record: string }>('SELECT record FROM configurations'),
      put: db.prepare<[string, string]>('INSERT OR REPLACE INTO configurations (id, record) VALUES (?, ?)'),
      delete: db.prepare<[string]>('DELETE FROM configurations WHERE id = ?'),
      count: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM configurations'),
      allStatuses: db.prepare<[], StatusRow>('SELECT * FROM twin_configurations'),
      deleteTwinStatuses: db.prepare<[string, string]>('DELETE FROM twin_configurations WHERE device_id = ? AND module_id = ?'),
      deleteDeviceStatuses: db.prepare<[string]>('DELETE FROM twin_configurations WHERE device_id = ?'),
      deleteConfigurationStatuses: db.prepare<[string]>('DELETE FROM twin_configurations WHERE configuration_id = ?'),
      putStatus: db.prepare<[string, string, string, string]>(
        'INSERT INTO twin_configurations (device_id, module_id, configuration_id, status) VALUES (?, ?, ?, ?)',
      ),
    };
    for (const row of this.stmts.allStatuses.all()) {
      const key = twinKeyOf(row.device_id, row.module_id);
      this.statuses.set(key, { ...this.statuses.get(key), [row.configuration_id]: { status: row.status as 'Targeted' | 'Applied' } });
    }
  }

  get(id: string): ConfigurationRecord | undefined {
    const row = this.stmts.get.get(id);
    return row && (JSON.parse(row.record) as ConfigurationRecord);
  }

  all(): ConfigurationRecord[] {
    return this.stmts.all.all().map((row) => JSON.parse(row.record) as ConfigurationRecord);
  }

  count(): number {
    return this.stmts.count.get()!.n;
  }

  put(record: ConfigurationRecord): void {
    this.stmts.put.run(record.id, JSON.stringify(record));
  }

  /** Deletes a configuration; the twins it targeted no longer list it. */
  delete(id: string): void {
    this.db.transaction(() => {
      this.stmts.delete.run(id);
      this.stmts.deleteConfigurationStatuses.run(id);
    });
    for (const [key, statuses] of this.statuses) {
      if (!Object.hasOwn(statuses, id)) continue;
      const { [id]: _removed, ...rest } = statuses;
      if (Object.keys(rest).length > 0) this.statuses.set(key, rest);
      else this.statuses.delete(key);
    }
  }

  /** The configurations that target a twin, with their status there; undefined for none. */
  statusesOf(key: ConfigurationTwinKey): TwinConfigurations | undefined {
    return this.statuses.get(twinKeyOf(key.deviceId, key.moduleId ?? ''));
  }

  /** How many twins show configuration `id` with `status`. */
  countWithStatus(id: string, status: 'Targeted' | 'Applied'): number {
    let n = 0;
    for (const statuses of this.statuses.values()) if (statuses[id]?.status === status) n++;
    return n;
  }

  /** Replaces the statuses of one twin (an empty object removes them all). */
  setStatuses(key: ConfigurationTwinKey, statuses: TwinConfigurations): void {
    const moduleId = key.moduleId ?? '';
    this.db.transaction(() => {
      this.stmts.deleteTwinStatuses.run(key.deviceId, moduleId);
      for (const [id, { status }] of Object.entries(statuses)) this.stmts.putStatus.run(key.deviceId, moduleId, id, status);
    });
    if (Object.keys(statuses).length > 0) this.statuses.set(twinKeyOf(key.deviceId, moduleId), statuses);
    else this.statuses.delete(twinKeyOf(key.deviceId, moduleId));
  }

  /** Forgets the statuses of a deleted twin; a device's take its modules' along. */
  deleteTwin(key: ConfigurationTwinKey): void {
    if (key.moduleId) {
      this.setStatuses(key, {});
      return;
    }
    this.stmts.deleteDeviceStatuses.run(key.deviceId);
    for (const twinKey of this.statuses.keys()) {
      if ((JSON.parse(twinKey) as string[])[0] === key.deviceId) this.statuses.delete(twinKey);
    }
  }
}
