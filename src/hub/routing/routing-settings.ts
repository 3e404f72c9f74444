import { checkContainerName, parseStorageAccount, StorageAccountError, type StorageAccount } from '../storage/storage-account.js';

/**
 * A hub's message routing, as IoT Hub's resource keeps it (`properties.routing` of `az iot hub show`,
 * ARM's RoutingProperties): custom endpoints, routes by data source and condition, the fallback route,
 * enrichments. The local hub serves the built-in endpoint `events` and storage container endpoints; a
 * route or an enrichment naming another kind is refused here rather than dropping what it would carry.
 */

/** The data sources a route may take, as ARM spells them. */
export const ROUTING_SOURCES = [
  'DeviceMessages',
  'TwinChangeEvents',
  'DeviceLifecycleEvents',
  'DeviceConnectionStateEvents',
  'DigitalTwinChangeEvents',
  'DeviceJobLifecycleEvents',
] as const;

export type RoutingSource = (typeof ROUTING_SOURCES)[number];

/** The sources the local hub emits nothing for (IoT Hub has retired job lifecycle events); routes of theirs are kept, and get nothing (the hub says so at start). */
export const SILENT_SOURCES: ReadonlySet<RoutingSource> = new Set(['DeviceJobLifecycleEvents']);

/** The built-in endpoint's name in routes and enrichments. */
export const BUILT_IN_ENDPOINT = 'events';

export interface RouteSettings {
  name: string;
  source: RoutingSource;
  /** The routing query; 'true' when the route has none. */
  condition: string;
  /** `events` and storage endpoints' names. */
  endpointNames: string[];
  isEnabled: boolean;
}

export interface EnrichmentSettings {
  key: string;
  /** A static string, `$iothubname`, or a `$twin.tags...`/`$twin.properties.desired...`/`$twin.properties.reported...` path. */
  value: string;
  /** The endpoints whose messages get it. */
  endpointNames: string[];
}

export type StorageEncoding = 'avro' | 'avrodeflate' | 'json';

/** A storage container endpoint (ARM's RoutingStorageContainerProperties): where routed messages are written in batches. */
export interface StorageEndpointSettings {
  name: string;
  storage: StorageAccount;
  containerName: string;
  /** `{iothub}`, `{partition}`, `{YYYY}`, `{MM}`, `{DD}`, `{HH}` and `{mm}`, in any order. */
  fileNameFormat: string;
  batchFrequencyInSeconds: number;
  maxChunkSizeInBytes: number;
  encoding: StorageEncoding;
}

export interface RoutingSettings {
  routes: RouteSettings[];
  /** The fallback route: device messages no route took go to the built-in endpoint, when it is enabled and its condition holds. */
  fallback: { isEnabled: boolean; condition: string };
  enrichments: EnrichmentSettings[];
  storageEndpoints: StorageEndpointSettings[];
}

/** Routing settings the hub cannot take; the message says which entry and why, in one line. */
export class RoutingSettingsError extends Error {}

// IoT Hub's limits: 100 routes (S1-S3), 10 enrichments; names of letters, digits, '-', '.', '_'.
const MAX_ROUTES = 100;
const MAX_ENRICHMENTS = 10;
/** Route names, enrichment keys and endpoint names alike. */
const NAME = /^[A-Za-z0-9\-._]{1,64}$/;
const ENRICHMENT_VALUE = /^(\$iothubname|\$twin\.(tags|properties\.desired|properties\.reported)(\.[^.\s]+)+|[^$].*)$/;
const RESERVED_ENDPOINT_NAMES = new Set(['events', 'filenotifications', '$default']);
const FILE_NAME_TOKENS = ['{iothub}', '{partition}', '{YYYY}', '{MM}', '{DD}', '{HH}', '{mm}'] as const;
const STORAGE_DEFAULTS = {
  fileNameFormat: FILE_NAME_TOKENS.join('/'),
  batchFrequencyInSeconds: 300,
  maxChunkSizeInBytes: 314_572_800,
  encoding: 'avro' as StorageEncoding,
};

/**
 * Reads routing settings from what `az iot hub show` prints (the whole hub, or its `properties`, or
 * `properties.routing`). A route or an enrichment naming an endpoint the hub does not serve is refused.
 */
export function parseRoutingSettings(json: unknown): RoutingSettings {
  const routing = routingObject(json);
  const storageEndpoints = storageEndpointsOf(routing.endpoints);
  const served = new Set([BUILT_IN_ENDPOINT, ...storageEndpoints.map((e) => e.name)]);
  const declared = customEndpointKinds(routing.endpoints);
  const endpointsOf = (what: string, names: unknown): string[] => {
    if (!Array.isArray(names) || names.length === 0 || names.some((n) => typeof n !== 'string')) {
      throw new RoutingSettingsError(
        `${what} needs endpointNames, a list of endpoint names ("${BUILT_IN_ENDPOINT}", or a storage endpoint's)`,
      );
    }
    for (const name of names as string[]) {
      if (served.has(name)) continue;
      const kind = declared.get(name);
      throw new RoutingSettingsError(
        kind
          ? `${what} goes to '${name}', an endpoint of ${kind}: the local hub serves the built-in endpoint '${BUILT_IN_ENDPOINT}' and storageContainers`
          : `${what} goes to '${name}', which is not an endpoint: the local hub serves the built-in endpoint '${BUILT_IN_ENDPOINT}' and storageContainers`,
      );
    }
    return [...new Set(names as string[])];
  };

  const routes = listOf(routing.routes, 'routes').map((entry, i) => {
    const route = objectOf(entry, `routes[${i}]`);
    const name = route.name;
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new RoutingSettingsError(`routes[${i}] needs a name of 1 to 64 letters, digits, '-', '.' or '_'`);
    }
    const what = `route '${name}'`;
    return {
      name,
      source: sourceOf(route.source, what),
      condition: conditionOf(route.condition, what),
      endpointNames: endpointsOf(what, route.endpointNames),
      isEnabled: enabledOf(route.isEnabled, what),
    };
  });
  if (routes.length > MAX_ROUTES) throw new RoutingSettingsError(`${routes.length} routes: IoT Hub allows ${MAX_ROUTES}`);
  const names = new Set<string>();
  for (const { name } of routes) {
    if (names.has(name.toLowerCase())) throw new RoutingSettingsError(`two routes are named '${name}'`);
    names.add(name.toLowerCase());
  }

  let fallback = { isEnabled: true, condition: 'true' }; // a hub's fallback route is enabled until turned off
  if (routing.fallbackRoute !== undefined && routing.fallbackRoute !== null) {
    const route = objectOf(routing.fallbackRoute, 'fallbackRoute');
    if (route.source !== undefined && route.source !== 'DeviceMessages') {
      throw new RoutingSettingsError(`the fallback route's source is DeviceMessages, not ${JSON.stringify(route.source)}`);
    }
    const endpoints = endpointsOf('the fallback route', route.endpointNames ?? [BUILT_IN_ENDPOINT]);
    if (endpoints.some((name) => name !== BUILT_IN_ENDPOINT)) {
      throw new RoutingSettingsError(`the fallback route goes to the built-in endpoint '${BUILT_IN_ENDPOINT}' alone`);
    }
    fallback = {
      isEnabled: enabledOf(route.isEnabled, 'the fallback route'),
      condition: conditionOf(route.condition, 'the fallback route'),
    };
  }

  const enrichments = listOf(routing.enrichments, 'enrichments').map((entry, i) => {
    const enrichment = objectOf(entry, `enrichments[${i}]`);
    const { key, value } = enrichment;
    // __proto__ would set an object's prototype rather than a property.
    if (typeof key !== 'string' || !NAME.test(key) || key === '__proto__') {
      throw new RoutingSettingsError(`enrichments[${i}] needs a key of 1 to 64 letters, digits, '-', '.' or '_'`);
    }
    const what = `enrichment '${key}'`;
    if (typeof value !== 'string' || !ENRICHMENT_VALUE.test(value)) {
      throw new RoutingSettingsError(
        `${what} needs a value: a static string, $iothubname, or a path under $twin.tags, $twin.properties.desired or $twin.properties.reported`,
      );
    }
    return { key, value, endpointNames: endpointsOf(what, enrichment.endpointNames) };
  });
  if (enrichments.length > MAX_ENRICHMENTS)
    throw new RoutingSettingsError(`${enrichments.length} enrichments: IoT Hub allows ${MAX_ENRICHMENTS}`);
  return { routes, fallback, enrichments, storageEndpoints };
}

function routingObject(json: unknown): Record<string, unknown> {
  let routing = objectOf(json, 'the routing settings');
  if (isObject(routing.properties)) routing = routing.properties;
  if (isObject(routing.routing)) routing = routing.routing;
  if (!['routes', 'fallbackRoute', 'enrichments', 'endpoints'].some((key) => key in routing)) {
    throw new RoutingSettingsError(
      'the routing settings hold no routes, fallbackRoute, enrichments or endpoints (give properties.routing of `az iot hub show`, or an object with them)',
    );
  }
  return routing;
}

/** The custom endpoints a hub's settings declare, by name, with their kind (eventHubs, storageContainers, ...). */
function customEndpointKinds(endpoints: unknown): Map<string, string> {
  const kinds = new Map<string, string>();
  if (!isObject(endpoints)) return kinds;
  for (const [kind, list] of Object.entries(endpoints)) {
    if (!Array.isArray(list)) continue;
    for (const endpoint of list) if (isObject(endpoint) && typeof endpoint.name === 'string') kinds.set(endpoint.name, kind);
  }
  return kinds;
}

/** The storage container endpoints, checked as ARM checks them, with ARM's defaults. */
function storageEndpointsOf(endpoints: unknown): StorageEndpointSettings[] {
  if (endpoints !== undefined && endpoints !== null && !isObject(endpoints))
    throw new RoutingSettingsError('endpoints is not a JSON object');
  const names = new Set<string>();
  for (const name of customEndpointKinds(endpoints).keys()) {
    if (RESERVED_ENDPOINT_NAMES.has(name.toLowerCase())) throw new RoutingSettingsError(`the endpoint name '${name}' is reserved`);
  }
  return listOf(isObject(endpoints) ? endpoints.storageContainers : undefined, 'endpoints.storageContainers').map((entry, i) => {
    const endpoint = objectOf(entry, `endpoints.storageContainers[${i}]`);
    const name = endpoint.name;
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new RoutingSettingsError(`endpoints.storageContainers[${i}] needs a name of 1 to 64 letters, digits, '-', '.' or '_'`);
    }
    if (names.has(name.toLowerCase())) throw new RoutingSettingsError(`two endpoints are named '${name}'`);
    names.add(name.toLowerCase());
    const what = `storage endpoint '${name}'`;
    if (endpoint.authenticationType === 'identityBased' || typeof endpoint.connectionString !== 'string') {
      throw new RoutingSettingsError(`${what} needs the storage account's connectionString (the local hub has no managed identity)`);
    }
    let storage: StorageAccount;
    let containerName: string;
    try {
      storage = parseStorageAccount(endpoint.connectionString, { forDevices: false });
      containerName = checkContainerName(String(endpoint.containerName ?? ''));
    } catch (err) {
      if (err instanceof StorageAccountError) throw new RoutingSettingsError(`${what}: ${err.message}`);
      throw err;
    }
    const fileNameFormat = endpoint.fileNameFormat ?? STORAGE_DEFAULTS.fileNameFormat;
    const missing =
      typeof fileNameFormat === 'string' ? FILE_NAME_TOKENS.filter((token) => !fileNameFormat.includes(token)) : FILE_NAME_TOKENS;
    if (typeof fileNameFormat !== 'string' || missing.length > 0) {
      throw new RoutingSettingsError(
        `${what} has a fileNameFormat without ${missing.join(', ')}: every one of ${FILE_NAME_TOKENS.join(' ')} must be in it`,
      );
    }
    const encoding = String(endpoint.encoding ?? STORAGE_DEFAULTS.encoding).toLowerCase();
    if (encoding !== 'avro' && encoding !== 'avrodeflate' && encoding !== 'json') {
      throw new RoutingSettingsError(`${what} has the encoding ${JSON.stringify(endpoint.encoding)}: it is Avro, AvroDeflate or JSON`);
    }
    return {
      name,
      storage,
      containerName,
      fileNameFormat,
      batchFrequencyInSeconds: wholeNumber(
        endpoint.batchFrequencyInSeconds,
        STORAGE_DEFAULTS.batchFrequencyInSeconds,
        60,
        720,
        `${what}'s batchFrequencyInSeconds`,
      ),
      maxChunkSizeInBytes: wholeNumber(
        endpoint.maxChunkSizeInBytes,
        STORAGE_DEFAULTS.maxChunkSizeInBytes,
        10_485_760,
        524_288_000,
        `${what}'s maxChunkSizeInBytes`,
      ),
      encoding,
    };
  });
}

function wholeNumber(value: unknown, otherwise: number, min: number, max: number, what: string): number {
  if (value === undefined || value === null) return otherwise;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RoutingSettingsError(`${what} is ${JSON.stringify(value)}: a whole number from ${min} to ${max}`);
  }
  return value;
}

function sourceOf(source: unknown, what: string): RoutingSource {
  const found = ROUTING_SOURCES.find((s) => typeof source === 'string' && s.toLowerCase() === source.toLowerCase());
  if (!found)
    throw new RoutingSettingsError(`${what} has the source ${JSON.stringify(source)}: it is one of ${ROUTING_SOURCES.join(', ')}`);
  return found;
}

function conditionOf(condition: unknown, what: string): string {
  if (condition === undefined || condition === null || condition === '') return 'true';
  if (typeof condition !== 'string') throw new RoutingSettingsError(`${what} has a condition that is not a string`);
  return condition;
}

function enabledOf(isEnabled: unknown, what: string): boolean {
  if (isEnabled === undefined) return true;
  if (typeof isEnabled !== 'boolean')
    throw new RoutingSettingsError(`${what} has isEnabled ${JSON.stringify(isEnabled)}, not true or false`);
  return isEnabled;
}

function listOf(value: unknown, what: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new RoutingSettingsError(`${what} is not a list`);
  return value;
}

function objectOf(value: unknown, what: string): Record<string, unknown> {
  if (!isObject(value)) throw new RoutingSettingsError(`${what} is not a JSON object`);
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
