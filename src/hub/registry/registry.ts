import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { hubErrors } from '../errors.js';
import { generateKey } from '../auth/policies.js';
import type { ActivityChange, ConnectionStateChange, IdentityRecord, IdentityStore } from '../store/identity-store.js';
import { parseIfMatch } from '../if-match.js';
import { validateId } from './identity-ids.js';
import type { IdentityInput } from './identity-input.js';
import { deviceScopes } from './edge-scopes.js';

/** How often identities' last activity is written at most (see recordActivity). */
const ACTIVITY_WRITE_MS = 1000;

export interface IdentityKey {
  deviceId: string;
  moduleId?: string;
}

/** The etag IoT Hub shows: base64 of a counter, opaque to clients. */
export function etagOf(record: IdentityRecord): string {
  return Buffer.from(String(record.etagCounter)).toString('base64');
}

/** What changed in the registry, announced once the change has committed. */
export interface RegistryEvents {
  created: [IdentityKey];
  /** One per identity removed: deleting a device announces its modules too. */
  deleted: [IdentityKey];
  disabled: [IdentityKey];
  rekeyed: [IdentityKey];
}

/**
 * What lives and dies with an identity (its twin, its MQTT session): created and removed by explicit
 * calls inside the registry's own transaction, so that they commit, or roll back, with the identity.
 */
export interface IdentityDependents {
  created(key: IdentityKey): void;
  deleted(key: IdentityKey): void;
}

/**
 * The identity registry: devices, their modules, keys and status. Its dependents are called inside
 * each write's transaction; its events ('created', 'deleted', 'disabled' when a device or module is
 * disabled, 'rekeyed' when its keys change) are emitted after the commit, for those who react to a
 * change (closing connections, refreshing views) and must neither see one that rolls back nor undo it.
 */
export class Registry extends EventEmitter<RegistryEvents> {
  /** Connection states to write, the latest per identity. */
  private readonly connectionStates = new Map<string, ConnectionStateChange>();
  private connectionStatesWrite?: NodeJS.Immediate;
  /** Last activity to write, the latest per identity. */
  private readonly activity = new Map<string, { deviceId: string; moduleId: string; atMs: number }>();
  private activityWrite?: NodeJS.Timeout;

  constructor(
    private readonly store: IdentityStore,
    private readonly dependents: IdentityDependents,
  ) {
    super();
  }

  get(deviceId: string, moduleId?: string): IdentityRecord {
    const record = this.store.get(deviceId, moduleId ?? '');
    if (record) return record;
    if (moduleId && this.store.get(deviceId)) throw hubErrors.moduleNotFound(deviceId, moduleId);
    throw hubErrors.deviceNotFound(deviceId);
  }

  find(deviceId: string, moduleId?: string): IdentityRecord | undefined {
    return this.store.get(deviceId, moduleId ?? '');
  }

  listDevices(top?: number): IdentityRecord[] {
    return this.store.devices(top);
  }

  listModules(deviceId: string): IdentityRecord[] {
    this.get(deviceId);
    return this.store.modulesOf(deviceId);
  }

  allModules(): IdentityRecord[] {
    return this.store.allModules();
  }

  countDevices(): number {
    return this.store.countDevices();
  }

  /**
   * PUT semantics as IoT Hub has them: without If-Match it creates and a duplicate is a 409; with
   * If-Match it updates ('*' or the current etag), and a stale etag is a 412.
   */
  createOrUpdate(key: IdentityKey, input: IdentityInput, ifMatch: string | undefined): { record: IdentityRecord; created: boolean } {
    validateId('device', key.deviceId);
    if (key.moduleId !== undefined) validateId('module', key.moduleId);
    const moduleId = key.moduleId ?? '';
    return this.store.transaction(() => {
      if (moduleId && !this.store.get(key.deviceId)) throw hubErrors.deviceNotFound(key.deviceId);
      const existing = this.store.get(key.deviceId, moduleId);
      const etag = parseIfMatch(ifMatch);
      if (existing && etag === undefined) {
        throw moduleId ? hubErrors.moduleAlreadyExists(key.deviceId, moduleId) : hubErrors.deviceAlreadyExists(key.deviceId);
      }
      if (existing && etag !== '*' && etag !== etagOf(existing)) {
        throw hubErrors.preconditionFailed(
          `The etag '${etag}' does not match the current etag of '${key.deviceId}${moduleId ? '/' + moduleId : ''}'`,
        );
      }
      const updated = existing ? this.applyUpdate(existing, input) : this.newRecord(key.deviceId, moduleId, input);
      const record = moduleId ? updated : { ...updated, ...deviceScopes(updated, input, existing, (id) => this.store.get(id)) };
      this.store.put(record);
      if (!existing) this.dependents.created(key);
      const event = !existing
        ? 'created'
        : existing.status === 'enabled' && record.status === 'disabled'
          ? 'disabled'
          : credentialsChanged(existing, record)
            ? 'rekeyed'
            : undefined;
      if (event) this.store.afterCommit(() => this.emit(event, key));
      return { record, created: !existing };
    });
  }

  /** Runs several registry writes in one transaction: all of them land, or none. */
  batch<T>(fn: () => T): T {
    return this.store.transaction(fn);
  }

  /** DELETE with If-Match ('*' or the etag); deleting a device deletes its modules. */
  delete(key: IdentityKey, ifMatch: string | undefined): void {
    const moduleId = key.moduleId ?? '';
    this.store.transaction(() => {
      const existing = this.get(key.deviceId, key.moduleId);
      const etag = parseIfMatch(ifMatch);
      if (etag !== undefined && etag !== '*' && etag !== etagOf(existing)) {
        throw hubErrors.preconditionFailed(`The etag '${etag}' does not match the current etag of '${key.deviceId}'`);
      }
      const removed = moduleId
        ? [key]
        : [key, ...this.store.modulesOf(key.deviceId).map((m) => ({ deviceId: m.deviceId, moduleId: m.moduleId }))];
      this.store.delete(key.deviceId, moduleId);
      // Modules before their device: what goes with a device (its twin) takes its modules' along.
      for (const k of [...removed].reverse()) this.dependents.deleted(k);
      this.store.afterCommit(() => removed.forEach((k) => this.emit('deleted', k)));
    });
  }

  /**
   * Records a connect or disconnect; the registry shows it as connectionState and lastActivityTime, and
   * a model id the connect announced (IoT Plug and Play) as the twin's modelId.
   * Written at the end of this turn of the event loop, in one commit with the others of the turn: a
   * burst of connects shares one write (per connect, it cost as much hub CPU as the SAS check and the
   * identity read together). IoT Hub's own connectionState is documented as lagging, too.
   */
  setConnectionState(key: IdentityKey, connected: boolean, modelId?: string): void {
    const moduleId = key.moduleId ?? '';
    const id = `${key.deviceId}/${moduleId}`;
    // A connect and a disconnect in the same turn: the latest state, and the model id the connect announced.
    const announced = modelId ?? this.connectionStates.get(id)?.modelId;
    this.connectionStates.set(id, {
      deviceId: key.deviceId,
      moduleId,
      state: connected ? 'Connected' : 'Disconnected',
      at: new Date().toISOString(),
      ...(announced !== undefined ? { modelId: announced } : {}),
    });
    this.connectionStatesWrite ??= setImmediate(() => this.flushConnectionStates());
  }

  /**
   * Records that an identity sent or received a message, for its lastActivityTime ("the last time the
   * device or module authenticated, sent a message, or received a message"; connects and disconnects
   * set it with the connection state). Written at most once a second, all identities' in one commit:
   * a write per message would cost the D2C path as much as the message's own commit.
   */
  recordActivity(key: IdentityKey): void {
    const moduleId = key.moduleId ?? '';
    this.activity.set(`${key.deviceId}/${moduleId}`, { deviceId: key.deviceId, moduleId, atMs: Date.now() });
    this.activityWrite ??= setTimeout(() => this.flushActivity(), ACTIVITY_WRITE_MS).unref();
  }

  /** Writes the connection states and activity not written yet (the hub calls it before it closes the store). */
  flush(): void {
    this.flushConnectionStates();
    this.flushActivity();
  }

  private flushConnectionStates(): void {
    clearImmediate(this.connectionStatesWrite);
    this.connectionStatesWrite = undefined;
    if (this.connectionStates.size === 0) return;
    const changes = [...this.connectionStates.values()];
    this.connectionStates.clear();
    this.store.putConnectionStates(changes);
  }

  private flushActivity(): void {
    clearTimeout(this.activityWrite);
    this.activityWrite = undefined;
    if (this.activity.size === 0) return;
    const changes: ActivityChange[] = [...this.activity.values()].map(({ deviceId, moduleId, atMs }) => ({
      deviceId,
      moduleId,
      at: new Date(atMs).toISOString(),
    }));
    this.activity.clear();
    this.store.putActivity(changes);
  }

  private newRecord(deviceId: string, moduleId: string, input: IdentityInput): IdentityRecord {
    const now = new Date().toISOString();
    const never = '0001-01-01T00:00:00Z';
    return {
      deviceId,
      moduleId,
      generationId: generationId(),
      etagCounter: 1,
      status: input.status ?? 'enabled',
      statusReason: input.statusReason ?? null,
      statusUpdatedTime: now,
      ...credentials(input, undefined),
      managedBy: input.managedBy ?? null,
      connectionState: 'Disconnected',
      connectionStateUpdatedTime: never,
      lastActivityTime: never,
      capabilities: { iotEdge: input.iotEdge === true },
      createdTime: now,
    };
  }

  private applyUpdate(existing: IdentityRecord, input: IdentityInput): IdentityRecord {
    const status = input.status ?? existing.status;
    return {
      ...existing,
      etagCounter: existing.etagCounter + 1,
      status,
      statusReason: input.statusReason ?? existing.statusReason,
      statusUpdatedTime: status !== existing.status ? new Date().toISOString() : existing.statusUpdatedTime,
      ...credentials(input, existing),
      managedBy: input.managedBy ?? existing.managedBy,
      capabilities: { iotEdge: input.iotEdge ?? existing.capabilities.iotEdge },
    };
  }
}

type Credentials = Pick<IdentityRecord, 'authenticationType' | 'primaryKey' | 'secondaryKey' | 'primaryThumbprint' | 'secondaryThumbprint'>;

/**
 * What an identity authenticates with after a create or update: SAS keys (given, kept, or generated
 * when it had none), a self-signed certificate's thumbprints (given or kept), or its CA-signed
 * certificate (nothing to keep). An X.509 identity has no keys ('').
 */
function credentials(input: IdentityInput, existing: IdentityRecord | undefined): Credentials {
  const before = existing && (existing.authenticationType ?? 'sas');
  const type = input.authenticationType ?? before ?? 'sas';
  const none = { primaryKey: '', secondaryKey: '', primaryThumbprint: undefined, secondaryThumbprint: undefined };
  if (type === 'certificateAuthority') return { ...none, authenticationType: type };
  if (type === 'selfSigned') {
    const given = input.primaryThumbprint !== undefined;
    return {
      ...none,
      authenticationType: type,
      primaryThumbprint: given ? input.primaryThumbprint : existing?.primaryThumbprint,
      secondaryThumbprint: given ? input.secondaryThumbprint : existing?.secondaryThumbprint,
    };
  }
  const kept = before === 'sas' ? existing : undefined;
  return {
    ...none,
    authenticationType: 'sas',
    primaryKey: input.primaryKey ?? kept?.primaryKey ?? generateKey(),
    secondaryKey: input.secondaryKey ?? kept?.secondaryKey ?? generateKey(),
  };
}

function credentialsChanged(before: IdentityRecord, after: IdentityRecord): boolean {
  return (
    (before.authenticationType ?? 'sas') !== after.authenticationType ||
    (['primaryKey', 'secondaryKey', 'primaryThumbprint', 'secondaryThumbprint'] as const).some((name) => before[name] !== after[name])
  );
}

function generationId(): string {
  // IoT Hub shows an 18-digit number; a random one serves the same purpose (a new one per re-creation).
  return BigInt('0x' + randomUUID().replace(/-/g, '').slice(0, 15))
    .toString()
    .padStart(18, '6')
    .slice(0, 18);
}
