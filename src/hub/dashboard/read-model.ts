import type { IdentityRecord } from '../store/identity-store.js';
import type { Registry } from '../registry/registry.js';
import type { Twins } from '../twins/twin-service.js';
import type { Presence } from '../registry/presence.js';
import type { LogLine } from '../log.js';
import { twinIdentity } from '../service-api/twin-routes.js';

/** A device or a module as the dashboard lists it: no keys (a connection string is asked for one at a time). */
export interface IdentityView {
  deviceId: string;
  moduleId?: string;
  /** Devices only: modules have no status of their own. */
  status?: 'enabled' | 'disabled';
  statusReason?: string;
  /** Live: whether the identity holds an MQTT connection now. */
  connectionState: 'Connected' | 'Disconnected';
  lastActivityTime: string;
  authenticationType: string;
  modelId: string;
  twinVersion: number;
}

/** The hub view: what runs where, how busy it is, what went wrong lately. */
export interface HubOverview {
  hostName: string;
  ports: { tls: number; eventHub: number };
  startedAt: string;
  uptimeSeconds: number;
  counts: { devices: number; modules: number };
  connections: { devices: number; dashboardStreams: number };
  telemetry: { perSecond: number; sinceStart: number };
  methodsInFlight: number;
  /** Cloud-to-device messages queued, by device (a device with an empty queue is left out). */
  cloudToDevice: Record<string, number>;
  /** The latest warn and error lines of the hub log, newest last. */
  recentProblems: LogLine[];
}

/** Devices first, each followed by its modules, as the registry and the twins know them, with the live connection state. */
export function identityViews(registry: Registry, twins: Twins, presence: Presence): IdentityView[] {
  const modules = new Map<string, IdentityRecord[]>();
  for (const module of registry.allModules()) modules.set(module.deviceId, [...(modules.get(module.deviceId) ?? []), module]);
  const view = (record: IdentityRecord): IdentityView => {
    const key = record.moduleId ? { deviceId: record.deviceId, moduleId: record.moduleId } : { deviceId: record.deviceId };
    const twin = twins.toDocument(key, twinIdentity(record));
    return {
      ...key,
      ...(record.moduleId ? {} : { status: record.status, ...(record.statusReason ? { statusReason: record.statusReason } : {}) }),
      connectionState: presence.isConnected(key) ? 'Connected' : 'Disconnected',
      lastActivityTime: twin.lastActivityTime,
      authenticationType: twin.authenticationType,
      modelId: twin.modelId,
      twinVersion: twin.version,
    };
  };
  return registry.listDevices().flatMap((device) => [view(device), ...(modules.get(device.deviceId) ?? []).map(view)]);
}

/** A device or module connection string, as the portal shows it (the toolkit's commands take it as it is). */
export function identityConnectionString(hostName: string, record: IdentityRecord): string {
  // An X.509 identity's connection string has no key: the certificate is given beside it (x509=true).
  const credential = (record.authenticationType ?? 'sas') === 'sas' ? `SharedAccessKey=${record.primaryKey}` : 'x509=true';
  return `HostName=${hostName};DeviceId=${record.deviceId};${record.moduleId ? `ModuleId=${record.moduleId};` : ''}${credential}`;
}
