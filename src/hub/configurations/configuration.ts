// An automatic device configuration as IoT Hub defines it (PUT /configurations/{id}): what the hub
// stores, how a request body becomes one, and how GET shows it.

import { isDeepStrictEqual } from 'node:util';
import { hubErrors } from '../errors.js';
import { isJsonObject, setOwn, type JsonObject } from '../twins/json.js';

/** How IoT Hub shows a configuration in a twin's `configurations`. */
export type ConfigurationStatus = 'Targeted' | 'Applied';
export type TwinConfigurations = Record<string, { status: ConfigurationStatus }>;

export interface ConfigurationContent {
  /** `properties.desired.<path>` → value, for device twins. */
  deviceContent?: JsonObject;
  /** The same for module twins (a target condition `FROM devices.modules WHERE ...`). */
  moduleContent?: JsonObject;
  /** IoT Edge deployments: module name → `{ "properties.desired": {...} }`. */
  modulesContent?: JsonObject;
}

export interface ConfigurationRecord {
  id: string;
  schemaVersion: string;
  labels: Record<string, string>;
  content: ConfigurationContent;
  targetCondition: string;
  priority: number;
  /** Custom metrics: name → query. */
  metricQueries: Record<string, string>;
  createdTimeUtc: string;
  lastUpdatedTimeUtc: string;
  etagCounter: number;
}

/** The mutable part of a configuration, as a request gives it. */
export type ConfigurationInput = Pick<
  ConfigurationRecord,
  'schemaVersion' | 'labels' | 'content' | 'targetCondition' | 'priority' | 'metricQueries'
>;

/** IoT Hub: up to 128 lowercase letters, digits and - : + % _ # * ? ! ( ) , = @ ; $ ' */
const CONFIGURATION_ID = /^[a-z0-9\-:+%_#*?!(),=@;$']{1,128}$/;
/** Label keys and values: up to 128 ASCII characters, `$` reserved at the start of a key. */
const LABEL = /^[\x20-\x7e]{1,128}$/;
const DESIRED_PATH = /^properties\.desired(\.[^.]+)+$/;

export function validateConfigurationId(id: string): void {
  if (!CONFIGURATION_ID.test(id)) {
    throw hubErrors.argumentInvalid(
      `The configuration id '${id.slice(0, 140)}' is invalid: up to 128 lowercase letters, digits and -:+%_#*?!(),=@;$' characters`,
    );
  }
}

export function etagOfConfiguration(record: ConfigurationRecord): string {
  return Buffer.from(String(record.etagCounter)).toString('base64');
}

/** The body of PUT /configurations/{id}; the read-only members (etag, metrics' results, times) are ignored. */
export function parseConfigurationInput(body: unknown, id: string): ConfigurationInput {
  if (!isJsonObject(body)) throw hubErrors.argumentInvalid('The body must be a configuration object');
  if (body.id !== undefined && body.id !== id)
    throw hubErrors.argumentInvalid(`The body's id '${String(body.id)}' differs from '${id}' in the path`);
  const priority = body.priority ?? 0;
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0) {
    throw hubErrors.argumentInvalid('priority must be a whole number, 0 or more');
  }
  const targetCondition = body.targetCondition ?? '';
  if (typeof targetCondition !== 'string') throw hubErrors.invalidConfigurationTargetCondition('targetCondition must be a string');
  return {
    schemaVersion: typeof body.schemaVersion === 'string' ? body.schemaVersion : '1.0',
    labels: parseLabels(body.labels),
    content: parseContent(body.content),
    targetCondition,
    priority,
    metricQueries: parseMetricQueries(body.metrics),
  };
}

function parseLabels(labels: unknown): Record<string, string> {
  if (labels === undefined || labels === null) return {};
  if (!isJsonObject(labels)) throw hubErrors.argumentInvalid('labels must be an object of strings');
  for (const [key, value] of Object.entries(labels)) {
    if (!LABEL.test(key) || key.startsWith('$') || typeof value !== 'string' || !LABEL.test(value)) {
      throw hubErrors.argumentInvalid(
        `The label '${key.slice(0, 140)}' is invalid: keys and values are strings of 1 to 128 ASCII characters, keys not starting with $`,
      );
    }
  }
  return labels as Record<string, string>;
}

function parseMetricQueries(metrics: unknown): Record<string, string> {
  if (metrics === undefined || metrics === null) return {};
  const queries = isJsonObject(metrics) ? (metrics.queries ?? {}) : undefined;
  if (!isJsonObject(queries) || Object.values(queries).some((q) => typeof q !== 'string')) {
    throw hubErrors.invalidConfigurationCustomMetricsQuery('metrics must be {"queries": {"<name>": "<query>"}}');
  }
  return queries as Record<string, string>;
}

function parseContent(content: unknown): ConfigurationContent {
  if (content === undefined || content === null) return {};
  if (!isJsonObject(content)) throw hubErrors.invalidConfigurationContent('content must be an object');
  const parts = (['deviceContent', 'moduleContent', 'modulesContent'] as const).filter((part) => {
    const value = content[part];
    if (value === undefined || value === null) return false;
    if (!isJsonObject(value)) throw hubErrors.invalidConfigurationContent(`content.${part} must be an object`);
    return Object.keys(value).length > 0;
  });
  if (parts.length > 1) throw hubErrors.invalidConfigurationContent(`A configuration has one kind of content, not ${parts.join(' and ')}`);
  const part = parts[0];
  if (part === undefined) return {};
  const value = content[part] as JsonObject;
  if (part !== 'modulesContent') {
    for (const path of Object.keys(value)) {
      if (!DESIRED_PATH.test(path)) {
        throw hubErrors.invalidConfigurationContent(`The content path '${path.slice(0, 140)}' must start with 'properties.desired.'`);
      }
    }
  }
  return { [part]: value };
}

/** A configuration's content may not change once created (IoT Hub: labels, metrics, priority and target condition may). */
export function sameContent(a: ConfigurationContent, b: ConfigurationContent): boolean {
  return isDeepStrictEqual(a, b);
}

/** `properties.desired.a.b: v` entries as one desired-properties patch `{a: {b: v}}`. */
export function desiredPatchOf(content: JsonObject): JsonObject {
  const patch: JsonObject = {};
  for (const [path, value] of Object.entries(content)) {
    const names = path.split('.').slice(2);
    let at = patch;
    for (const name of names.slice(0, -1)) {
      const next = Object.hasOwn(at, name) ? at[name] : undefined;
      if (!isJsonObject(next)) setOwn(at, name, {});
      at = at[name] as JsonObject;
    }
    setOwn(at, names[names.length - 1]!, value);
  }
  return patch;
}
