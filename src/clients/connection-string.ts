import { ExitCode, ToolkitError } from './errors.js';
import type { HubTransport } from './hub-transport.js';
import { describeIdentity, type Identity } from './identity.js';

export type ConnectionStringKind = 'service' | 'device' | 'eventhub';

/**
 * A hub (service) connection string, parsed: a shared access policy of the hub. Parsed once where
 * it is read, and carried as is to the SDK clients.
 */
export interface ServiceConnection {
  kind: 'service';
  connectionString: string;
  hostName: string;
  keyName: string;
  key: string;
  transport: HubTransport;
}

/** A device or a module connection string, parsed (a module's has moduleId). */
export interface DeviceConnection extends Identity {
  kind: 'device';
  connectionString: string;
  hostName: string;
  /** The shared access key; '' for a device or module that authenticates with a certificate (x509). */
  key: string;
  /** The device's client certificate and its private key (PEM), instead of a key. */
  x509?: { cert: string; key: string };
  /** The SDK's setting for a gateway (host[:port]) that it connects to instead of HostName. */
  gatewayHostName?: string;
  transport: HubTransport;
}

/** An Event Hub-compatible connection string, parsed; @azure/event-hubs reaches it by itself. */
export interface EventHubConnection {
  kind: 'eventhub';
  connectionString: string;
  /** sb://host[:port]/ */
  endpoint: string;
  entityPath: string;
  keyName: string;
  key: string;
}

interface Connections {
  service: ServiceConnection;
  device: DeviceConnection;
  eventhub: EventHubConnection;
}
export type ConnectionOf<K extends ConnectionStringKind> = Connections[K];

const REQUIRED: Record<ConnectionStringKind, string[]> = {
  service: ['HostName', 'SharedAccessKeyName', 'SharedAccessKey'],
  device: ['HostName', 'DeviceId', 'SharedAccessKey'],
  eventhub: ['Endpoint', 'SharedAccessKeyName', 'SharedAccessKey', 'EntityPath'],
};

const WHERE: Record<ConnectionStringKind, string> = {
  service: 'a hub connection string (portal: IoT hub > Shared access policies > iothubowner)',
  device: 'a device connection string (portal: IoT hub > Devices > your device)',
  eventhub: "an Event Hub-compatible connection string (portal: IoT hub > Built-in endpoints), with ';EntityPath=<name>'",
};

/**
 * Parses `Key=Value;Key=Value`, checks the fields the SDKs need and returns them typed, so that a
 * bad string gets a message that names the missing or invalid field (or says that it is another
 * kind of connection string) instead of an SDK stack trace. `transport` is how to reach a local hub.
 */
export function parseConnection<K extends ConnectionStringKind>(kind: K, text: string, transport: HubTransport = {}): ConnectionOf<K> {
  const fields = splitFields(text, kind);
  const actual = kindOf(fields);
  if (actual && actual !== kind) throw wrongKind(kind, fields);
  // A device that authenticates with a certificate has x509=true instead of a key (its certificate comes apart).
  const x509 = kind === 'device' && fields.x509?.toLowerCase() === 'true';
  for (const name of REQUIRED[kind]) {
    if (!fields[name] && !(x509 && name === 'SharedAccessKey')) throw invalid(kind, `${name} is missing`);
  }
  if (kind === 'device' && fields.ModuleId === '') throw invalid(kind, 'ModuleId is empty');
  const key = x509 ? '' : fields.SharedAccessKey!;
  if (!x509 && (!/^[A-Za-z0-9+/]+={0,2}$/.test(key) || Buffer.from(key, 'base64').length < 16)) {
    throw invalid(kind, 'SharedAccessKey is not a base64 key');
  }
  if (kind !== 'eventhub' && !/^[A-Za-z0-9.-]+(:\d+)?$/.test(fields.HostName!))
    throw invalid(kind, `HostName '${fields.HostName}' is not a host name`);
  if (kind === 'eventhub' && !/^sb:\/\/[^/]+\/?$/.test(fields.Endpoint!))
    throw invalid(kind, `Endpoint '${fields.Endpoint}' is not sb://<host>/`);
  const connectionString = text.trim();
  const parsed: Connections[ConnectionStringKind] =
    kind === 'service'
      ? { kind, connectionString, hostName: fields.HostName!, keyName: fields.SharedAccessKeyName!, key, transport }
      : kind === 'device'
        ? {
            kind,
            connectionString,
            hostName: fields.HostName!,
            deviceId: fields.DeviceId!,
            ...(fields.ModuleId ? { moduleId: fields.ModuleId } : {}),
            key,
            ...(fields.GatewayHostName ? { gatewayHostName: fields.GatewayHostName } : {}),
            transport,
          }
        : {
            kind: 'eventhub',
            connectionString,
            endpoint: fields.Endpoint!,
            entityPath: fields.EntityPath!,
            keyName: fields.SharedAccessKeyName!,
            key,
          };
  return parsed as ConnectionOf<K>;
}

/**
 * The connection of a device or module with this key, on the service connection's hub and
 * transport; its string is built as the portal shows it.
 */
export function identityConnectionWithKey(service: ServiceConnection, identity: Identity, key: string): DeviceConnection {
  return {
    kind: 'device',
    connectionString: deviceConnectionString(service.hostName, identity.deviceId, key, identity.moduleId),
    hostName: service.hostName,
    deviceId: identity.deviceId,
    ...(identity.moduleId ? { moduleId: identity.moduleId } : {}),
    key,
    transport: service.transport,
  };
}

/**
 * The connection of a device or module that authenticates with a client certificate: the SDK's
 * `x509=true` connection string, on the hub and transport of `base` (a connection to that hub).
 */
export function certificateConnection(
  base: { hostName: string; transport: HubTransport },
  identity: Identity,
  x509: { cert: string; key: string },
): DeviceConnection {
  const { hostName, transport } = base;
  const module = identity.moduleId ? `ModuleId=${identity.moduleId};` : '';
  return {
    kind: 'device',
    connectionString: `HostName=${hostName};DeviceId=${identity.deviceId};${module}x509=true`,
    hostName,
    deviceId: identity.deviceId,
    ...(identity.moduleId ? { moduleId: identity.moduleId } : {}),
    key: '',
    x509,
    transport,
  };
}

/**
 * A device or module connection string, built as the portal shows it. It lives here, not beside the
 * device clients, so that service-side commands that print one do not load the device SDK.
 */
export function deviceConnectionString(hostName: string, deviceId: string, key: string, moduleId?: string): string {
  return `HostName=${hostName};DeviceId=${deviceId};${moduleId ? `ModuleId=${moduleId};` : ''}SharedAccessKey=${key}`;
}

function splitFields(text: string, kind: ConnectionStringKind): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const part of text.trim().split(';')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw invalid(kind, `'${part.slice(0, 20)}' is not Key=Value`);
    fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return fields;
}

/** Which kind of connection string the fields make, by the fields only that kind has. */
function kindOf(fields: Record<string, string>): ConnectionStringKind | undefined {
  if (fields.Endpoint) return 'eventhub';
  if (fields.DeviceId) return 'device';
  if (fields.HostName && fields.SharedAccessKeyName) return 'service';
  return undefined;
}

function wrongKind(expected: ConnectionStringKind, fields: Record<string, string>): ToolkitError {
  const actual = fields.Endpoint
    ? 'an Event Hub-compatible connection string'
    : fields.DeviceId
      ? `the connection string of ${describeIdentity({ deviceId: fields.DeviceId, moduleId: fields.ModuleId || undefined })}`
      : `a hub connection string (policy ${fields.SharedAccessKeyName})`;
  return new ToolkitError(`Wrong kind of connection string: this is ${actual}, where ${WHERE[expected]} is expected.`, ExitCode.usage);
}

function invalid(kind: ConnectionStringKind, detail: string): ToolkitError {
  return new ToolkitError(`Malformed ${kind} connection string: ${detail}. Expected ${WHERE[kind]}.`, ExitCode.usage);
}
