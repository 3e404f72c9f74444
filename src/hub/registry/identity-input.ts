import { hubErrors } from '../errors.js';
import { isWellFormedText } from '../json-bounds.js';
import type { IdentityKey } from './registry.js';

/** What the registry takes from a PUT /devices/{id} or /devices/{id}/modules/{id} body, validated. */
export interface IdentityInput {
  status?: 'enabled' | 'disabled';
  statusReason?: string;
  managedBy?: string;
  /** How the identity authenticates; absent keeps it (on update) or means 'sas' (on create). */
  authenticationType?: AuthenticationType;
  /** Given keys ('sas'); absent means generated (on create) or kept (on update). */
  primaryKey?: string;
  secondaryKey?: string;
  /** 'selfSigned': the client certificates' SHA-1 or SHA-256 thumbprints, upper-case hex. */
  primaryThumbprint?: string;
  secondaryThumbprint?: string;
  iotEdge?: boolean;
  /** IoT Edge scopes (devices only): '' and [] clear them, absent keeps them. */
  deviceScope?: string;
  parentScopes?: string[];
}

// "Understand the identity registry": statusReason is a 128-character string of any UTF-8. IoT Hub
// documents no length for a module's managedBy; the hub holds it to the same 128.
const MAX_TEXT_LENGTH = 128;
// IoT Hub takes symmetric keys of 16 to 64 bytes, base64 ("The primary and secondary keys must be
// between 16 and 64 bytes in length").
const KEY_BYTES = { min: 16, max: 64 };
const AUTHENTICATION_TYPES = ['sas', 'selfSigned', 'certificateAuthority', 'none'] as const;
export type AuthenticationType = Exclude<(typeof AUTHENTICATION_TYPES)[number], 'none'>;
// A thumbprint is the hex of the certificate's SHA-1 (40 digits) or SHA-256 (64 digits).
const THUMBPRINT = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i;

/**
 * Validates an identity body as IoT Hub does: every field the registry stores has its type and
 * limits; null means absent, as the SDKs' own Device objects send it. Read-only fields (etag,
 * generationId, connectionState, cloudToDeviceMessageCount...) and unknown ones are ignored, as
 * IoT Hub ignores them: a device read, changed and sent back carries them all. Ids in the body, when
 * given, must be the ones in the path. Anything else is a 400 ArgumentInvalid that names the field.
 */
export function parseIdentityInput(body: unknown, key: IdentityKey): IdentityInput {
  const input = object(body, 'The request body');
  if (!input) throw hubErrors.argumentInvalid('The request body must be a JSON object');
  sameId(input, 'deviceId', key.deviceId);
  if (key.moduleId !== undefined) sameId(input, 'moduleId', key.moduleId);
  const authentication = object(field(input, 'authentication'), 'authentication');
  const capabilities = object(field(input, 'capabilities'), 'capabilities');
  return {
    status: status(field(input, 'status')),
    statusReason: text(field(input, 'statusReason'), 'statusReason'),
    managedBy: text(field(input, 'managedBy'), 'managedBy'),
    ...(authentication && credentials(authentication)),
    iotEdge: capabilities && boolean(field(capabilities, 'iotEdge'), 'capabilities.iotEdge'),
    deviceScope: scope(field(input, 'deviceScope'), 'deviceScope'),
    parentScopes: scopeList(field(input, 'parentScopes')),
  };
}

type Fields = Record<string, unknown>;

/** An own member (never an inherited one, whatever the body names its keys); null reads as absent. */
function field(obj: Fields, name: string): unknown {
  return Object.hasOwn(obj, name) && obj[name] !== null ? obj[name] : undefined;
}

function object(value: unknown, name: string): Fields | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw hubErrors.argumentInvalid(`${name} must be a JSON object`);
  return value as Fields;
}

function sameId(input: Fields, name: 'deviceId' | 'moduleId', inPath: string): void {
  const value = field(input, name);
  if (value !== undefined && value !== inPath) {
    throw hubErrors.argumentInvalid(`The ${name} in the body does not match the one in the path ('${inPath}')`);
  }
}

/** IoT Hub reads its enums case-insensitively ("Enabled" as the docs write it, "enabled" as it answers). */
function status(value: unknown): IdentityInput['status'] {
  if (value === undefined) return undefined;
  const lower = typeof value === 'string' ? value.toLowerCase() : undefined;
  if (lower === 'enabled' || lower === 'disabled') return lower;
  throw hubErrors.argumentInvalid(`status must be 'enabled' or 'disabled', not ${describe(value)}`);
}

function text(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw hubErrors.argumentInvalid(`${name} must be a string, not ${describe(value)}`);
  if (value.length > MAX_TEXT_LENGTH) {
    throw hubErrors.argumentInvalid(`${name} is ${value.length} characters long; IoT Hub allows at most ${MAX_TEXT_LENGTH}`);
  }
  if (!isWellFormedText(value)) throw hubErrors.argumentInvalid(`${name} is not well-formed Unicode (a lone surrogate)`);
  return value;
}

// A scope is ms-azure-iot-edge://{deviceId}-{generationId}: a device id (128) and more.
const MAX_SCOPE_LENGTH = 256;

function scope(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw hubErrors.argumentInvalid(`${name} must be a string, not ${describe(value)}`);
  if (value.length > MAX_SCOPE_LENGTH) throw hubErrors.argumentInvalid(`${name} is longer than ${MAX_SCOPE_LENGTH} characters`);
  return value;
}

function scopeList(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw hubErrors.argumentInvalid(`parentScopes must be an array of scopes, not ${describe(value)}`);
  if (value.length > 1) throw hubErrors.argumentInvalid(`A device has at most one parent; parentScopes names ${value.length}`);
  return value.map((item, i) => scope(item, `parentScopes[${i}]`)!);
}

function boolean(value: unknown, name: string): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  throw hubErrors.argumentInvalid(`${name} must be true or false, not ${describe(value)}`);
}

/**
 * The authentication section as IoT Hub takes it: 'sas' with symmetric keys (given or generated),
 * 'selfSigned' with one or two certificate thumbprints, 'certificateAuthority' with neither (the
 * certificate's chain is what counts). A type that is absent is inferred as the SDKs infer it: a
 * thumbprint means 'selfSigned'. Keys with an X.509 type, or thumbprints with another, are refused.
 */
function credentials(
  authentication: Fields,
): Pick<IdentityInput, 'authenticationType' | 'primaryKey' | 'secondaryKey' | 'primaryThumbprint' | 'secondaryThumbprint'> {
  const keys = object(field(authentication, 'symmetricKey'), 'authentication.symmetricKey');
  const primaryKey = keys && symmetricKey(field(keys, 'primaryKey'), 'primaryKey');
  const secondaryKey = keys && symmetricKey(field(keys, 'secondaryKey'), 'secondaryKey');
  const thumbprints = object(field(authentication, 'x509Thumbprint'), 'authentication.x509Thumbprint');
  const primaryThumbprint = thumbprints && thumbprint(field(thumbprints, 'primaryThumbprint'), 'primaryThumbprint');
  const secondaryThumbprint = thumbprints && thumbprint(field(thumbprints, 'secondaryThumbprint'), 'secondaryThumbprint');
  const hasKeys = primaryKey !== undefined || secondaryKey !== undefined;
  const hasThumbprints = primaryThumbprint !== undefined || secondaryThumbprint !== undefined;
  const type = field(authentication, 'type');
  const known = typeof type === 'string' ? AUTHENTICATION_TYPES.find((t) => t.toLowerCase() === type.toLowerCase()) : undefined;
  if (type !== undefined && !known) {
    throw hubErrors.argumentInvalid(`authentication.type must be one of ${AUTHENTICATION_TYPES.join(', ')}, not ${describe(type)}`);
  }
  if (known === 'none')
    throw hubErrors.argumentInvalid(
      "authentication.type 'none' is not supported by the local hub; use 'sas', 'selfSigned' or 'certificateAuthority'",
    );
  const authenticationType = known ?? (hasThumbprints ? 'selfSigned' : undefined);
  if (hasKeys && hasThumbprints) throw hubErrors.argumentInvalid('An identity cannot specify both symmetric keys and thumbprints');
  if (authenticationType === 'sas' && hasThumbprints)
    throw hubErrors.argumentInvalid("An identity with authentication.type 'sas' cannot specify thumbprints");
  if (authenticationType !== undefined && authenticationType !== 'sas' && hasKeys) {
    throw hubErrors.argumentInvalid(`An identity with authentication.type '${authenticationType}' cannot specify symmetric keys`);
  }
  if (authenticationType === 'certificateAuthority' && hasThumbprints) {
    throw hubErrors.argumentInvalid(
      "An identity with authentication.type 'certificateAuthority' cannot specify thumbprints: its certificate's chain authenticates it",
    );
  }
  if (authenticationType === 'selfSigned' && primaryThumbprint === undefined) {
    throw hubErrors.argumentInvalid(
      "An identity with authentication.type 'selfSigned' needs authentication.x509Thumbprint.primaryThumbprint",
    );
  }
  return { authenticationType, primaryKey, secondaryKey, primaryThumbprint, secondaryThumbprint };
}

/** An empty thumbprint is none (the SDKs send null or ''); a given one is SHA-1 or SHA-256 hex, kept upper-case. */
function thumbprint(value: unknown, name: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  const where = `authentication.x509Thumbprint.${name}`;
  if (typeof value !== 'string') throw hubErrors.argumentInvalid(`${where} must be a string, not ${describe(value)}`);
  if (!THUMBPRINT.test(value))
    throw hubErrors.argumentInvalid(
      `${where} must be a SHA-1 (40 hex digits) or SHA-256 (64 hex digits) thumbprint, not ${describe(value)}`,
    );
  return value.toUpperCase();
}

/** An empty key means "generate one" (the SDKs send '' for that); a given one must be base64 of 16 to 64 bytes. */
function symmetricKey(value: unknown, name: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  const where = `authentication.symmetricKey.${name}`;
  if (typeof value !== 'string') throw hubErrors.argumentInvalid(`${where} must be a base64 string, not ${describe(value)}`);
  const bytes = /^[A-Za-z0-9+/]*={0,2}$/.test(value) && value.length % 4 === 0 ? Buffer.from(value, 'base64') : undefined;
  if (!bytes || bytes.toString('base64') !== value) throw hubErrors.argumentInvalid(`${where} is not base64`);
  if (bytes.length < KEY_BYTES.min || bytes.length > KEY_BYTES.max) {
    throw hubErrors.argumentInvalid(
      `The primary and secondary keys must be between ${KEY_BYTES.min} and ${KEY_BYTES.max} bytes in length; ${where} has ${bytes.length}`,
    );
  }
  return value;
}

/** A value as an error message shows it: short, and never a whole large document. */
function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 40)}...` : value}'`;
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : String(value);
}
