import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeCertificate } from '../clients/certificates.js';
import { createRegistry } from '../clients/service-clients.js';
import { ExitCode, ToolkitError } from '../clients/errors.js';
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

export interface X509DeviceResult {
  deviceId: string;
  /** The certificate's SHA-256 thumbprint (upper-case hex), registered as primary and secondary. */
  thumbprint: string;
  /** Where the certificate and its private key (mode 0600) were written. */
  certFile: string;
  keyFile: string;
}

/**
 * Registers a device that authenticates with a self-signed certificate: makes an RSA key and a
 * certificate whose CN is the device id (`{deviceId}-cert.pem` and `{deviceId}-key.pem` in `outDir`),
 * and registers its SHA-256 thumbprint (`selfSigned`). Existing files are never overwritten, and
 * nothing is written unless the device was created.
 */
export async function createX509Device(
  connection: ServiceConnection,
  options: { deviceId: string; outDir: string },
): Promise<X509DeviceResult> {
  const { deviceId, outDir } = options;
  const certFile = join(outDir, `${deviceId}-cert.pem`);
  const keyFile = join(outDir, `${deviceId}-key.pem`);
  for (const file of [certFile, keyFile]) {
    if (existsSync(file)) throw new ToolkitError(`${file} already exists: move it away, or choose another --out-dir.`, ExitCode.usage);
  }
  const { cert, key, sha256 } = makeCertificate({ commonName: deviceId });
  const what = `creating device '${deviceId}'`;
  try {
    const authentication = { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: sha256, secondaryThumbprint: sha256 } };
    await withRetry(() => createRegistry(connection).create({ deviceId, authentication }), { ...DEFAULT_RETRY, what });
  } catch (err) {
    if (isAlreadyExists(err)) {
      throw new ToolkitError(
        `Device '${deviceId}' already exists, with its own credentials: choose another --device-id, or delete it first.`,
        ExitCode.conflict,
      );
    }
    throw explain(err, what);
  }
  mkdirSync(outDir, { recursive: true });
  writeFileSync(keyFile, key, { mode: 0o600, flag: 'wx' });
  writeFileSync(certFile, cert, { mode: 0o644, flag: 'wx' });
  return { deviceId, thumbprint: sha256, certFile, keyFile };
}
