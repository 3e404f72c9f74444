import { ExitCode, ToolkitError } from './errors.js';

export type ConnectionStringKind = 'service' | 'device' | 'eventhub';

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
 * Parses `Key=Value;Key=Value` and checks the fields the SDKs need, so that a bad string gets a
 * message that names the missing or invalid field instead of an SDK stack trace.
 */
export function parseConnectionString(text: string, kind: ConnectionStringKind): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const part of text.trim().split(';')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw invalid(kind, `'${part.slice(0, 20)}' is not Key=Value`);
    fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  for (const name of REQUIRED[kind]) {
    if (!fields[name]) throw invalid(kind, `${name} is missing`);
  }
  if (kind === 'device' && fields.ModuleId === '') throw invalid(kind, 'ModuleId is empty');
  const key = fields.SharedAccessKey;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key) || Buffer.from(key, 'base64').length < 16) {
    throw invalid(kind, 'SharedAccessKey is not a base64 key');
  }
  if (kind !== 'eventhub' && !/^[A-Za-z0-9.-]+(:\d+)?$/.test(fields.HostName)) throw invalid(kind, `HostName '${fields.HostName}' is not a host name`);
  if (kind === 'eventhub' && !/^sb:\/\/[^/]+\/?$/.test(fields.Endpoint)) throw invalid(kind, `Endpoint '${fields.Endpoint}' is not sb://<host>/`);
  return fields;
}

/**
 * A device or module connection string, built as the portal shows it. It lives here, not beside the
 * device clients, so that service-side commands that print one do not load the device SDK.
 */
export function deviceConnectionString(hostName: string, deviceId: string, key: string, moduleId?: string): string {
  return `HostName=${hostName};DeviceId=${deviceId};${moduleId ? `ModuleId=${moduleId};` : ''}SharedAccessKey=${key}`;
}

function invalid(kind: ConnectionStringKind, detail: string): ToolkitError {
  return new ToolkitError(`Malformed ${kind} connection string: ${detail}. Expected ${WHERE[kind]}.`, ExitCode.usage);
}
