import { hubErrors } from '../errors.js';
import { isWellFormedText } from '../json-bounds.js';
import type { IdentityKey } from './registry.js';

/** What the registry takes from a PUT /devices/{id} or /devices/{id}/modules/{id} body, validated. */
export interface IdentityInput {
  status?: 'enabled' | 'disabled';
  statusReason?: string;
  managedBy?: string;
  /** Given keys; absent means generated (on create) or kept (on update). */
  primaryKey?: string;
  secondaryKey?: string;
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
const AUTHENTICATION_TYPES = ['sas', 'selfSigned', 'certificateAuthority', 'none'];

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
  const keys = authentication && object(field(authentication, 'symmetricKey'), 'authentication.symmetricKey');
  if (authentication) checkAuthentication(authentication);
  const capabilities = object(field(input, 'capabilities'), 'capabilities');
  return {
    status: status(field(input, 'status')),
    statusReason: text(field(input, 'statusReason'), 'statusReason'),
    managedBy: text(field(input, 'managedBy'), 'managedBy'),
    primaryKey: keys && symmetricKey(field(keys, 'primaryKey'), 'primaryKey'),
    secondaryKey: keys && symmetricKey(field(keys, 'secondaryKey'), 'secondaryKey'),
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
 * The local hub authenticates devices and modules with SAS keys only: another type, or a thumbprint,
 * is refused rather than stored as something the hub would not honour.
 */
function checkAuthentication(authentication: Fields): void {
  const type = field(authentication, 'type');
  const known = typeof type === 'string' ? AUTHENTICATION_TYPES.find((t) => t.toLowerCase() === type.toLowerCase()) : undefined;
  if (type !== undefined && !known) {
    throw hubErrors.argumentInvalid(`authentication.type must be one of ${AUTHENTICATION_TYPES.join(', ')}, not ${describe(type)}`);
  }
  if (known && known !== 'sas') {
    throw hubErrors.argumentInvalid(`authentication.type '${known}' is not supported by the local hub, which authenticates with SAS keys only ('sas')`);
  }
  const thumbprints = object(field(authentication, 'x509Thumbprint'), 'authentication.x509Thumbprint');
  for (const name of ['primaryThumbprint', 'secondaryThumbprint']) {
    const thumbprint = thumbprints && field(thumbprints, name);
    if (thumbprint === undefined || thumbprint === '') continue;
    if (typeof thumbprint !== 'string') throw hubErrors.argumentInvalid(`authentication.x509Thumbprint.${name} must be a string, not ${describe(thumbprint)}`);
    throw hubErrors.argumentInvalid('An identity cannot specify both symmetric keys and thumbprints: the local hub authenticates with SAS keys only');
  }
}

/** An empty key means "generate one" (the SDKs send '' for that); a given one must be base64 of 16 to 64 bytes. */
function symmetricKey(value: unknown, name: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  const where = `authentication.symmetricKey.${name}`;
  if (typeof value !== 'string') throw hubErrors.argumentInvalid(`${where} must be a base64 string, not ${describe(value)}`);
  const bytes = /^[A-Za-z0-9+/]*={0,2}$/.test(value) && value.length % 4 === 0 ? Buffer.from(value, 'base64') : undefined;
  if (!bytes || bytes.toString('base64') !== value) throw hubErrors.argumentInvalid(`${where} is not base64`);
  if (bytes.length < KEY_BYTES.min || bytes.length > KEY_BYTES.max) {
    throw hubErrors.argumentInvalid(`The primary and secondary keys must be between ${KEY_BYTES.min} and ${KEY_BYTES.max} bytes in length; ${where} has ${bytes.length}`);
  }
  return value;
}

/** A value as an error message shows it: short, and never a whole large document. */
function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 40)}...` : value}'`;
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : String(value);
}
