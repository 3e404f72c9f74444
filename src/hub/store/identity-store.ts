import { withoutFsync, type Db } from './database.js';
import { DiskFullError } from './disk-space.js';
import type { SharedAccessPolicy } from '../auth/policies.js';

/** An identity as the registry keeps it; `moduleId` is '' for a device. */
export interface IdentityRecord {
  deviceId: string;
  moduleId: string;
  generationId: string;
  etagCounter: number;
  status: 'enabled' | 'disabled';
  statusReason: string | null;
  statusUpdatedTime: string;
  /** Absent in records from before X.509 identities: 'sas'. */
  authenticationType?: 'sas' | 'selfSigned' | 'certificateAuthority';
  /** The SAS keys; '' for an X.509 identity. */
  primaryKey: string;
  secondaryKey: string;
  /** 'selfSigned' only: upper-case hex SHA-1 or SHA-256 thumbprints. */
  primaryThumbprint?: string;
  secondaryThumbprint?: string;
  managedBy: string | null;
  connectionState: 'Connected' | 'Disconnected';
  connectionStateUpdatedTime: string;
  lastActivityTime: string;
  capabilities: { iotEdge: boolean };
  /** Devices only: an IoT Edge device's own scope, or a leaf's parent's (absent in records from before scopes). */
  deviceScope?: string;
  parentScopes?: string[];
  createdTime: string;
  /** The IoT Plug and Play model id its latest connect announced; absent until one did. */
  modelId?: string;
}

export interface ConnectionStateChange {
  deviceId: string;
  moduleId: string;
  state: IdentityRecord['connectionState'];
  /** ISO time of the connect or disconnect. */
  at: string;
  /** The model id a connect announced, kept as the identity's modelId. */
  modelId?: string;
}

/** The last time an identity sent or received a message: its lastActivityTime (ISO). */
export interface ActivityChange {
  deviceId: string;
  moduleId: string;
  at: string;
}

/** Identities and shared access policies. Every write is committed when the call returns. */
export class IdentityStore {
  private readonly stmts;

  constructor(private readonly db: Db) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS identities (
        device_id TEXT NOT NULL,
        module_id TEXT NOT NULL DEFAULT '',
        record TEXT NOT NULL,
        PRIMARY KEY (device_id, module_id)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS policies (
        key_name TEXT PRIMARY KEY,
        record TEXT NOT NULL
      ) WITHOUT ROWID;
    `);
    this.stmts = {
      get: db.prepare<[string, string], { record: string }>('SELECT record FROM identities WHERE device_id = ? AND module_id = ?'),
      put: db.prepare<[string, string, string]>('INSERT OR REPLACE INTO identities (device_id, module_id, record) VALUES (?, ?, ?)'),
      deleteDevice: db.prepare<[string]>('DELETE FROM identities WHERE device_id = ?'),
      deleteModule: db.prepare<[string, string]>('DELETE FROM identities WHERE device_id = ? AND module_id = ?'),
      devices: db.prepare<[number], { record: string }>("SELECT record FROM identities WHERE module_id = '' ORDER BY device_id LIMIT ?"),
      modulesOf: db.prepare<[string], { record: string }>(
        "SELECT record FROM identities WHERE device_id = ? AND module_id <> '' ORDER BY module_id",
      ),
      allModules: db.prepare<[], { record: string }>("SELECT record FROM identities WHERE module_id <> '' ORDER BY device_id, module_id"),
      countDevices: db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM identities WHERE module_id = ''"),
      policies: db.prepare<[], { record: string }>('SELECT record FROM policies'),
      putPolicy: db.prepare<[string, string]>('INSERT OR REPLACE INTO policies (key_name, record) VALUES (?, ?)'),
      // lastActivityTime never goes back: a message's time may be written after a later disconnect's.
      connectionState: db.prepare<[string, string, string, string, string]>(
        "UPDATE identities SET record = json_set(record, '$.connectionState', ?, '$.connectionStateUpdatedTime', ?, '$.lastActivityTime', max(coalesce(json_extract(record, '$.lastActivityTime'), ''), ?)) WHERE device_id = ? AND module_id = ?",
      ),
      activity: db.prepare<[string, string, string]>(
        "UPDATE identities SET record = json_set(record, '$.lastActivityTime', max(coalesce(json_extract(record, '$.lastActivityTime'), ''), ?)) WHERE device_id = ? AND module_id = ?",
      ),
      modelId: db.prepare<[string, string, string]>(
        "UPDATE identities SET record = json_set(record, '$.modelId', ?) WHERE device_id = ? AND module_id = ?",
      ),
    };
  }

  get(deviceId: string, moduleId = ''): IdentityRecord | undefined {
    const row = this.stmts.get.get(deviceId, moduleId);
    return row && JSON.parse(row.record);
  }

  put(record: IdentityRecord): void {
    this.stmts.put.run(record.deviceId, record.moduleId, JSON.stringify(record));
  }

  /**
   * Sets identities' connection state and last activity (and a model id a connect announced), in place
   * (no read, no JSON in JS), all in one commit without fsync: connection state need not survive a power
   * loss, and a device announces its model again at its next connect. Missing identities are skipped.
   * On a full disk they are kept and written once there is room: a connect does not fail for its state.
   */
  putConnectionStates(changed: ConnectionStateChange[]): void {
    this.putInPlace('connection state', changed, (c) => {
      this.stmts.connectionState.run(c.state, c.at, c.at, c.deviceId, c.moduleId);
      if (c.modelId !== undefined) this.stmts.modelId.run(c.modelId, c.deviceId, c.moduleId);
    });
  }

  /** Sets identities' lastActivityTime (never back in time), as putConnectionStates writes: in place, one commit, no fsync. */
  putActivity(changed: ActivityChange[]): void {
    this.putInPlace('activity', changed, (c) => this.stmts.activity.run(c.at, c.deviceId, c.moduleId));
  }

  /** Writes `changes` with `put`, in one commit without fsync; on a full disk each is kept (under `kind` and its identity) until there is room. */
  private putInPlace<C extends { deviceId: string; moduleId: string }>(kind: string, changes: C[], put: (change: C) => void): void {
    const { space } = this.db;
    const keyOf = (c: C) => `${kind} ${c.deviceId}/${c.moduleId}`;
    try {
      withoutFsync(this.db, () =>
        this.transaction(() => {
          for (const c of changes) put(c);
        }),
      );
    } catch (err) {
      if (!(err instanceof DiskFullError) || this.db.inTransaction) throw err;
      for (const c of changes) space.keep(keyOf(c), () => put(c));
      return;
    }
    if (space.keeping) for (const c of changes) space.forget(keyOf(c));
  }

  /** Removes a device and all its modules, or one module. */
  delete(deviceId: string, moduleId = ''): void {
    if (moduleId) this.stmts.deleteModule.run(deviceId, moduleId);
    else this.stmts.deleteDevice.run(deviceId);
  }

  devices(limit = Number.MAX_SAFE_INTEGER): IdentityRecord[] {
    return this.stmts.devices.all(limit).map((r) => JSON.parse(r.record));
  }

  modulesOf(deviceId: string): IdentityRecord[] {
    return this.stmts.modulesOf.all(deviceId).map((r) => JSON.parse(r.record));
  }

  allModules(): IdentityRecord[] {
    return this.stmts.allModules.all().map((r) => JSON.parse(r.record));
  }

  countDevices(): number {
    return this.stmts.countDevices.get()!.n;
  }

  policies(): SharedAccessPolicy[] {
    return this.stmts.policies.all().map((r) => JSON.parse(r.record));
  }

  putPolicy(policy: SharedAccessPolicy): void {
    this.stmts.putPolicy.run(policy.keyName, JSON.stringify(policy));
  }

  /** Runs `fn` in one transaction: all of its writes land, or none. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn);
  }

  /** Runs `fn` once the current transaction has committed (see Db.afterCommit). */
  afterCommit(fn: () => void): void {
    this.db.afterCommit(fn);
  }
}
