import { existsSync, readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { parseConnection, type ConnectionOf, type ConnectionStringKind } from './connection-string.js';
import { environment } from './environment.js';
import { ExitCode, ToolkitError } from './errors.js';
import type { HubTransport } from './hub-transport.js';
import { runningHubs, selectedHub, type LocalHubProfile } from './local-hub-profile.js';

const ENV_NAME: Record<ConnectionStringKind, string> = {
  service: 'IOTHUB_CONNECTION_STRING',
  device: 'IOTHUB_DEVICE_CONNECTION_STRING',
  eventhub: 'EVENTHUB_CONNECTION_STRING',
};

/** Variables from a .env in the working directory (the process environment wins over it). */
function dotEnv(): Record<string, string> {
  const path = '.env';
  if (!existsSync(path)) return {};
  try {
    return parseEnv(readFileSync(path, 'utf8')) as Record<string, string>;
  } catch {
    throw new ToolkitError('The .env file in this directory could not be read: check its KEY=value lines.', ExitCode.usage);
  }
}

/**
 * Finds a connection string in this order: the --connection-string flag, the environment variable,
 * a .env file in the working directory, then the profile of the running local hub (the one chosen
 * with --hub, or the only one). Nothing found is an error that says how to start a hub or what to set.
 */
export function resolveConnection<K extends ConnectionStringKind>(
  kind: K,
  flag: string | undefined,
  fromProfile?: (p: LocalHubProfile) => string | undefined,
): ConnectionOf<K> {
  const found = findConnection(kind, flag, fromProfile);
  if (!found) {
    throw new ToolkitError(
      `No ${kind === 'eventhub' ? 'Event Hub-compatible' : kind} connection string: start a local hub with 'iothub-tut hub start' (in another terminal), ` +
        `or set ${ENV_NAME[kind]} (or pass --connection-string).`,
      ExitCode.usage,
    );
  }
  return found;
}

/** Like resolveConnection, but undefined when nothing is found, for callers that have another way. */
export function findConnection<K extends ConnectionStringKind>(
  kind: K,
  flag: string | undefined,
  fromProfile?: (p: LocalHubProfile) => string | undefined,
): ConnectionOf<K> | undefined {
  const given = flag || environment()[ENV_NAME[kind]] || dotEnv()[ENV_NAME[kind]];
  // The local hubs are looked at only when needed: an Azure connection string works whatever runs here.
  const profile = given || !fromProfile ? undefined : selectedHub();
  const connectionString = given || (profile && fromProfile?.(profile));
  if (!connectionString) return undefined;
  const connection = parseConnection(kind, connectionString);
  if (connection.kind !== 'eventhub') connection.transport = transportFor(connection.hostName, profile);
  return connection;
}

/**
 * A connection string for the running local hub carries that hub's CA and port (none on IoT Hub's own
 * ports: the SDKs dial those by themselves); any other needs neither.
 */
export function transportFor(hostName: string, profile?: LocalHubProfile): HubTransport {
  const isFor = (hub: LocalHubProfile) => hostName.toLowerCase() === hub.hostName.toLowerCase();
  // Which local hub is meant matters only for a host name that local hubs serve (an Azure one needs none).
  if (!profile && runningHubs().some(isFor)) profile = selectedHub();
  if (!profile || !isFor(profile)) return {};
  try {
    return { ca: readFileSync(profile.caFile, 'utf8'), ...(profile.standardPorts ? {} : { port: profile.port }) };
  } catch {
    throw new ToolkitError(`The local hub's CA certificate ${profile.caFile} cannot be read; restart the hub.`, ExitCode.unavailable);
  }
}
