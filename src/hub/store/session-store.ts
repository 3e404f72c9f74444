import type { Db } from './database.js';

/**
 * The topic filters of persistent MQTT sessions (CONNECT with clean session 0), per identity. IoT
 * Hub keeps them across reconnects, and the SDK relies on it: after a reconnect it does not
 * subscribe to desired-property patches again.
 */
export class SessionStore {
  private readonly stmts;

  constructor(private readonly db: Db) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS mqtt_sessions (
        device_id TEXT NOT NULL,
        module_id TEXT NOT NULL DEFAULT '',
        filters TEXT NOT NULL,
        PRIMARY KEY (device_id, module_id)
      ) WITHOUT ROWID;
    `);
    this.stmts = {
      get: db.prepare<[string, string], { filters: string }>('SELECT filters FROM mqtt_sessions WHERE device_id = ? AND module_id = ?'),
      put: db.prepare<[string, string, string]>('INSERT OR REPLACE INTO mqtt_sessions (device_id, module_id, filters) VALUES (?, ?, ?)'),
      delete: db.prepare<[string, string]>('DELETE FROM mqtt_sessions WHERE device_id = ? AND module_id = ?'),
    };
  }

  filters(deviceId: string, moduleId = ''): string[] {
    const row = this.stmts.get.get(deviceId, moduleId);
    return row ? JSON.parse(row.filters) : [];
  }

  // A session's filters are written when the disk has room: on a full disk the subscription holds
  // for the connection, and its filters are kept to be written once there is room.

  save(deviceId: string, moduleId: string | undefined, filters: Iterable<string>): void {
    const row = JSON.stringify([...filters]);
    this.db.writeOrKeep(sessionKey(deviceId, moduleId), () => this.stmts.put.run(deviceId, moduleId ?? '', row));
  }

  delete(deviceId: string, moduleId?: string): void {
    this.db.writeOrKeep(sessionKey(deviceId, moduleId), () => this.stmts.delete.run(deviceId, moduleId ?? ''));
  }
}

function sessionKey(deviceId: string, moduleId: string | undefined): string {
  return `session ${deviceId}/${moduleId ?? ''}`;
}
