import { hubErrors } from '../errors.js';
import { isJsonObject, ownValue, setOwn, type JsonObject, type JsonValue } from './json.js';
import type { TwinState } from './twin-state.js';

// IoT Plug and Play's digital twin: a view of a device twin by the conventions of "Understand IoT Plug
// and Play digital twins". A component is an object marked `"__t": "c"` in desired or reported; a
// writable property's reported value is `{ value, ac, av, ad }` (the device's acknowledgement). The
// digital twin shows each property's current value, and its desired value and acknowledgement under
// `$metadata`; components are objects with a `$metadata` of their own.

const COMPONENT_MARKER = '__t';

/** DTDL v2 names: letters, digits (not first) and underscores (not first or last), 1 to 64 characters. */
const DTDL_NAME = /^[A-Za-z](?:[A-Za-z0-9_]{0,62}[A-Za-z0-9])?$/;

const ACK_KEYS = new Set(['value', 'ac', 'av', 'ad']);

/** GET /digitaltwins/{id}: the device twin's properties as a digital twin. */
export function digitalTwinOf(deviceId: string, modelId: string | undefined, state: TwinState): JsonObject {
  const components = new Set([...componentNames(state.desired), ...componentNames(state.reported)]);
  const root = propertiesView(state, components);
  const twin: JsonObject = { $dtId: deviceId, ...root.values };
  for (const name of components) {
    const part = (section: JsonObject): JsonObject => {
      const value = ownValue(section, name);
      return isJsonObject(value) ? value : {};
    };
    const component = propertiesView(
      {
        desired: part(state.desired),
        desiredMetadata: part(state.desiredMetadata),
        reported: part(state.reported),
        reportedMetadata: part(state.reportedMetadata),
      },
      new Set([COMPONENT_MARKER]),
    );
    setOwn(twin, name, { ...component.values, $metadata: component.metadata });
  }
  twin.$metadata = { ...(modelId ? { $model: modelId } : {}), ...root.metadata };
  return twin;
}

/**
 * PATCH /digitaltwins/{id}: a JSON Patch (add, replace, remove) on `/{property}`, `/{component}` (whose
 * value carries the `$metadata: {}` marker) or `/{component}/{property}`, turned into the merge patch of
 * desired properties that makes them so. Replacing a component or an object value replaces it whole.
 */
export function desiredPatchOf(operations: unknown, desired: JsonObject): JsonObject {
  if (!Array.isArray(operations) || operations.length === 0) {
    throw hubErrors.argumentInvalid('The digital twin patch must be a JSON Patch: a non-empty array of operations.');
  }
  let next: JsonObject = { ...desired };
  for (const operation of operations) next = apply(next, parseOperation(operation));
  return difference(desired, next);
}

interface Operation {
  op: 'add' | 'replace' | 'remove';
  /** [property] or [component] (isComponent), or [component, property]. */
  path: string[];
  isComponent: boolean;
  value?: JsonValue;
}

function parseOperation(operation: unknown): Operation {
  if (!isJsonObject(operation)) throw hubErrors.argumentInvalid('Each operation of a digital twin patch must be a JSON object.');
  const { op, path, value } = operation;
  if (op !== 'add' && op !== 'replace' && op !== 'remove') {
    throw hubErrors.argumentInvalid(`The operation '${String(op)}' is not supported on a digital twin: use add, replace or remove.`);
  }
  if (typeof path !== 'string' || !path.startsWith('/')) throw hubErrors.argumentInvalid(`The path '${String(path)}' must start with '/'.`);
  const segments = path
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const invalid = segments.find((s) => !DTDL_NAME.test(s));
  if (segments.length > 2 || invalid !== undefined) {
    throw hubErrors.argumentInvalid(
      `The path '${path}' must be /{property}, /{component} or /{component}/{property}, each a DTDL name (letters, digits and underscores, up to 64).`,
    );
  }
  const isComponent = segments.length === 1 && isJsonObject(value) && Object.hasOwn(value, '$metadata');
  if (op === 'remove') return { op, path: segments, isComponent };
  if (value === undefined) throw hubErrors.argumentInvalid(`The ${op} operation on '${path}' has no value.`);
  checkPropertyValue(value, path, isComponent);
  return { op, path: segments, isComponent, value };
}

/** DTDL property values: no arrays, object field names that are DTDL names (the component marker aside). */
function checkPropertyValue(value: JsonValue, path: string, isComponent: boolean): void {
  if (Array.isArray(value))
    throw hubErrors.argumentInvalid(`The value at '${path}' is an array; digital twin properties cannot hold arrays.`);
  if (!isJsonObject(value)) return;
  for (const [key, field] of Object.entries(value)) {
    if (isComponent && key === '$metadata') continue;
    if (!DTDL_NAME.test(key))
      throw hubErrors.argumentInvalid(`The field '${key}' at '${path}' is not a DTDL name (letters, digits and underscores, up to 64).`);
    checkPropertyValue(field, `${path}/${key}`, false);
  }
}

function apply(desired: JsonObject, { op, path, isComponent, value }: Operation): JsonObject {
  const next = { ...desired };
  const [first, property] = path as [string, string | undefined];
  if (property === undefined) {
    if (op === 'remove') delete next[first];
    else if (isComponent) {
      const { $metadata: _marker, ...properties } = value as JsonObject;
      setOwn(next, first, { [COMPONENT_MARKER]: 'c', ...properties });
    } else setOwn(next, first, value!);
    return next;
  }
  const current = ownValue(next, first);
  const component: JsonObject = isJsonObject(current) ? { ...current } : {};
  if (op === 'remove') {
    if (!isJsonObject(current)) return next;
    delete component[property];
  } else setOwn(component, property, value!);
  setOwn(next, first, { [COMPONENT_MARKER]: 'c', ...component });
  return next;
}

/** The merge patch that turns `before` into `after`: changed keys with their values, removed ones null. */
function difference(before: JsonObject, after: JsonObject): JsonObject {
  const patch: JsonObject = {};
  for (const key of Object.keys(before)) if (!Object.hasOwn(after, key)) setOwn(patch, key, null);
  for (const [key, value] of Object.entries(after)) {
    const old = ownValue(before, key);
    if (isJsonObject(old) && isJsonObject(value)) {
      const inner = difference(old, value);
      if (Object.keys(inner).length > 0) setOwn(patch, key, inner);
    } else if (JSON.stringify(old) !== JSON.stringify(value)) setOwn(patch, key, value);
  }
  return patch;
}

function componentNames(section: JsonObject): string[] {
  return Object.keys(section).filter((name) => {
    const value = section[name];
    return isJsonObject(value) && value[COMPONENT_MARKER] === 'c';
  });
}

interface Sections {
  desired: JsonObject;
  desiredMetadata: JsonObject;
  reported: JsonObject;
  reportedMetadata: JsonObject;
}

/** The values and `$metadata` entries of one component (or the root, skipping its components). */
function propertiesView(sections: Sections, skip: Set<string>): { values: JsonObject; metadata: JsonObject } {
  const values: JsonObject = {};
  const desiredParts = new Map<string, JsonObject>();
  const reportedParts = new Map<string, JsonObject>();
  for (const [name, value] of Object.entries(sections.desired)) {
    if (skip.has(name)) continue;
    const version = metadataOf(sections.desiredMetadata, name).$lastUpdatedVersion;
    desiredParts.set(name, { desiredValue: value, ...(typeof version === 'number' ? { desiredVersion: version } : {}) });
  }
  for (const [name, value] of Object.entries(sections.reported)) {
    if (skip.has(name)) continue;
    const ack = acknowledgement(value);
    setOwn(values, name, ack ? ack.value! : value);
    const lastUpdateTime = metadataOf(sections.reportedMetadata, name).$lastUpdated;
    reportedParts.set(name, {
      ...(ack?.av !== undefined ? { ackVersion: ack.av } : {}),
      ...(ack ? { ackCode: ack.ac! } : {}),
      ...(ack?.ad !== undefined ? { ackDescription: ack.ad } : {}),
      ...(typeof lastUpdateTime === 'string' ? { lastUpdateTime } : {}),
    });
  }
  const metadata: JsonObject = {};
  for (const name of new Set([...desiredParts.keys(), ...reportedParts.keys()])) {
    setOwn(metadata, name, { ...desiredParts.get(name), ...reportedParts.get(name) });
  }
  return { values, metadata };
}

/** A writable property's reported value by the convention `{ value, ac, av?, ad? }`; undefined for any other value. */
function acknowledgement(value: JsonValue): JsonObject | undefined {
  if (!isJsonObject(value) || !Object.hasOwn(value, 'value') || typeof value.ac !== 'number') return undefined;
  return Object.keys(value).every((key) => ACK_KEYS.has(key)) ? value : undefined;
}

function metadataOf(metadata: JsonObject, name: string): JsonObject {
  const entry = ownValue(metadata, name);
  return isJsonObject(entry) ? entry : {};
}
