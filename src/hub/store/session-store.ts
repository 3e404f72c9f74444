import type { Db } from './database.js';

/**
 * The topic filters of persistent MQTT sessions (CONNECT with clean session 0), per identity. IoT
 * Hub keeps them across reconnects, and the SDK relies on it: after a reconnect it does not
 * subscribe to desired-property patches again.
 */
export class SessionStore {
  private readonly stmts;
  /** Filters kept on a full disk, not written yet. */
  private readonly unwritten = new Map<string, string[]>();

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
    const unwritten = this.unwritten.get(sessionKey(deviceId, moduleId));
    if (unwritten !== undefined) return unwritten;
    const row = this.stmts.get.get(deviceId, moduleId);
    return row ? JSON.parse(row.filters) : [];
  }

  save(deviceId: string, moduleId: string | undefined, filters: Iterable<string>): void {
    const kept = [...filters];
    const row = JSON.stringify(kept);
    this.write(sessionKey(deviceId, moduleId), kept, () => this.stmts.put.run(deviceId, moduleId ?? '', row));
  }

  delete(deviceId: string, moduleId?: string): void {
    this.write(sessionKey(deviceId, moduleId), [], () => this.stmts.delete.run(deviceId, moduleId ?? ''));
  }

  /**
   * On a full disk the subscriptions hold for the connection, and the filters are kept (and served
   * from memory to a reconnect) until they can be written.
   */
  private write(key: string, filters: string[], write: () => void): void {
    const written = () => this.unwritten.delete(key);
    if (this.db.writeOrKeep(key, write, written)) written();
    else this.unwritten.set(key, filters);
  }
}

function sessionKey(deviceId: string, moduleId: string | undefined): string {
  return `session ${deviceId}/${moduleId ?? ''}`;
}
