import { createRegistry } from '../clients/service-clients.js';
import { deviceConnectionString, type ServiceConnection } from '../clients/connection-string.js';
import { explain } from '../clients/sdk-errors.js';
import { DEFAULT_RETRY, withRetry } from '../clients/retry.js';

export interface IdentityResult {
  deviceId: string;
  moduleId?: string;
  /** false when the identity already existed (the tutorials' apps are idempotent). */
  created: boolean;
  status?: string;
  primaryKey: string;
  secondaryKey: string;
  /** The device or module connection string, ready for the device-side commands. */
  connectionString: string;
}

interface RegistryIdentity {
  deviceId: string;
  moduleId?: string;
  status?: string;
  authentication?: { symmetricKey?: { primaryKey?: string; secondaryKey?: string } };
}

function isAlreadyExists(err: unknown): boolean {
  return (err as Error)?.constructor?.name === 'DeviceAlreadyExistsError';
}

function toResult(hostName: string, identity: RegistryIdentity, created: boolean): IdentityResult {
  const primaryKey = identity.authentication?.symmetricKey?.primaryKey ?? '';
  return {
    deviceId: identity.deviceId,
    ...(identity.moduleId ? { moduleId: identity.moduleId } : {}),
    created,
    ...(identity.status ? { status: identity.status } : {}),
    primaryKey,
    secondaryKey: identity.authentication?.symmetricKey?.secondaryKey ?? '',
    connectionString: deviceConnectionString(hostName, identity.deviceId, primaryKey, identity.moduleId),
  };
}

/** CreateDeviceIdentity: registers a device, or returns the one already registered under that id. */
export async function createDevice(connection: ServiceConnection, options: { deviceId: string }): Promise<IdentityResult> {
  const { hostName } = connection;
  const registry = createRegistry(connection);
  try {
    const { responseBody } = await withRetry(() => registry.create({ deviceId: options.deviceId }), {
      ...DEFAULT_RETRY,
      what: `creating device '${options.deviceId}'`,
    });
    return toResult(hostName, responseBody as RegistryIdentity, true);
  } catch (err) {
    if (!isAlreadyExists(err)) throw explain(err, `creating device '${options.deviceId}'`);
  }
  try {
    const { responseBody } = await withRetry(() => registry.get(options.deviceId), {
      ...DEFAULT_RETRY,
      what: `reading device '${options.deviceId}'`,
    });
    return toResult(hostName, responseBody as RegistryIdentity, false);
  } catch (err) {
    throw explain(err, `reading device '${options.deviceId}'`);
  }
}

/** CreateModule: registers the device if needed, then the module (or returns the existing one). */
export async function createModule(
  connection: ServiceConnection,
  options: { deviceId: string; moduleId: string },
): Promise<{ device: IdentityResult; module: IdentityResult }> {
  const device = await createDevice(connection, { deviceId: options.deviceId });
  const { hostName } = connection;
  const registry = createRegistry(connection);
  const what = `module '${options.moduleId}' on device '${options.deviceId}'`;
  try {
    const { responseBody } = await withRetry(() => registry.addModule({ deviceId: options.deviceId, moduleId: options.moduleId }), {
      ...DEFAULT_RETRY,
      what: `creating ${what}`,
    });
    return { device, module: toResult(hostName, responseBody as unknown as RegistryIdentity, true) };
  } catch (err) {
    if (!isAlreadyExists(err)) throw explain(err, `creating ${what}`);
  }
  try {
    const { responseBody } = await withRetry(() => registry.getModule(options.deviceId, options.moduleId), {
      ...DEFAULT_RETRY,
      what: `reading ${what}`,
    });
    return { device, module: toResult(hostName, responseBody as unknown as RegistryIdentity, false) };
  } catch (err) {
    throw explain(err, `reading ${what}`);
  }
}
