import { hubErrors } from '../errors.js';
import { isJsonObject, type JsonObject } from './json.js';

/** The read-only members IoT Hub puts at the top of desired and reported. */
const systemKeys = ['$metadata', '$version'];

/**
 * A section without `$metadata` and `$version`. IoT Hub ignores them in writes: the .NET samples'
 * get-modify-update pattern sends them back with every change. Deeper `$` keys stay, and are
 * rejected by validation.
 */
export function withoutSystemKeys(section: JsonObject): JsonObject {
  const rest = { ...section };
  for (const key of systemKeys) delete rest[key];
  return rest;
}

/**
 * The writable sections of a service twin request (PATCH or PUT body): `tags` and
 * `properties.desired`; undefined when absent, null when the body sets the section to null (which
 * IoT Hub reads as "remove every property of it"). Other members are ignored.
 */
export function serviceSections(body: unknown): { tags?: JsonObject | null; desired?: JsonObject | null } {
  if (!isJsonObject(body)) throw hubErrors.argumentInvalid('The twin must be a JSON object.');
  const properties = optionalObject(body, 'properties', 'properties') ?? {};
  const desired = optionalObject(properties, 'desired', 'properties.desired');
  return { tags: optionalObject(body, 'tags', 'tags'), desired: desired && withoutSystemKeys(desired) };
}

function optionalObject(parent: JsonObject, key: string, path: string): JsonObject | null | undefined {
  const value = Object.hasOwn(parent, key) ? parent[key] : undefined;
  if (value === undefined || value === null) return value;
  if (!isJsonObject(value)) throw hubErrors.argumentInvalid(`${path} must be a JSON object.`);
  return value;
}
